// Where the hub is and how to sign for it, from explicit options first and
// then from environment variables, read at call time (so a Next.js app
// configured by its host's environment needs no code). The variables
// share the hub's own names where they mean the same thing, so one
// environment can configure both in development.

const env = () => (typeof process === 'undefined' ? {} : process.env);

/** The resolved settings for one call. */
export function resolveConfig(options = {}) {
  const vars = env();
  const hubUrl = options.hubUrl ?? vars.TIDINGS_HUB_URL;
  if (!hubUrl) {
    throw new Error(
      'tidings-client: no hub URL: set TIDINGS_HUB_URL (e.g. https://hub.example.com/.well-known/mercure) or pass hubUrl',
    );
  }
  const generation = String(options.generation ?? vars.TIDINGS_TOKEN_GENERATION ?? '08');
  if (generation !== '08' && generation !== '07') {
    throw new Error(`tidings-client: unknown token generation ${JSON.stringify(generation)}: use "08" or "07"`);
  }
  return {
    hubUrl,
    internalHubUrl: options.internalHubUrl ?? vars.TIDINGS_HUB_INTERNAL_URL ?? hubUrl,
    publisherKey: options.key ?? vars.TIDINGS_PUBLISHER_JWT_KEY ?? vars.TIDINGS_JWT_KEY,
    subscriberKey: options.key ?? vars.TIDINGS_SUBSCRIBER_JWT_KEY ?? vars.TIDINGS_JWT_KEY,
    publisherToken: options.token ?? vars.TIDINGS_PUBLISHER_TOKEN,
    issuer: options.issuer ?? vars.TIDINGS_JWT_ISSUER ?? new URL(hubUrl).origin,
    algorithm: options.algorithm ?? 'HS256',
    generation,
    cookieDomain: options.cookieDomain ?? vars.TIDINGS_COOKIE_DOMAIN,
  };
}

/** The hub URL as browsers reach it: pass it to `subscribe()` or the hook. */
export function hubUrl(options = {}) {
  return resolveConfig(options).hubUrl;
}
