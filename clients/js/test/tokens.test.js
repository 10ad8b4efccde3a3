// Tokens of both generations, as the package mints them, against a real
// hub: publishing, private updates for subscribers, the hub's issuer and
// audience rules, and the configuration read from environment variables.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import {
  COOKIE_NAMES,
  expiredSubscriberCookie,
  hubUrl,
  linkHeader,
  mintToken,
  publish,
  publisherToken,
  serializeCookie,
  subscriberCookie,
  subscriberToken,
} from '../src/server.js';
import { SECRET, startHub } from './support/hub.js';
import { sleep, subscriber, withToken } from './support/subscriber.js';

let hub;
before(async () => {
  hub = await startHub();
});
after(() => hub.stop());

for (const generation of ['08', '07']) {
  test(`draft-${generation}: minted tokens publish, and read exactly the private updates they grant`, async () => {
    const options = { hubUrl: hub.url, key: SECRET, generation };
    const mine = `https://example.com/g${generation}/users/1`;
    const theirs = `https://example.com/g${generation}/users/2`;
    // Draft-08 grants a URL pattern; draft-07 a URI template.
    const grant = generation === '08' ? `urlpattern:https://example.com/g08/users/1` : mine;
    const token = await subscriberToken({ ...options, topics: [grant] });
    const claims = decodeJwt(token);
    if (generation === '08') {
      assert.equal(decodeProtectedHeader(token).typ, 'at+jwt');
      assert.equal(claims.aud, hub.url);
      assert.equal(claims.iss, hub.origin);
      assert.deepEqual(claims.authorization_details[0].actions, ['subscribe']);
    } else {
      assert.deepEqual(claims.mercure, { subscribe: [mine] });
    }
    const sub = await subscriber(hub.url, { match: [mine, theirs], EventSource: withToken(token) });
    const publisher = await publisherToken({ ...options, topics: [mine, theirs] });
    await publish({ topic: theirs, data: 'theirs', private: true }, { ...options, token: publisher });
    const id = await publish({ topic: mine, data: 'mine', private: true }, { ...options, token: publisher });
    // Minted per publication, for its topics only.
    await publish({ topic: mine, data: 'public' }, options);
    const events = await sub.received(2);
    await sleep(200);
    sub.close();
    assert.deepEqual(
      sub.events.map((e) => e.data),
      ['mine', 'public'],
    );
    assert.equal(events[0].id, id);
  });
}

test('the hub refuses tokens for another audience or issuer', async () => {
  const other = await startHub({ args: ['--jwt-issuer', 'https://auth.example.com'] });
  try {
    const topic = 'https://example.com/x';
    // Signed for `hub`: the audience is wrong for `other`.
    const wrongAudience = await publisherToken({ hubUrl: hub.url, key: SECRET, issuer: 'https://auth.example.com' });
    await assert.rejects(publish({ topic }, { hubUrl: other.url, token: wrongAudience }), { status: 401 });
    // Default issuer (the hub's origin), but `other` trusts another one.
    await assert.rejects(publish({ topic }, { hubUrl: other.url, key: SECRET }), { status: 401 });
    assert.ok(await publish({ topic }, { hubUrl: other.url, key: SECRET, issuer: 'https://auth.example.com' }));
  } finally {
    await other.stop();
  }
});

