// The subscriber cookie: how a browser's EventSource, which cannot send an
// Authorization header, presents a token to the hub.
//
// The cookie is HttpOnly (page scripts never see the token), Secure, scoped
// to the hub's path, and lives exactly as long as its token. Its name is
// the one the hub reads for the token's generation:
// `__Secure-mercure_access_token` (draft-08; the prefix makes browsers
// insist on Secure) or `mercureAuthorization` (draft-07). Browsers treat
// http://localhost as secure, so Secure cookies work in development there.
import { resolveConfig } from './config.js';
import { subscriberToken } from './tokens.js';

export const COOKIE_NAMES = {
  '08': '__Secure-mercure_access_token',
  '07': 'mercureAuthorization',
};

/**
 * A cookie carrying a subscriber token for `topics`, as the object that
 * Next.js `cookies().set()` and `NextResponse.cookies.set()` take.
 */
export async function subscriberCookie(request = {}) {
  const config = resolveConfig(request);
  const ttl = request.ttl ?? 3600;
  const value = await subscriberToken({ ...request, ttl });
  return cookieFor(config, request, value, ttl);
}

/** The same cookie, expired: sign a user out of the hub. */
export function expiredSubscriberCookie(request = {}) {
  return cookieFor(resolveConfig(request), request, '', 0);
}

function cookieFor(config, request, value, maxAge) {
  const cookie = {
    name: request.name ?? COOKIE_NAMES[config.generation],
    value,
    httpOnly: true,
    secure: request.secure ?? true,
    sameSite: request.sameSite ?? 'strict',
    path: request.path ?? new URL(config.hubUrl).pathname,
    maxAge,
  };
  const domain = request.domain ?? config.cookieDomain;
  if (domain) cookie.domain = domain;
  return cookie;
}

/** A `Set-Cookie` header value for a cookie object, for plain `Response`s. */
export function serializeCookie(cookie) {
  const parts = [`${cookie.name}=${cookie.value}`];
  if (cookie.domain) parts.push(`Domain=${cookie.domain}`);
  if (cookie.path) parts.push(`Path=${cookie.path}`);
  if (cookie.maxAge !== undefined) parts.push(`Max-Age=${cookie.maxAge}`);
  if (cookie.httpOnly) parts.push('HttpOnly');
  if (cookie.secure) parts.push('Secure');
  if (cookie.sameSite) {
    const sameSite = String(cookie.sameSite);
    parts.push(`SameSite=${sameSite[0].toUpperCase()}${sameSite.slice(1).toLowerCase()}`);
  }
  return parts.join('; ');
}

