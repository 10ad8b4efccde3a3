// subscribe() against a real hub, in Node.js on the `eventsource` package:
// matchers of both generations, connection states, and resumption both
// when EventSource reconnects by itself and when it gives up on an HTTP
// error and subscribe() opens a new one.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { publish } from '../src/server.js';
import { subscriptionUrl } from '../src/index.js';
import { SECRET, startHub } from './support/hub.js';
import { startProxy } from './support/proxy.js';
import { sleep, subscriber } from './support/subscriber.js';

let hub;
before(async () => {
  hub = await startHub({ args: ['--retry', '100'] });
});
after(() => hub.stop());

const send = (topic, data) => publish({ topic, data }, { hubUrl: hub.url, key: SECRET });

test('match, match_urlpattern and draft-07 topic selectors', async () => {
  const exact = await subscriber(hub.url, { match: 'https://example.com/m/books/1' });
  const pattern = await subscriber(hub.url, { matchUrlPattern: 'https://example.com/m/books/:id' });
  const template = await subscriber(hub.url, { topic: 'https://example.com/m/{kind}/1' });
  await send('https://example.com/m/books/1', 1);
  await send('https://example.com/m/books/2', 2);
  await send('https://example.com/m/authors/1', 3);
  await pattern.received(2);
  await template.received(2);
  await exact.received(1);
  await sleep(200);
  for (const sub of [exact, pattern, template]) sub.close();
  assert.deepEqual(exact.events.map((e) => e.data), [1]);
  assert.deepEqual(pattern.events.map((e) => e.data), [1, 2]);
  assert.deepEqual(template.events.map((e) => e.data), [1, 3]);
  assert.deepEqual(exact.states, ['open', 'closed']);
});

test('subscriptionUrl', () => {
  assert.equal(
    subscriptionUrl('https://hub.example.com/.well-known/mercure', {
      match: ['a', 'b'],
      matchUrlPattern: '/books/:id',
      topic: 'https://example.com/{x}',
      lastEventId: 'urn:uuid:1',
    }),
    'https://hub.example.com/.well-known/mercure?match=a&match=b&match_urlpattern=%2Fbooks%2F%3Aid&topic=https%3A%2F%2Fexample.com%2F%7Bx%7D&last_event_id=urn%3Auuid%3A1',
  );
  assert.throws(() => subscriptionUrl('https://hub.example.com/.well-known/mercure', {}), /needs match/);
});

test('resumes from the last event id when EventSource reconnects by itself', async () => {
  const topic = 'https://example.com/native';
  const proxy = await startProxy(hub.url);
  const sub = await subscriber(proxy.url, { match: topic });
  try {
    await send(topic, 1);
    await sub.received(1);
    proxy.cutStreams();
    await send(topic, 2);
    await send(topic, 3);
    await sub.received(3);
    await sleep(300);
    assert.deepEqual(sub.events.map((e) => e.data), [1, 2, 3]);
    assert.deepEqual(sub.states, ['open', 'reconnecting', 'open']);
  } finally {
    sub.close();
    await proxy.close();
  }
});

test('after an HTTP error ends the EventSource, a new one resumes after the last event', async () => {
  const topic = 'https://example.com/given-up';
  let failing = false;
  const proxy = await startProxy(hub.url, () => (failing ? 'refuse' : 'forward'));
  const sub = await subscriber(proxy.url, { match: topic, backoff: { min: 100, max: 200 } });
  try {
    await send(topic, 1);
    await sub.received(1);
    failing = true;
    proxy.cutStreams();
    await send(topic, 2);
    // The 502 ends that EventSource; the next ones get 502 too, for a while.
    await sleep(600);
    assert.equal(sub.subscription.state, 'reconnecting');
    await send(topic, 3);
    failing = false;
    await sub.received(3);
    await sleep(300);
    assert.deepEqual(sub.events.map((e) => e.data), [1, 2, 3]);
    assert.equal(sub.states.at(-1), 'open');
    assert.ok(proxy.requests >= 4, `${proxy.requests} requests`);
  } finally {
    sub.close();
    await proxy.close();
  }
});

test('many cuts by the hub itself, every event once and in order', async () => {
  const cutting = await startHub({ args: ['--max-lifetime', '1s', '--retry', '50'] });
  const topic = 'https://example.com/ticker';
  try {
    const sub = await subscriber(cutting.url, { match: topic });
    const opens = () => sub.states.filter((s) => s === 'open').length;
    // The sweeper cuts a stream at its first pass after the lifetime, so a
    // connection lasts between one and two seconds: publish until the
    // subscriber has been cut three times rather than for a fixed while.
    const ids = [];
    for (let n = 1; n <= 40 || (opens() < 4 && n <= 200); n++) {
      ids.push(await publish({ topic, data: n }, { hubUrl: cutting.url, key: SECRET }));
      await sleep(60);
    }
    await sub.received(ids.length);
    await sleep(300);
    sub.close();
    assert.deepEqual(sub.events.map((e) => e.id), ids);
    assert.ok(opens() >= 4, sub.states.join(' '));
  } finally {
    await cutting.stop();
  }
});
