// Discovery: how a resource tells its clients which hub to subscribe to
// for its updates (a `Link` header with `rel="mercure"`).
import { resolveConfig } from './config.js';

/**
 * The discovery `Link` header value for a resource: the hub, and the
 * resource's own topic as `rel="self"` when given.
 */
export function linkHeader(options = {}) {
  const links = [`<${resolveConfig(options).hubUrl}>; rel="mercure"`];
  if (options.topic) links.push(`<${options.topic}>; rel="self"`);
  return links.join(', ');
}
