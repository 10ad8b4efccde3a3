// Subscribing on the native EventSource, with the connection's state and
// resumption after the last event id.
//
// EventSource reconnects by itself after a network error, sending
// Last-Event-ID. It gives up for good on an HTTP error (a 401 once a
// token expired, a 5xx from a proxy); then this module opens a new one
// after a growing delay, with the last event id it saw in the query
// (`last_event_id`), so nothing is missed either way.

/** Connection states, in the order a subscription usually goes through them. */
export const STATES = ['connecting', 'open', 'reconnecting', 'closed'];

const CLOSED = 2;

/** The subscription URL for these matchers. */
export function subscriptionUrl(hubUrl, options = {}) {
  const url = new URL(hubUrl, globalThis.location?.href);
  for (const match of [options.match ?? []].flat()) url.searchParams.append('match', match);
  for (const pattern of [options.matchUrlPattern ?? []].flat()) {
    url.searchParams.append('match_urlpattern', pattern);
  }
  for (const topic of [options.topic ?? []].flat()) url.searchParams.append('topic', topic);
  if (options.lastEventId) url.searchParams.set('last_event_id', options.lastEventId);
  if (![...url.searchParams.keys()].some((key) => key === 'topic' || key.startsWith('match'))) {
    throw new TypeError('tidings-client: subscribe needs match, matchUrlPattern or topic');
  }
  return url.toString();
}

/** Data as JSON when it parses, as the text otherwise. */
export function parseData(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Opens a subscription; events and state changes go to the callbacks. */
export function subscribe(hubUrl, options = {}) {
  return new Subscription(hubUrl, options);
}

export class Subscription {
  #hubUrl;
  #options;
  #source = null;
  #timer = null;
  #failures = 0;

  constructor(hubUrl, options) {
    this.#hubUrl = hubUrl;
    this.#options = options;
    /** One of STATES. */
    this.state = 'connecting';
    /** The id of the last event received: where a new connection resumes. */
    this.lastEventId = options.lastEventId ?? null;
    subscriptionUrl(hubUrl, options); // refuse bad matchers now, not in a callback
    this.#open();
  }

  /** Closes the connection for good. */
  close() {
    clearTimeout(this.#timer);
    this.#source?.close();
    this.#source = null;
    this.#setState('closed');
  }

  #open() {
    const Source = this.#options.EventSource ?? globalThis.EventSource;
    if (!Source) {
      throw new Error('tidings-client: no EventSource here; in Node.js pass the `eventsource` package as options.EventSource');
    }
    const url = subscriptionUrl(this.#hubUrl, { ...this.#options, lastEventId: this.lastEventId });
    const source = new Source(url, { withCredentials: Boolean(this.#options.withCredentials) });
    this.#source = source;
    source.onopen = () => {
      this.#failures = 0;
      this.#setState('open');
    };
    source.onerror = () => {
      if (this.#source !== source) return;
      if (source.readyState === CLOSED) {
        source.close();
        this.#retryLater();
      } else {
        this.#setState('reconnecting');
      }
    };
    const deliver = (message) => this.#deliver(message);
    for (const type of new Set(['message', ...(this.#options.types ?? [])])) {
      source.addEventListener(type, deliver);
    }
  }

  #deliver(message) {
    if (message.lastEventId) this.lastEventId = message.lastEventId;
    const parse = this.#options.parse ?? parseData;
    this.#options.onEvent?.({
      id: message.lastEventId || null,
      type: message.type,
      data: parse ? parse(message.data) : message.data,
      text: message.data,
    });
  }

  #retryLater() {
    this.#source = null;
    this.#setState('reconnecting');
    const { min = 1_000, max = 30_000 } = this.#options.backoff ?? {};
    const delay = Math.min(max, min * 2 ** this.#failures) * (0.5 + Math.random() / 2);
    this.#failures += 1;
    this.#timer = setTimeout(() => this.#open(), delay);
  }

  #setState(state) {
    if (this.state === state) return;
    this.state = state;
    this.#options.onStateChange?.(state);
  }
}
