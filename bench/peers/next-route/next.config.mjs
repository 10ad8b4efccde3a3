import { fileURLToPath } from 'node:url';

// `next` comes from the npm workspaces installed at the repository root.
const root = fileURLToPath(new URL('../../..', import.meta.url));

export default {
  turbopack: { root },
  outputFileTracingRoot: root,
};
