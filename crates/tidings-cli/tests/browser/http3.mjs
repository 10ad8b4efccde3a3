// Opens the hub's page in headless Chromium over HTTP/3, subscribes with a
// native EventSource, publishes two updates with fetch() from the page, and
// reports what arrived and the protocol each request used. Driven by
// crates/tidings-cli/tests/http3.rs.
//
//   node http3.mjs '<spec JSON>'
//
// spec: {
//   chromium, origin: "https://localhost:PORT",
//   flags: ["--origin-to-force-quic-on=…", "--ignore-certificate-errors-spki-list=…"],
//   topic, publisherToken, timeoutMs
// }
// Prints one JSON line:
// { navigation, publish, events: [{ data, id }], published: [id, …] }
// (navigation, publish: nextHopProtocol of the page and of the publishing
// fetch, "h3" when they went over HTTP/3.)
//
// No --disable-quic here, and no ignoreHTTPSErrors: the certificate is
// accepted only through its key's hash, which covers QUIC, so a page that
// loads at all loaded through the hub's HTTP/3 endpoint or its TLS port
// with that same certificate; the report says which.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const spec = JSON.parse(process.argv[2]);

const profile = mkdtempSync(join(tmpdir(), 'tidings-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: spec.chromium,
  headless: true,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    ...spec.flags,
  ],
});

try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (message) => {
    if (!message.location().url.endsWith('/favicon.ico')) console.error(`[page] ${message.text()}`);
  });
  await page.goto(spec.origin + '/');
  const report = await page.evaluate(async ({ topic, publisherToken, timeoutMs }) => {
    const events = [];
    const source = new EventSource('/.well-known/mercure?match=' + encodeURIComponent(topic));
    source.onmessage = (e) => events.push({ data: e.data, id: e.lastEventId });
    await new Promise((resolve, reject) => {
      source.onopen = resolve;
      source.onerror = () => reject(new Error('EventSource failed to open'));
    });
    const published = [];
    for (const data of ['one', 'two']) {
      const response = await fetch('/.well-known/mercure', {
        method: 'POST',
        headers: {
          authorization: 'Bearer ' + publisherToken,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: new URLSearchParams({ topic, data }),
      });
      if (response.status !== 200) throw new Error('publish: ' + response.status);
      published.push(await response.text());
    }
    const deadline = Date.now() + timeoutMs;
    while (events.length < 2 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    source.close();
    const publish = performance
      .getEntriesByType('resource')
      .find((entry) => entry.name.endsWith('/.well-known/mercure'));
    return {
      navigation: performance.getEntriesByType('navigation')[0]?.nextHopProtocol ?? '',
      publish: publish?.nextHopProtocol ?? '',
      events,
      published,
    };
  }, spec);
  console.log(JSON.stringify(report));
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
