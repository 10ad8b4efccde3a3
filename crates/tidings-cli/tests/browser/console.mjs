// Drives the hub's web console in headless Chromium, as a person would:
// types into its forms, clicks its buttons, reads what it shows. Driven by
// crates/tidings-cli/tests/console.rs, which starts the hub, mints the
// tokens and checks the report.
//
//   node console.mjs '<spec JSON>'
//
// spec: {
//   chromium, origin,             // the hub's origin, e.g. http://127.0.0.1:PORT
//   hubPath,                      // "/.well-known/mercure"
//   publisher,                    // a publisher token for any topic
//   reader,                       // a subscriber token for any topic (private updates, the
//                                 // statistics, the subscription list)
//   notStats,                     // a subscriber token that does not grant the statistics
//   screenshot                    // where to write a PNG of the console
// }
//
// Prints one JSON line: what each step saw (see `report` below). A step that
// fails records { error } and the script carries on, so the test shows all.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const spec = JSON.parse(process.argv[2]);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const TOPIC = 'https://example.com/books/1';
const SECRET_TOPIC = 'https://example.com/secrets/1';
const HOSTILE = {
  topic: 'https://example.com/"><img src=x onerror="window.pwned=1">',
  id: '<script>window.pwned=2</script>',
  type: '<b onmouseover="window.pwned=3">bold</b>',
  data: '<img src=x onerror="window.pwned=4"><script>window.pwned=5</script>',
  matcher: 'https://example.com/<svg onload="window.pwned=6">',
};

