import { fileURLToPath } from 'node:url';

// The repository root: this example and the client package are npm
// workspaces installed there.
const root = fileURLToPath(new URL('../..', import.meta.url));

/** @type {import('next').NextConfig} */
export default {
  turbopack: { root },
  outputFileTracingRoot: root,
};
