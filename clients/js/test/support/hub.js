// A real `tidings serve` process on a free loopback port, for the tests.
// The binary is TIDINGS_BIN (set by crates/tidings-cli/tests/javascript.rs
// to the one cargo built), or target/debug/tidings of this repository.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

export const SECRET = 'javascript-test-secret-of-32-bytes!!';

function binary() {
  const path = process.env.TIDINGS_BIN ?? resolve(import.meta.dirname, '../../../../target/debug/tidings');
  if (!existsSync(path)) {
    throw new Error(`no tidings binary at ${path}: run \`cargo build\` or set TIDINGS_BIN`);
  }
  return path;
}

/** A TCP port nothing listens on right now. */
export async function freePort() {
  const server = createServer();
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address();
  await new Promise((done) => server.close(done));
  return port;
}

/**
 * Starts a hub. `host` is how clients name it (`127.0.0.1` or `localhost`):
 * with `localhost`, the hub's public URL (the tokens' audience, and the
 * issuer's origin) says so too.
 */
export async function startHub({ args = [], host = '127.0.0.1', port, dataDir } = {}) {
  port ??= await freePort();
  const url = `http://${host}:${port}/.well-known/mercure`;
  const ownDir = dataDir === undefined;
  dataDir ??= mkdtempSync(join(tmpdir(), 'tidings-js-'));
  const child = spawn(
    binary(),
    [
      'serve',
      '--listen', `127.0.0.1:${port}`,
      '--public-url', url,
      '--jwt-key', SECRET,
      '--data-dir', dataDir,
      '--log', 'warn',
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines = createInterface({ input: child.stdout });
  const first = await new Promise((done, fail) => {
    lines.once('line', done);
    child.once('exit', (code) => fail(new Error(`the hub exited (${code}) before serving`)));
  });
  if (!first.startsWith('tidings hub: ')) throw new Error(`unexpected first line: ${first}`);
  lines.on('line', () => {}); // keep draining
  const exited = new Promise((done) => child.once('exit', done));
  return {
    url,
    origin: new URL(url).origin,
    port,
    dataDir,
    child,
    /** Stops the hub (SIGKILL) and waits for it. */
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
    /** Stops the hub and removes its data directory (unless it was given). */
    async stop() {
      await this.kill();
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    },
    /** A gauge or counter from /metrics. */
    async metric(name) {
      const text = await (await fetch(`${this.origin}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${name} `));
      if (!line) throw new Error(`no ${name} in metrics`);
      return Number(line.split(' ')[1]);
    },
  };
}

/** Polls `check` until it returns something truthy, for at most `ms`. */
export async function eventually(check, ms = 10_000, what = 'condition') {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((done) => setTimeout(done, 25));
  }
}
