// useSubscription in a real browser, under React StrictMode (development
// build): one connection for two components and StrictMode's double
// effects, closed on unmount, and a remount that resumes after the last
// event so that what was published meanwhile is not lost.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { build } from 'esbuild';
import { publish } from '../src/server.js';
import { html, startApp } from './support/app.js';
import { browserMissing, launch, watch } from './support/browser.js';
import { SECRET, eventually, startHub } from './support/hub.js';

const skip = browserMissing();
const topic = 'https://example.com/hook';

let hub;
let app;
let browser;
before(async () => {
  if (skip) return;
  const bundle = await build({
    entryPoints: [new URL('./pages/hook.js', import.meta.url).pathname],
    bundle: true,
    write: false,
    format: 'esm',
    define: { 'process.env.NODE_ENV': '"development"' },
  });
  const script = bundle.outputFiles[0].text;
  app = await startApp({
    '/': html('<div id="root"></div><script type="module" src="/hook.js"></script>'),
    '/hook.js': (url, req, res) => res.writeHead(200, { 'content-type': 'text/javascript' }).end(script),
  });
  hub = await startHub({ host: 'localhost', args: ['--cors-origins', '*'] });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await app?.close();
  await hub?.stop();
});

test('StrictMode: one connection, closed on unmount; a remount resumes without a gap', { skip }, async () => {
  const page = await browser.newPage();
  watch(page, 'hook');
  const query = new URLSearchParams({ hub: hub.url, match: topic });
  await page.goto(`${app.origin}/?${query}`);
  await page.waitForFunction(() => document.querySelector('#state')?.textContent === 'open');
  const send = (n) => publish({ topic, data: n }, { hubUrl: hub.url, key: SECRET });
  const shown = () => page.$$eval('#events li', (items) => items.map((item) => Number(item.textContent)));
  const shows = (want) =>
    eventually(async () => JSON.stringify(await shown()) === JSON.stringify(want), 10_000, `the list ${want}`);

  // Two components and StrictMode's double effects, one connection.
  assert.equal((await page.evaluate(() => window.opened)).length, 1);
  assert.equal(await hub.metric('tidings_subscribers'), 1);
  const ids = [];
  for (const n of [1, 2, 3]) ids.push(await send(n));
  await shows([1, 2, 3]);
  assert.equal(await page.textContent('#count'), '3');

  // Unmounted: the connection closes (after a second's grace).
  await page.evaluate(() => window.toggle());
  await page.waitForSelector('#hidden');
  await eventually(async () => (await hub.metric('tidings_subscribers')) === 0, 5_000, 'the connection to close');
  for (const n of [4, 5, 6]) await send(n);

  // Mounted again: a new connection resuming after event 3.
  await page.evaluate(() => window.toggle());
  await shows([2, 3, 4, 5, 6]); // bounded to the last 5
  await send(7);
  await shows([3, 4, 5, 6, 7]);
  assert.equal(await page.textContent('#count'), '7');
  const opened = await page.evaluate(() => window.opened);
  assert.equal(opened.length, 2, opened.join('\n'));
  assert.equal(new URL(opened[1]).searchParams.get('last_event_id'), ids[2]);
  assert.equal(await hub.metric('tidings_subscribers'), 1);
  await page.close();
});
