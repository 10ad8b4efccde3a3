import type { KeyObject } from 'node:crypto';

/** Where the hub is and how to sign for it. Every field falls back to an environment variable. */
export interface HubOptions {
  /** The hub URL as browsers reach it (the hub's --public-url): tokens' audience. Default: TIDINGS_HUB_URL. */
  hubUrl?: string;
  /** Where this server posts publications, when it reaches the hub another way. Default: TIDINGS_HUB_INTERNAL_URL, else hubUrl. */
  internalHubUrl?: string;
  /** Signing key: an HMAC secret, or a private CryptoKey/KeyObject with `algorithm`. Default: TIDINGS_PUBLISHER_JWT_KEY / TIDINGS_SUBSCRIBER_JWT_KEY, else TIDINGS_JWT_KEY. */
  key?: string | Uint8Array | CryptoKey | KeyObject;
  /** JWS algorithm (default HS256). */
  algorithm?: string;
  /** `iss` of minted tokens (the hub's --jwt-issuer). Default: TIDINGS_JWT_ISSUER, else the hub URL's origin. */
  issuer?: string;
  /** Token generation: draft-08 access tokens (default) or draft-07 `mercure` claims. Default: TIDINGS_TOKEN_GENERATION. */
  generation?: '08' | '07';
  /** A ready publisher token, used instead of minting one. Default: TIDINGS_PUBLISHER_TOKEN. */
  token?: string;
  /** Domain attribute of the subscriber cookie. Default: TIDINGS_COOKIE_DOMAIN. */
  cookieDomain?: string;
}

export interface Update {
  /** The topic, or several: the first is canonical, the others alternates. */
  topic?: string | string[];
  topics?: string[];
  /** A string is sent as is; anything else as JSON. */
  data?: unknown;
  /** Only subscribers whose token grants one of the topics receive it. */
  private?: boolean;
  /** The event id; by default one is made here (UUIDv7, or a random UUIDv4 for private updates) so retries are idempotent. */
  id?: string;
  /** The SSE event type. */
  type?: string;
  /** Reconnection delay for subscribers, in ms. */
  retry?: number;
}

export interface PublishOptions extends HubOptions {
  /** Attempts in all, retrying timeouts, lost connections and 5xx (default 3). */
  attempts?: number;
  /** Per attempt, in ms (default 10000). */
  timeout?: number;
  /** Lifetime of the token minted for this publication, in seconds (default 300). */
  tokenTtl?: number;
  fetch?: typeof fetch;
}

/** Publishes an update; resolves to its event id. */
export declare function publish(update: Update, options?: PublishOptions): Promise<string>;

/** A refused (4xx) or failed publication. */
export declare class PublishError extends Error {
  /** The hub's status; undefined when it could not be reached. */
  readonly status: number | undefined;
  /** The hub's RFC 9457 problem document. */
  readonly problem: { type?: string; title?: string; status?: number; detail?: string } | undefined;
  /** Why the hub refused. */
  readonly detail: string | undefined;
}

export interface TokenRequest extends HubOptions {
  /** Draft-08 matchers (`urlpattern:` prefix for a URL pattern, `*` for all) or draft-07 selectors. */
  topics?: string[];
  /** Lifetime in seconds (default 3600); null: never expires (draft-07 only). */
  ttl?: number | null;
  /** `sub`; draft-08 tokens get a random `urn:uuid:` by default. */
  subject?: string;
  /** Attached to the subscriber's subscriptions (and subscription events). */
  payload?: unknown;
}

export declare const URL_PATTERN_PREFIX: 'urlpattern:';
export declare function mintToken(request: TokenRequest & { role: 'publisher' | 'subscriber' }): Promise<string>;
/** A publisher token; topics default to `*`. */
export declare function publisherToken(request?: TokenRequest): Promise<string>;
/** A subscriber token for the private updates of `topics`. */
export declare function subscriberToken(request?: TokenRequest): Promise<string>;

/** A cookie as Next.js `cookies().set()` and `NextResponse.cookies.set()` take it. */
export interface Cookie {
  name: string;
  value: string;
  httpOnly: boolean;
  secure: boolean;
  sameSite: 'strict' | 'lax' | 'none';
  path: string;
  maxAge: number;
  domain?: string;
}

export interface CookieRequest extends TokenRequest {
  /** Default: `__Secure-mercure_access_token` (draft-08) or `mercureAuthorization` (draft-07). */
  name?: string;
  domain?: string;
  /** Default: the hub URL's path. */
  path?: string;
  /** Default true. */
  secure?: boolean;
  /** Default `strict`: the hub must be on the same site as the app (a subdomain is). */
  sameSite?: 'strict' | 'lax' | 'none';
}

export declare const COOKIE_NAMES: { readonly '08': '__Secure-mercure_access_token'; readonly '07': 'mercureAuthorization' };
/** A subscriber cookie carrying a token for `topics`, living as long as the token. */
export declare function subscriberCookie(request?: CookieRequest): Promise<Cookie>;
/** The same cookie, expired (signing out). */
export declare function expiredSubscriberCookie(request?: CookieRequest): Cookie;
/** A `Set-Cookie` header value. */
export declare function serializeCookie(cookie: Cookie): string;

/** The discovery `Link` header: the hub, and the resource's topic as rel="self". */
export declare function linkHeader(options?: HubOptions & { topic?: string }): string;
/** The hub URL as browsers reach it (TIDINGS_HUB_URL). */
export declare function hubUrl(options?: HubOptions): string;
/** A `urn:uuid:` event id: UUIDv7, or UUIDv4 when `random`. */
export declare function newEventId(random?: boolean): string;