test('configuration comes from the documented environment variables', async () => {
  const names = [
    'TIDINGS_HUB_URL',
    'TIDINGS_HUB_INTERNAL_URL',
    'TIDINGS_JWT_KEY',
    'TIDINGS_PUBLISHER_JWT_KEY',
    'TIDINGS_SUBSCRIBER_JWT_KEY',
    'TIDINGS_JWT_ISSUER',
    'TIDINGS_PUBLISHER_TOKEN',
    'TIDINGS_TOKEN_GENERATION',
    'TIDINGS_COOKIE_DOMAIN',
  ];
  const saved = Object.fromEntries(names.map((name) => [name, process.env[name]]));
  try {
    for (const name of names) delete process.env[name];
    assert.throws(() => hubUrl(), /TIDINGS_HUB_URL/);
    process.env.TIDINGS_HUB_URL = 'https://hub.example.com/.well-known/mercure';
    process.env.TIDINGS_HUB_INTERNAL_URL = hub.url;
    await assert.rejects(publish({ topic: 'https://example.com/env' }), /TIDINGS_JWT_KEY/);
    // The hub's URL as browsers see it is the audience; the internal one is where to post.
    const wrongAudience = publish({ topic: 'https://example.com/env' }, { key: SECRET, issuer: hub.origin });
    await assert.rejects(wrongAudience, { status: 401 });
    process.env.TIDINGS_HUB_URL = hub.url;
    process.env.TIDINGS_JWT_KEY = SECRET;
    assert.equal(hubUrl(), hub.url);
    assert.ok(await publish({ topic: 'https://example.com/env' }));
    process.env.TIDINGS_TOKEN_GENERATION = '07';
    assert.ok(decodeJwt(await publisherToken()).mercure);
    assert.ok(await publish({ topic: 'https://example.com/env' }));
    process.env.TIDINGS_PUBLISHER_JWT_KEY = 'a wrong publisher key, 32 bytes long!';
    await assert.rejects(publish({ topic: 'https://example.com/env' }), { status: 401 });
    process.env.TIDINGS_PUBLISHER_TOKEN = await publisherToken({ key: SECRET });
    assert.ok(await publish({ topic: 'https://example.com/env' }));
    process.env.TIDINGS_JWT_ISSUER = 'https://elsewhere.example.com';
    assert.equal(decodeJwt(await subscriberToken({ topics: ['x'] })).iss, 'https://elsewhere.example.com');
    process.env.TIDINGS_COOKIE_DOMAIN = 'example.com';
    process.env.TIDINGS_TOKEN_GENERATION = '08';
    const cookie = await subscriberCookie({ topics: ['x'] });
    assert.equal(cookie.domain, 'example.com');
    process.env.TIDINGS_TOKEN_GENERATION = '09';
    assert.throws(() => hubUrl(), /generation/);
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
});

test('the subscriber cookie: name per generation, attributes, lifetime of its token', async () => {
  const options = { hubUrl: 'https://hub.example.com/.well-known/mercure', key: SECRET };
  const cookie = await subscriberCookie({ ...options, topics: ['https://example.com/u/1'], ttl: 600 });
  assert.equal(cookie.name, '__Secure-mercure_access_token');
  assert.deepEqual(
    { ...cookie, value: undefined },
    { name: cookie.name, value: undefined, httpOnly: true, secure: true, sameSite: 'strict', path: '/.well-known/mercure', maxAge: 600 },
  );
  const claims = decodeJwt(cookie.value);
  assert.equal(claims.exp - claims.iat, 600);
  assert.equal(
    serializeCookie(cookie),
    `__Secure-mercure_access_token=${cookie.value}; Path=/.well-known/mercure; Max-Age=600; HttpOnly; Secure; SameSite=Strict`,
  );
  const legacy = await subscriberCookie({ ...options, generation: '07', domain: 'example.com', sameSite: 'lax' });
  assert.equal(legacy.name, COOKIE_NAMES['07']);
  assert.match(serializeCookie(legacy), /^mercureAuthorization=.*; Domain=example\.com; Path=\/\.well-known\/mercure; Max-Age=3600; HttpOnly; Secure; SameSite=Lax$/);
  const expired = expiredSubscriberCookie(options);
  assert.equal(serializeCookie(expired), '__Secure-mercure_access_token=; Path=/.well-known/mercure; Max-Age=0; HttpOnly; Secure; SameSite=Strict');
});

test('the discovery Link header', () => {
  const options = { hubUrl: 'https://hub.example.com/.well-known/mercure' };
  assert.equal(linkHeader(options), '<https://hub.example.com/.well-known/mercure>; rel="mercure"');
  assert.equal(
    linkHeader({ ...options, topic: 'https://example.com/books/1' }),
    '<https://hub.example.com/.well-known/mercure>; rel="mercure", <https://example.com/books/1>; rel="self"',
  );
});

test('tokens need a role and a key', async () => {
  await assert.rejects(mintToken({ hubUrl: hub.url, key: SECRET }), TypeError);
  await assert.rejects(subscriberToken({ hubUrl: hub.url, key: '' }), /TIDINGS_SUBSCRIBER_JWT_KEY/);
});
