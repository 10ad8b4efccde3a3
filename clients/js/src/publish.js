// Publishing: one POST to the hub, retried safely.
//
// Every publication carries an id chosen here, so a retry after a timeout,
// a cut connection or a 5xx is the same publication: the hub answers a
// known id with 200 and neither stores nor delivers it again. A refusal
// (4xx) is not retried; it becomes a PublishError with the hub's reason.
import { resolveConfig } from './config.js';
import { newEventId } from './ids.js';
import { publisherToken } from './tokens.js';

/** A refused or failed publication. */
export class PublishError extends Error {
  constructor(message, { status, problem, cause } = {}) {
    super(message, { cause });
    this.name = 'PublishError';
    /** The hub's HTTP status; undefined when it could not be reached. */
    this.status = status;
    /** The hub's RFC 9457 problem document, when it sent one. */
    this.problem = problem;
    /** The problem's `detail`: why the hub refused. */
    this.detail = problem?.detail;
  }
}

/** Publishes one update; resolves to its event id. */
export async function publish(update, options = {}) {
  const config = resolveConfig(options);
  const topics = [update.topic ?? [], update.topics ?? []].flat();
  if (topics.length === 0) throw new TypeError('tidings-client: publish needs a topic');
  const id = update.id ?? newEventId(Boolean(update.private));
  const form = new URLSearchParams();
  for (const topic of topics) form.append('topic', topic);
  if (update.data !== undefined) {
    form.set('data', typeof update.data === 'string' ? update.data : JSON.stringify(update.data));
  }
  if (update.private) form.set('private', 'on');
  form.set('id', id);
  if (update.type !== undefined) form.set('type', update.type);
  if (update.retry !== undefined) form.set('retry', String(update.retry));
  const token =
    config.publisherToken ??
    (await publisherToken({ ...options, topics, ttl: options.tokenTtl ?? 300 }));
  return send(config.internalHubUrl, form.toString(), token, id, options);
}

const RETRYABLE = new Set([408, 425, 429, 500, 502, 503, 504]);

async function send(url, body, token, id, options) {
  const attempts = options.attempts ?? 3;
  const timeout = options.timeout ?? 10_000;
  const fetchImpl = options.fetch ?? fetch;
  for (let attempt = 1; ; attempt++) {
    let failure;
    try {
      const response = await fetchImpl(url, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${token}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body,
        signal: AbortSignal.timeout(timeout),
      });
      if (response.ok) return (await response.text()) || id;
      const problem = await readProblem(response);
      const reason = problem?.detail ?? problem?.title ?? response.statusText;
      failure = new PublishError(`the hub refused the publication (${response.status}): ${reason}`, {
        status: response.status,
        problem,
      });
      if (!RETRYABLE.has(response.status)) throw failure;
    } catch (error) {
      if (error instanceof PublishError && !RETRYABLE.has(error.status)) throw error;
      failure =
        error instanceof PublishError
          ? error
          : new PublishError(`could not publish to ${url}: ${error.message}`, { cause: error });
    }
    if (attempt >= attempts) throw failure;
    await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** attempt, 2_000)));
  }
}

async function readProblem(response) {
  try {
    const text = await response.text();
    try {
      return JSON.parse(text);
    } catch {
      return text ? { detail: text } : undefined;
    }
  } catch {
    return undefined;
  }
}
