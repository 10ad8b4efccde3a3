// The example app end to end: `next build`, then `next start` beside a real
// hub, every page driven in Debian's Chromium. Run by
// crates/tidings-cli/tests/javascript.rs (TIDINGS_BIN names the hub binary).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';
import { browserMissing, launch, watch } from '../../../clients/js/test/support/browser.js';
import { SECRET, eventually, freePort, startHub } from '../../../clients/js/test/support/hub.js';

const skip = browserMissing();
const APP_DIR = new URL('..', import.meta.url).pathname;
const NEXT = createRequire(import.meta.url).resolve('next/dist/bin/next');
const env = { ...process.env, NEXT_TELEMETRY_DISABLED: '1' };

let hub;
let next;
let origin;
let browser;

before(async () => {
  if (skip) return;
  const build = spawnSync(process.execPath, [NEXT, 'build'], { cwd: APP_DIR, env, stdio: ['ignore', 'inherit', 'inherit'] });
  assert.equal(build.status, 0, 'next build failed');
  const port = await freePort();
  origin = `http://localhost:${port}`;
  hub = await startHub({ host: 'localhost', args: ['--cors-origins', origin] });
  next = spawn(process.execPath, [NEXT, 'start', '--port', String(port), '--hostname', '127.0.0.1'], {
    cwd: APP_DIR,
    env: {
      ...env,
      TIDINGS_HUB_URL: hub.url,
      TIDINGS_JWT_KEY: SECRET,
      SESSION_SECRET: 'end-to-end-session-secret-32-bytes!',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  await eventually(
    () => fetch(`http://127.0.0.1:${port}/`).then((r) => r.ok, () => false),
    60_000,
    'next start to answer',
  );
  browser = await launch();
});

after(async () => {
  await browser?.close();
  next?.kill();
  await hub?.stop();
});

/** A tab of a fresh browser context (its own cookies), at `path`, subscribed. */
async function open(path, name, context) {
  context ??= await browser.newContext();
  const page = await context.newPage();
  watch(page, name);
  await page.goto(origin + path);
  return page;
}

const connected = (page) => page.waitForSelector('[data-testid=state][data-state=open]', { timeout: 10_000 });
const texts = (page, list) => page.$$eval(`[data-testid=${list}] li`, (items) => items.map((item) => item.textContent));
const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
/** A form action resets its form once it is done: the next message waits for that. */
const submitted = (page) => page.waitForFunction(() => document.querySelector('input[name=text]')?.value === '');

test('activity feed: an entry posted in one tab appears in every tab at once', { skip }, async () => {
  const context = await browser.newContext();
  const one = await open('/feed', 'feed 1', context);
  const two = await open('/feed', 'feed 2', context);
  await Promise.all([connected(one), connected(two)]);
  await one.fill('input[name=text]', 'deployed v2');
  await one.click('button[type=submit]');
  await submitted(one);
  for (const tab of [one, two]) {
    await tab.waitForFunction(() => document.querySelector('[data-testid=feed]')?.textContent.includes('deployed v2'));
  }
  await two.fill('input[name=text]', 'rolled back');
  await two.click('button[type=submit]');
  await submitted(two);
  for (const tab of [one, two]) {
    await tab.waitForFunction(() => document.querySelectorAll('[data-testid=feed] li').length === 2);
    const entries = await texts(tab, 'feed');
    assert.deepEqual(entries.map((entry) => entry.split(' ').slice(0, 2).join(' ')), ['rolled back', 'deployed v2']);
  }
  await context.close();
});

async function signIn(user) {
  const page = await open('/notifications', user);
  await page.fill('input[name=user]', user);
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-testid=user]');
  await connected(page);
  return page;
}

async function notify(page, to, text) {
  await page.fill('input[name=to]', to);
  await page.fill('input[name=text]', text);
  await page.click('button:has-text("Notify")');
  await submitted(page);
}

test('notifications: each signed-in user receives only their own', { skip }, async () => {
  const alice = await signIn('alice');
  const bob = await signIn('bob');
  // Bob tries to read Alice's notifications, cookie and all.
  await bob.evaluate((url) => {
    window.eavesdropped = [];
    const source = new EventSource(url, { withCredentials: true });
    source.onmessage = (event) => window.eavesdropped.push(event.data);
    return new Promise((opened) => (source.onopen = opened));
  }, `${hub.url}?match=${encodeURIComponent('https://nextjs.tidings.example/users/alice/notifications')}`);

  await notify(alice, 'bob', 'lunch at noon?');
  await notify(bob, 'alice', 'yes!');
  await notify(bob, 'alice', 'see you there');
  await alice.waitForFunction(() => document.querySelectorAll('[data-testid=notifications] li').length === 2);
  await bob.waitForFunction(() => document.querySelectorAll('[data-testid=notifications] li').length === 1);
  await sleep(500);
  assert.deepEqual(await texts(alice, 'notifications'), ['bob: yes!', 'bob: see you there']);
  assert.deepEqual(await texts(bob, 'notifications'), ['alice: lunch at noon?']);
  assert.deepEqual(await bob.evaluate(() => window.eavesdropped), []);

  // Signed out, the cookie is gone: a new subscription gets nothing private.
  await alice.click('button:has-text("Sign out")');
  await alice.waitForSelector('input[name=user]');
  assert.deepEqual(
    (await alice.context().cookies()).map((cookie) => cookie.name),
    [],
  );
  await alice.context().close();
  await bob.context().close();
});

test('job progress: a reload in the middle of the job loses no line', { skip }, async () => {
  const page = await open('/jobs', 'jobs');
  await page.click('button:has-text("Start a job")');
  await page.waitForURL(/\/jobs\?id=/);
  await connected(page);
  await page.waitForFunction(() => Number(document.querySelector('[data-testid=percent]')?.textContent) >= 25);
  const before = Number(await page.textContent('[data-testid=percent]'));
  assert.ok(before < 100, `the job was already at ${before}%`);
  await page.reload();
  await page.waitForSelector('[data-testid=done]', { timeout: 20_000 });
  const log = (await page.textContent('[data-testid=log]')).split('\n');
  assert.deepEqual(
    log,
    Array.from({ length: 20 }, (_, i) => `step ${i + 1}/20: processed batch ${i + 1}`),
  );
  assert.equal(await page.getAttribute('[data-testid=progress]', 'value'), '100');
  await page.context().close();
});

test('live metrics: the chart gets several samples a second', { skip }, async () => {
  const page = await open('/metrics', 'metrics');
  await connected(page);
  const count = async () => Number(await page.textContent('[data-testid=samples]'));
  await page.waitForFunction(() => Number(document.querySelector('[data-testid=samples]')?.textContent) > 0);
  const first = await count();
  await sleep(2_000);
  const later = await count();
  assert.ok(later - first >= 5, `${later - first} samples in 2 s`);
  assert.match(await page.textContent('[data-testid=latest-rssMiB]'), /^\d+\.\d$/);
  assert.ok(Number((await page.getAttribute('polyline', 'points')).split(' ').length) >= later);
  await page.context().close();
});

test('AI agent: steps, then the answer token by token', { skip }, async () => {
  const page = await open('/agent', 'agent');
  await page.fill('input[name=prompt]', 'why SSE?');
  await page.click('button:has-text("Ask")');
  await page.waitForFunction(() => (document.querySelector('[data-testid=answer]')?.textContent.length ?? 0) > 0);
  const partial = await page.textContent('[data-testid=answer]');
  await page.waitForSelector('[data-testid=done]', { timeout: 20_000 });
  const answer = await page.textContent('[data-testid=answer]');
  assert.ok(partial.length < answer.length, 'the answer grew token by token');
  assert.match(answer, /^You asked: "why SSE\?"\. Server-Sent Events carry this answer/);
  assert.deepEqual(await texts(page, 'steps'), [
    'Reading the question',
    'Searching the notes',
    'Weighing two answers',
    'Writing the answer',
  ]);
  await page.context().close();
});

test('chat between two browsers, up with POST and down with SSE', { skip }, async () => {
  const ann = await open('/chat', 'ann');
  const ben = await open('/chat', 'ben');
  await Promise.all([connected(ann), connected(ben)]);
  const say = async (page, from, text) => {
    await page.fill('input[name=from]', from);
    await page.fill('input[name=text]', text);
    await page.click('button:has-text("Send")');
    await submitted(page);
  };
  await say(ann, 'ann', 'hello?');
  await ben.waitForFunction(() => document.querySelectorAll('[data-testid=messages] li').length === 1);
  await say(ben, 'ben', 'hi ann');
  await say(ann, 'ann', 'no WebSocket needed');
  for (const page of [ann, ben]) {
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=messages] li').length === 3);
    assert.deepEqual(await texts(page, 'messages'), ['ann: hello?', 'ben: hi ann', 'ann: no WebSocket needed']);
  }
  await ann.context().close();
  await ben.context().close();
});

test('two recipes: the seed route handler and tidings both deliver five updates', { skip }, async () => {
  const page = await open('/compare', 'compare');
  await page.click('button:has-text("Run the route handler")');
  await page.click('button:has-text("Publish through tidings")');
  const five = Array.from({ length: 5 }, (_, i) => `Update number ${i}`);
  for (const list of ['route-handler-updates', 'tidings-updates']) {
    await page.waitForFunction((name) => document.querySelectorAll(`[data-testid=${name}] li`).length === 5, list, {
      timeout: 15_000,
    });
    assert.deepEqual(await texts(page, list), five);
  }
  const benchmarks = await fetch(`${origin}/benchmarks`);
  assert.equal(benchmarks.status, 200);
  assert.match(await benchmarks.text(), /^# /);
  await page.context().close();
});
