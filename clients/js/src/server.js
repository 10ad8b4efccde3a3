// The server entry point (Node.js 20+, Next.js route handlers and server
// actions): publishing, tokens, the subscriber cookie and discovery.
// Never import it from a client component: it signs with your secret.
export { hubUrl } from './config.js';
export { publish, PublishError } from './publish.js';
export { mintToken, publisherToken, subscriberToken, URL_PATTERN_PREFIX } from './tokens.js';
export { subscriberCookie, expiredSubscriberCookie, serializeCookie, COOKIE_NAMES } from './cookie.js';
export { linkHeader } from './discovery.js';
export { newEventId } from './ids.js';
