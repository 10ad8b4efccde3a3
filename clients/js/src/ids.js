// Event ids the client chooses itself, so that a retried publication is
// recognised by the hub as the same one (the hub answers a known id with
// 200 and neither stores nor delivers it again).
//
// Public updates get a UUIDv7: time-ordered ids keep the hub's durable id
// index writes together. Private updates get a random UUIDv4, as the
// protocol recommends, so that an id reveals nothing about when it was made.

/** A `urn:uuid:` event id: v4 when `random`, v7 otherwise. */
export function newEventId(random = false) {
  return `urn:uuid:${random ? crypto.randomUUID() : uuidv7()}`;
}

/** RFC 9562 UUIDv7: 48 bits of Unix milliseconds, then random bits. */
export function uuidv7() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let millis = Date.now();
  for (let i = 5; i >= 0; i--) {
    bytes[i] = millis % 256;
    millis = Math.floor(millis / 256);
  }
  bytes[6] = 0x70 | (bytes[6] & 0x0f);
  bytes[8] = 0x80 | (bytes[8] & 0x3f);
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
