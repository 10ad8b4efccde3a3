// The subscriber cookie reaching the hub from a real browser: an app on
// localhost:A sets it (HttpOnly, Secure, Path, SameSite) from a login
// route, and the page's EventSource to the hub on localhost:H, opened by
// the package's subscribe() withCredentials, presents it. One user per
// browser context, one token generation each, and a user who never
// signed in: each receives exactly the private updates its token grants.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { publish, serializeCookie, subscriberCookie } from '../src/server.js';
import { html, startApp } from './support/app.js';
import { browserMissing, launch, watch } from './support/browser.js';
import { SECRET, startHub, eventually } from './support/hub.js';

const skip = browserMissing();
const topic = (user) => `https://example.com/users/${user}/notifications`;

let hub;
let app;
let browser;
before(async () => {
  if (skip) return;
  // The app first: the hub allows its origin. Routes read `hub` when called.
  app = await startApp({
    '/': html(`<script type="module">
      import { subscribe } from '/pkg/index.js';
      window.received = [];
      window.states = [];
      window.start = (hubUrl, match) => subscribe(hubUrl, {
        match,
        withCredentials: true,
        onEvent: (event) => window.received.push(event.data),
        onStateChange: (state) => window.states.push(state),
      });
      window.ready = true;
    </script>`),
    '/login': async (url, req, res) => {
      const cookie = await subscriberCookie({
        hubUrl: hub.url,
        key: SECRET,
        generation: url.searchParams.get('generation'),
        topics: [topic(url.searchParams.get('user'))],
        ttl: 900,
      });
      res.writeHead(204, { 'set-cookie': serializeCookie(cookie) }).end();
    },
  });
  hub = await startHub({ host: 'localhost', args: ['--cors-origins', app.origin] });
  browser = await launch();
});
after(async () => {
  await browser?.close();
  await app?.close();
  await hub?.stop();
});

async function userPage(name, login) {
  const context = await browser.newContext();
  const page = await context.newPage();
  watch(page, name);
  await page.goto(`${app.origin}/`);
  await page.waitForFunction(() => window.ready);
  if (login) {
    const status = await page.evaluate((query) => fetch(`/login?${query}`).then((r) => r.status), login);
    assert.equal(status, 204);
  }
  await page.evaluate(([hubUrl, match]) => window.start(hubUrl, match), [hub.url, [topic('alice'), topic('bob')]]);
  await page.waitForFunction(() => window.states.includes('open'));
  return { context, page };
}

test('the subscriber cookie reaches the hub; each user reads only their own private updates', { skip }, async () => {
  const alice = await userPage('alice', 'user=alice&generation=08');
  const bob = await userPage('bob', 'user=bob&generation=07');
  const nobody = await userPage('nobody');
  const cookies = (await alice.context.cookies()).map(({ name, httpOnly, secure, sameSite, path }) => ({ name, httpOnly, secure, sameSite, path }));
  assert.deepEqual(cookies, [
    { name: '__Secure-mercure_access_token', httpOnly: true, secure: true, sameSite: 'Strict', path: '/.well-known/mercure' },
  ]);
  assert.equal((await bob.context.cookies())[0].name, 'mercureAuthorization');
  // The page's scripts cannot read it.
  assert.equal(await alice.page.evaluate(() => document.cookie), '');

  const options = { hubUrl: hub.url, key: SECRET };
  await publish({ topic: topic('alice'), data: 'for alice', private: true }, options);
  await publish({ topic: topic('bob'), data: 'for bob', private: true }, options);
  await publish({ topic: topic('alice'), data: 'for everyone' }, options);
  const received = async ({ page }, n) =>
    eventually(() => page.evaluate((count) => window.received.length >= count && window.received, n));
  assert.deepEqual(await received(alice, 2), ['for alice', 'for everyone']);
  assert.deepEqual(await received(bob, 2), ['for bob', 'for everyone']);
  assert.deepEqual(await received(nobody, 1), ['for everyone']);
  await new Promise((done) => setTimeout(done, 300));
  for (const user of [alice, bob, nobody]) {
    assert.equal(await user.page.evaluate(() => window.received.length), user === nobody ? 1 : 2);
    await user.context.close();
  }
});
