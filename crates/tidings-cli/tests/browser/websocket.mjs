// A chat between two Chromium pages over the hub's WebSocket: each page
// authenticates with a first message (a page cannot set headers on a
// WebSocket), subscribes to the room and publishes to it. A third page, on
// an origin the hub does not allow, is refused. Driven by
// crates/tidings-cli/tests/websocket.rs.
//
//   node websocket.mjs '<spec JSON>'
//
// spec: { chromium, origin, foreignOrigin, hubPath, alice, bob }  (tokens for both roles)
//
// Prints one JSON line: { alice, bob, foreign } (see `chat` and `refused`).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const spec = JSON.parse(process.argv[2]);
const ROOM = 'https://example.com/rooms/1';

const profile = mkdtempSync(join(tmpdir(), 'tidings-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: spec.chromium,
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});

/** Opens a page on `origin` with a socket that joined the room. */
async function join_room(origin, token) {
  const page = await context.newPage();
  await page.goto(`${origin}/healthz`);
  const url = `${origin.replace('http', 'ws')}${spec.hubPath}`;
  const joined = await page.evaluate(
    ([url, token, room]) =>
      new Promise((resolve) => {
        const socket = new WebSocket(url);
        window.chat = { socket, events: [], acks: [], errors: [] };
        socket.onopen = () => {
          socket.send(JSON.stringify({ type: 'auth', token }));
          socket.send(JSON.stringify({ type: 'subscribe', subscription: 'room', match: room }));
        };
        socket.onmessage = (message) => {
          const body = JSON.parse(message.data);
          if (body.type === 'subscribed') resolve({ joined: true });
          else if (body.type === 'event') window.chat.events.push(body);
          else if (body.type === 'ack') window.chat.acks.push(body);
          else window.chat.errors.push(body);
        };
        socket.onclose = (event) => resolve({ joined: false, code: event.code });
      }),
    [url, token, ROOM],
  );
  return { page, joined };
}

async function say(page, lines) {
  await page.evaluate(
    ([lines, room]) => {
      lines.forEach((line, n) =>
        window.chat.socket.send(JSON.stringify({ type: 'publish', ref: `m${n}`, topic: room, data: line })),
      );
    },
    [lines, ROOM],
  );
}

async function heard(page, count) {
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline) {
    const chat = await page.evaluate(() => ({
      events: window.chat.events.map((e) => ({ id: e.id, data: e.data, subscription: e.subscription })),
      acks: window.chat.acks.map((a) => a.ref),
      errors: window.chat.errors,
    }));
    if (chat.events.length >= count) return chat;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return page.evaluate(() => window.chat);
}

const report = {};
try {
  const alice = await join_room(spec.origin, spec.alice);
  const bob = await join_room(spec.origin, spec.bob);
  await say(alice.page, ['hello bob', 'how are you?']);
  await say(bob.page, ['hi alice', 'fine, thanks']);
  report.alice = { ...alice.joined, ...(await heard(alice.page, 4)) };
  report.bob = { ...bob.joined, ...(await heard(bob.page, 4)) };
  const foreign = await join_room(spec.foreignOrigin, spec.alice);
  report.foreign = foreign.joined;
} catch (error) {
  report.error = String(error);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
console.log(JSON.stringify(report));