const profile = mkdtempSync(join(tmpdir(), 'tidings-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: spec.chromium,
  headless: true,
  viewport: { width: 1280, height: 900 },
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

/** Subscribers opened from Node, outside the page: real clients of the hub. */
const outside = [];
function subscribeOutside(query) {
  const controller = new AbortController();
  const opened = fetch(`${spec.origin}${spec.hubPath}?${query}`, { signal: controller.signal }).then((response) => {
    response.body.getReader().read().catch(() => {});
    return response.status;
  });
  outside.push(controller);
  return { opened, close: () => controller.abort() };
}

async function publishOutside(form) {
  const response = await fetch(`${spec.origin}${spec.hubPath}`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${spec.publisher}`, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  if (!response.ok) throw new Error(`publish: ${response.status} ${await response.text()}`);
  return response.text();
}

const report = { pageErrors: [], consoleErrors: [] };

async function step(name, run) {
  try {
    report[name] = await run();
  } catch (error) {
    report[name] = { error: String(error && error.stack ? error.stack : error) };
  }
}

try {
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('pageerror', (error) => report.pageErrors.push(String(error)));
  page.on('console', (message) => {
    if (message.type() === 'error') report.consoleErrors.push(message.text());
  });
  page.on('dialog', (dialog) => {
    report.pageErrors.push(`a dialog opened: ${dialog.message()}`);
    dialog.dismiss();
  });
  const response = await page.goto(spec.origin + '/');
  report.csp = response.headers()['content-security-policy'] ?? null;
  const text = (selector) => page.locator(selector).first().textContent();
  const value = (stat) => text(`.card[data-stat="${stat}"] .value`);

  // The statistics need a token on this hub: one that does not grant them
  // is refused in place, one that does shows them live.
  await step('statsRefused', async () => {
    const before = await text('#stats-state');
    await page.fill('#stats-token', spec.notStats);
    await page.click('#stats-auth button');
    await page.waitForFunction(() => document.getElementById('stats-state').textContent.includes('refused'));
    return { before, after: await text('#stats-state') };
  });
  await step('statsLive', async () => {
    await page.fill('#stats-token', spec.reader);
    await page.click('#stats-auth button');
    await page.waitForFunction(() => document.getElementById('stats-state').textContent.startsWith('live, updated'), null, { timeout: 10000 });
    const subscribers = Number(await value('subscribers'));
    const nodes = await page.$$eval('#nodes tbody tr', (rows) => rows.map((row) => [...row.cells].map((c) => c.textContent)));
    // Three subscribers from outside the page: the counter follows.
    const opened = [1, 2, 3].map(() => subscribeOutside(new URLSearchParams({ match: 'https://example.com/counted' })));
    await Promise.all(opened.map((s) => s.opened));
    await page.waitForFunction(
      (want) => Number(document.querySelector('.card[data-stat="subscribers"] .value').textContent) >= want,
      subscribers + 3,
      { timeout: 10000 },
    );
    const withThree = Number(await value('subscribers'));
    const uptime = await text('#uptime');
    for (const s of opened) s.close();
    await page.waitForFunction(
      (want) => Number(document.querySelector('.card[data-stat="subscribers"] .value').textContent) <= want,
      subscribers,
      { timeout: 10000 },
    );
    return { subscribers, withThree, after: Number(await value('subscribers')), nodes, uptime };
  });

  // Publish in the form, see the event in the inspector.
  await step('roundTrip', async () => {
    await page.fill('#matchers .matcher input', TOPIC);
    await page.click('#subscribe');
    await page.waitForFunction(() => document.getElementById('subscribe-state').textContent.startsWith('subscribed'));
    await page.fill('#publish-topics', TOPIC);
    await page.fill('#publish-data', '{"title":"Dune","year":1965}');
    await page.fill('#publish-type', 'book.updated');
    await page.fill('#publish-token', spec.publisher);
    await page.click('#publish-send');
    await page.waitForFunction(() => document.getElementById('publish-result').textContent.startsWith('Published: '));
    const result = await text('#publish-result');
    await page.waitForSelector('#events .event');
    await page.waitForFunction(() => document.querySelector('#events .event .topics').textContent !== 'topics: …');
    const event = await page.$eval('#events .event', (item) => ({
      id: item.querySelector('.id').textContent,
      type: item.querySelector('.type').textContent,
      topics: item.querySelector('.topics').textContent,
      data: item.querySelector('pre').textContent,
      private: !!item.querySelector('.badge'),
    }));
    const published = await page.$eval('.card[data-stat="published"] .value', (v) => v.textContent);
    return { result, event, published };
  });

  // A publish the hub refuses shows its problem details in place.
  await step('refusedPublish', async () => {
    await page.fill('#publish-token', '');
    await page.click('#publish-send');
    await page.waitForFunction(() => document.getElementById('publish-result').textContent.startsWith('Refused: '));
    return { result: await text('#publish-result') };
  });

  // A private update reaches the inspector only with a token granting it.
  await step('private', async () => {
    await page.fill('#matchers .matcher input', SECRET_TOPIC);
    await page.fill('#subscribe-token', '');
    await page.click('#clear');
    await page.click('#subscribe');
    await page.waitForFunction(() => document.getElementById('subscribe-state').textContent.startsWith('subscribed'));
    await page.fill('#publish-topics', SECRET_TOPIC);
    await page.fill('#publish-data', 'for your eyes only');
    await page.fill('#publish-type', '');
    await page.check('#publish-private');
    await page.fill('#publish-token', spec.publisher);
    await page.click('#publish-send');
    await page.waitForFunction(() => document.getElementById('publish-result').textContent.startsWith('Published: '));
    const id = (await text('#publish-result')).slice('Published: '.length);
    await page.uncheck('#publish-private');
    // A public update after it: once that arrives, the private one would have too.
    await page.fill('#publish-data', 'public after');
    await page.click('#publish-send');
    await page.waitForFunction(() => [...document.querySelectorAll('#events pre')].some((p) => p.textContent === 'public after'));
    const withoutToken = await page.$$eval('#events pre', (pres) => pres.map((p) => p.textContent));
    // Again with the token, from the start of history.
    await page.fill('#subscribe-token', spec.reader);
    await page.fill('#resume', 'earliest');
    await page.click('#clear');
    await page.click('#subscribe');
    await page.waitForFunction((id) => [...document.querySelectorAll('#events .event')].some((e) => e.dataset.id === id), id);
    await page.waitForFunction((id) => {
      const item = [...document.querySelectorAll('#events .event')].find((e) => e.dataset.id === id);
      return item.querySelector('.topics').textContent !== 'topics: …';
    }, id);
    const withToken = await page.$$eval('#events .event', (items) =>
      items.map((item) => ({
        id: item.dataset.id,
        data: item.querySelector('pre').textContent,
        topics: item.querySelector('.topics').textContent,
        private: !!item.querySelector('.badge'),
      })),
    );
    await page.fill('#resume', '');
    return { id, withoutToken, withToken };
  });

  // Hostile topic, id, type and data render as text, and run nothing.
  await step('hostile', async () => {
    await page.fill('#matchers .matcher input', HOSTILE.topic);
    await page.fill('#subscribe-token', '');
    await page.click('#clear');
    await page.click('#subscribe');
    await page.waitForFunction(() => document.getElementById('subscribe-state').textContent.startsWith('subscribed'));
    await page.fill('#publish-topics', HOSTILE.topic);
    await page.fill('#publish-data', HOSTILE.data);
    await page.fill('#publish-id', HOSTILE.id);
    await page.fill('#publish-type', HOSTILE.type);
    await page.click('#publish-send');
    await page.waitForFunction(() => document.getElementById('publish-result').textContent.startsWith('Published: '));
    await page.waitForSelector('#events .event');
    await page.waitForFunction(() => document.querySelector('#events .event .topics').textContent !== 'topics: …');
    await page.fill('#publish-id', '');
    await page.fill('#publish-type', '');
    const shown = await page.$eval('#events .event', (item) => ({
      id: item.querySelector('.id').textContent,
      type: item.querySelector('.type').textContent,
      topics: item.querySelector('.topics').textContent,
      data: item.querySelector('pre').textContent,
    }));
    const result = await text('#publish-result');
    await sleep(300);
    return {
      shown,
      result,
      subscribeState: await text('#subscribe-state'),
      injected: await page.$$eval('#events img, #events script, #events b, #events svg, .state img', (n) => n.length),
      pwned: await page.evaluate(() => window.pwned ?? null),
    };
  });

  // The subscription list, updated live, hostile matchers as text.
  await step('subscriptions', async () => {
    await page.fill('#subscriptions-token', spec.reader);
    await page.click('#subscriptions-form button');
    await page.waitForFunction(() => /^\d+ active$/.test(document.getElementById('subscriptions-state').textContent));
    const rows = () => page.$$eval('#subscription-list tbody tr', (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
    const before = await rows();
    const hostile = subscribeOutside(new URLSearchParams({ match: HOSTILE.matcher }));
    await hostile.opened;
    await page.waitForFunction(
      (matcher) => [...document.querySelectorAll('#subscription-list td')].some((td) => td.textContent === matcher),
      HOSTILE.matcher,
    );
    const during = await rows();
    hostile.close();
    await page.waitForFunction(
      (matcher) => ![...document.querySelectorAll('#subscription-list td')].some((td) => td.textContent === matcher),
      HOSTILE.matcher,
      { timeout: 10000 },
    );
    return {
      before,
      during,
      after: await rows(),
      injected: await page.$$eval('#subscription-list svg, #subscription-list img', (n) => n.length),
      pwned: await page.evaluate(() => window.pwned ?? null),
    };
  });

  // Thousands of events: the page keeps a bounded number of them.
  await step('many', async () => {
    const count = 2000;
    await page.fill('#matchers .matcher input', 'https://example.com/flood');
    await page.click('#clear');
    await page.click('#subscribe');
    await page.waitForFunction(() => document.getElementById('subscribe-state').textContent.startsWith('subscribed'));
    const started = Date.now();
    let next = 0;
    const worker = async () => {
      while (next < count) {
        const n = (next += 1);
        await publishOutside({ topic: 'https://example.com/flood', data: JSON.stringify({ n }) });
      }
    };
    await Promise.all(Array.from({ length: 16 }, worker));
    await page.waitForFunction(
      (count) => document.getElementById('event-count').textContent.startsWith(`${count.toLocaleString()} received`),
      count,
      { timeout: 30000 },
    );
    const shown = await page.$$eval('#events .event', (items) => items.length);
    const newest = await page.$eval('#events .event pre', (p) => p.textContent);
    // Pause holds the list still; filtering looks through what is kept.
    await page.click('#pause');
    await publishOutside({ topic: 'https://example.com/flood', data: 'while paused' });
    await sleep(500);
    const pausedHas = await page.$$eval('#events pre', (pres) => pres.some((p) => p.textContent === 'while paused'));
    await page.click('#pause');
    const resumedHas = await page.$$eval('#events pre', (pres) => pres.some((p) => p.textContent === 'while paused'));
    await page.fill('#filter', '"n":1999}');
    const filtered = await page.$$eval('#events pre', (pres) => pres.map((p) => p.textContent));
    await page.fill('#filter', '');
    return { count, shown, newest, pausedHas, resumedHas, filtered, seconds: (Date.now() - started) / 1000, countText: await text('#event-count') };
  });

  await step('screenshot', async () => {
    await page.fill('#matchers .matcher input', TOPIC);
    await page.click('#clear');
    await page.click('#subscribe');
    await page.waitForFunction(() => document.getElementById('subscribe-state').textContent.startsWith('subscribed'));
    for (const [n, title] of [[1, 'Dune'], [2, 'Children of Dune']]) {
      await publishOutside({ topic: TOPIC, data: JSON.stringify({ n, title }), type: 'book.updated' });
    }
    await page.fill('#publish-data', '{"title":"Dune Messiah"}');
    await page.fill('#publish-topics', TOPIC);
    await page.click('#publish-send');
    await page.waitForFunction(() => document.querySelectorAll('#events .event').length >= 3);
    // A trickle of updates, so the charts show some life.
    for (let n = 0; n < 16; n += 1) {
      await publishOutside({ topic: 'https://example.com/ticker', data: String(n) });
      await sleep(250 + 150 * Math.sin(n));
    }
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({ path: spec.screenshot, fullPage: false });
    return { path: spec.screenshot };
  });

  // On a phone the page holds in its width.
  await step('phone', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await sleep(200);
    return page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, width: window.innerWidth }));
  });
} finally {
  for (const controller of outside) controller.abort();
  console.log(JSON.stringify(report));
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
