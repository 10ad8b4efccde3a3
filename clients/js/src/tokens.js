// Minting the JWTs the hub accepts, on `jose`.
//
// Draft-08 tokens are RFC 9068 access tokens (`typ: at+jwt`) whose
// `authorization_details` grant `publish` or `subscribe` on topic matchers;
// the hub requires `iss` (its --jwt-issuer, by default its own origin),
// `aud` (its public URL) and `exp`. Draft-07 tokens carry a `mercure` claim
// with selector lists, and nothing the deployed hubs of that generation
// could refuse. The same claims as `tidings token` mints.
import { SignJWT } from 'jose';
import { resolveConfig } from './config.js';

/** Prefix marking a draft-08 topic as a URL pattern, as `tidings token` spells it. */
export const URL_PATTERN_PREFIX = 'urlpattern:';

const DETAIL_TYPE = 'https://mercure.rocks/authorization-detail';

/** Mints a token for `role` ("publisher" or "subscriber"). */
export async function mintToken(request = {}) {
  const config = resolveConfig(request);
  const role = request.role;
  if (role !== 'publisher' && role !== 'subscriber') {
    throw new TypeError('tidings-client: role must be "publisher" or "subscriber"');
  }
  const key = signingKey(role === 'publisher' ? config.publisherKey : config.subscriberKey, role);
  const topics = [request.topics ?? []].flat();
  const ttl = request.ttl ?? 3600;
  const action = role === 'publisher' ? 'publish' : 'subscribe';
  const now = Math.floor(Date.now() / 1000);
  if (config.generation === '07') {
    const mercure = { [action]: topics };
    if (request.payload !== undefined) mercure.payload = request.payload;
    const jwt = new SignJWT({ mercure })
      .setProtectedHeader({ alg: config.algorithm, typ: 'JWT' })
      .setIssuedAt(now)
      .setIssuer(config.issuer);
    if (ttl !== null) jwt.setExpirationTime(now + ttl);
    if (request.subject) jwt.setSubject(request.subject);
    return jwt.sign(key);
  }
  if (ttl === null) throw new TypeError('tidings-client: draft-08 tokens need a ttl');
  const detail = {
    type: DETAIL_TYPE,
    actions: [action],
    topics: topics.map(topicMatcher),
  };
  if (request.payload !== undefined) detail.payload = request.payload;
  return new SignJWT({
    client_id: config.issuer,
    // A detail needs at least one topic; no topics means no rights.
    authorization_details: topics.length > 0 ? [detail] : [],
  })
    .setProtectedHeader({ alg: config.algorithm, typ: 'at+jwt' })
    .setIssuer(config.issuer)
    .setAudience(config.hubUrl)
    .setSubject(request.subject ?? `urn:uuid:${crypto.randomUUID()}`)
    .setIssuedAt(now)
    .setExpirationTime(now + ttl)
    .setJti(`urn:uuid:${crypto.randomUUID()}`)
    .sign(key);
}

/** A token that may publish to `topics` (default: any topic). */
export function publisherToken(request = {}) {
  return mintToken({ topics: ['*'], ...request, role: 'publisher' });
}

/** A token that may read the private updates of `topics`. */
export function subscriberToken(request = {}) {
  return mintToken({ ...request, role: 'subscriber' });
}

function topicMatcher(topic) {
  if (typeof topic === 'object' && topic !== null) return topic;
  if (topic.startsWith(URL_PATTERN_PREFIX)) {
    return { match: topic.slice(URL_PATTERN_PREFIX.length), match_type: 'urlpattern' };
  }
  return { match: topic };
}

/** An HMAC secret string becomes bytes; a CryptoKey or KeyObject is used as is. */
function signingKey(key, role) {
  if (key === undefined || key === '') {
    const variable = role === 'publisher' ? 'TIDINGS_PUBLISHER_JWT_KEY' : 'TIDINGS_SUBSCRIBER_JWT_KEY';
    throw new Error(`tidings-client: no ${role} key: set TIDINGS_JWT_KEY (or ${variable}) or pass key`);
  }
  return typeof key === 'string' ? new TextEncoder().encode(key) : key;
}
