// Opens the hub's own page (its console) in headless Chromium (same origin as the
// hub, so no CORS is involved) and records what native EventSource objects
// receive. Driven by crates/tidings-cli/tests/browser.rs, which publishes.
//
//   node eventsource.mjs '<spec JSON>'
//
// spec: {
//   chromium: "/usr/bin/chromium",
//   origin: "http://127.0.0.1:PORT",
//   subscriptions: [{ name, query, types: ["message", ...], expect }],
//   lingerMs,   // keep listening this long after every count is reached, to catch extras
//   timeoutMs   // give up waiting for the counts after this long
// }
// An https origin may have a self-signed certificate.
//
// Prints "READY" once every EventSource has opened, then one JSON line:
// { subscriptions: [{ name, events: [{ type, data, id }], opens, errors, closed }], timedOut, protocol }
// (closed: the source gave up reconnecting; protocol: what the page was
// loaded over, "http/1.1" or "h2", which the sources share.)
// The report is printed even on a time-out so the test can show what arrived.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const spec = JSON.parse(process.argv[2]);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A fresh profile each run; the network flags keep Chromium from reaching
// for Google's services, which this machine's closed network refuses.
const profile = mkdtempSync(join(tmpdir(), 'tidings-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: spec.chromium,
  headless: true,
  ignoreHTTPSErrors: true,
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

try {
  const page = context.pages()[0] ?? (await context.newPage());
  // The page's messages help when a test fails; the missing favicon is noise.
  page.on('console', (message) => {
    if (!message.location().url.endsWith('/favicon.ico')) console.error(`[page] ${message.text()}`);
  });
  await page.goto(spec.origin + '/');

  // Resolves when every source has opened once: the hub registers a
  // subscription before it answers, so publishing after this loses nothing.
  await page.evaluate(async (subscriptions) => {
    window.recorded = {};
    await Promise.all(
      subscriptions.map(
        ({ name, query, types }) =>
          new Promise((resolve, reject) => {
            const record = { name, events: [], opens: 0, errors: 0, closed: false };
            window.recorded[name] = record;
            const source = new EventSource('/.well-known/mercure?' + query);
            for (const type of types) {
              source.addEventListener(type, (e) => {
                record.events.push({ type: e.type, data: e.data, id: e.lastEventId });
              });
            }
            source.onopen = () => {
              record.opens += 1;
              resolve();
            };
            // Errors also mark each reconnection (and each failed attempt);
            // only a closed source is fatal.
            source.onerror = () => {
              record.errors += 1;
              if (source.readyState === EventSource.CLOSED) {
                record.closed = true;
                reject(new Error(`${name}: EventSource closed`));
              }
            };
          }),
      ),
    );
  }, spec.subscriptions);
  console.log('READY');

  const names = spec.subscriptions.map((s) => s.name);
  const report = () => page.evaluate((names) => names.map((name) => window.recorded[name]), names);
  const deadline = Date.now() + spec.timeoutMs;
  let timedOut = true;
  while (Date.now() < deadline) {
    const current = await report();
    if (spec.subscriptions.every((s, i) => current[i].events.length >= s.expect)) {
      timedOut = false;
      break;
    }
    await sleep(50);
  }
  await sleep(spec.lingerMs);
  const protocol = await page.evaluate(
    () => performance.getEntriesByType('navigation')[0]?.nextHopProtocol ?? '',
  );
  console.log(JSON.stringify({ subscriptions: await report(), timedOut, protocol }));
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
