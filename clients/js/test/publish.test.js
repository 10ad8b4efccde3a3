// publish() against a real hub: ids, data, retries that stay idempotent
// when the hub's answer is lost, and refusals carrying the hub's reason.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { publish, publisherToken, PublishError } from '../src/server.js';
import { SECRET, startHub } from './support/hub.js';
import { startProxy } from './support/proxy.js';
import { sleep, subscriber } from './support/subscriber.js';

let hub;
before(async () => {
  hub = await startHub();
});
after(() => hub.stop());

const options = () => ({ hubUrl: hub.url, key: SECRET });

test('publish returns the event id; data, type and id reach subscribers', async () => {
  const topic = 'https://example.com/books/1';
  const sub = await subscriber(hub.url, { match: topic, types: ['book.updated'] });
  const first = await publish({ topic, data: { title: 'Dune', pages: 412 } }, options());
  const second = await publish(
    { topics: ['https://example.com/other', topic], data: 'plain\ntext', type: 'book.updated', retry: 2500 },
    options(),
  );
  const own = await publish({ topic, data: '"quoted"', id: 'https://example.com/books/1/rev/3' }, options());
  assert.match(first, /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab]/, 'a UUIDv7 of the client');
  assert.equal(own, 'https://example.com/books/1/rev/3');
  const events = await sub.received(3);
  sub.close();
  assert.deepEqual(
    events.map(({ id, type, data, text }) => ({ id, type, data, text })),
    [
      { id: first, type: 'message', data: { title: 'Dune', pages: 412 }, text: '{"title":"Dune","pages":412}' },
      { id: second, type: 'book.updated', data: 'plain\ntext', text: 'plain\ntext' },
      { id: own, type: 'message', data: 'quoted', text: '"quoted"' },
    ],
  );
});

test('private updates get a random UUIDv4 and reach only subscribers allowed to read them', async () => {
  const topic = 'https://example.com/users/1/inbox';
  const anonymous = await subscriber(hub.url, { match: topic });
  const id = await publish({ topic, data: 'secret', private: true }, options());
  await publish({ topic, data: 'public' }, options());
  assert.match(id, /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4/);
  const events = await anonymous.received(1);
  await sleep(200);
  anonymous.close();
  assert.deepEqual(events.map((e) => e.data), ['public']);
});

/** Publishes through a proxy that spoils the first answer with `fault`. */
async function publishThrough(fault, extra = {}) {
  const topic = `https://example.com/retries/${fault.delay ? 'delay' : fault}`;
  const proxy = await startProxy(hub.url, (n) => (n === 1 ? fault : 'forward'));
  const sub = await subscriber(hub.url, { match: topic });
  try {
    const id = await publish(
      { topic, data: 'once' },
      { ...options(), internalHubUrl: proxy.url, ...extra },
    );
    await publish({ topic, data: 'after' }, options());
    const events = await sub.received(2);
    await sleep(200);
    return { id, events: [...sub.events], requests: proxy.requests };
  } finally {
    sub.close();
    await proxy.close();
  }
}

for (const [fault, extra] of [
  ['cut', {}],
  ['bad-gateway', {}],
  [{ delay: 1_500 }, { timeout: 300 }],
]) {
  test(`a retry after ${JSON.stringify(fault)} is the same publication, delivered once`, async () => {
    const { id, events, requests } = await publishThrough(fault, extra);
    assert.equal(requests, 2, 'one retry');
    assert.deepEqual(
      events.map((e) => [e.id, e.data]),
      [
        [id, 'once'],
        [events[1].id, 'after'],
      ],
      'the hub took the first attempt and answered the retry as a duplicate',
    );
  });
}

test('retries give up after `attempts`, with the last failure', async () => {
  const proxy = await startProxy(hub.url, () => 'refuse');
  try {
    await assert.rejects(
      publish({ topic: 'https://example.com/x', data: 'x' }, { ...options(), internalHubUrl: proxy.url, attempts: 2 }),
      (error) => error instanceof PublishError && error.status === 502,
    );
    assert.equal(proxy.requests, 2);
  } finally {
    await proxy.close();
  }
});

test('refusals are errors with the hub status and problem detail, never retried', async () => {
  const proxy = await startProxy(hub.url);
  const through = { ...options(), internalHubUrl: proxy.url };
  const cases = [
    [{ topic: 'https://example.com/x', type: 'mercure' }, through, 400, /reserved/],
    [{ topic: 'https://example.com/x', id: '#1' }, through, 400, /must not start with `#`/],
    [{ topic: 'https://example.com/x', retry: 'soon' }, through, 400, /ASCII digits/],
    [{ topic: 'https://example.com/x' }, { ...through, key: 'a different secret, 32 bytes long!!' }, 401, /not valid/],
    [
      { topic: 'https://example.com/x' },
      { ...through, token: await publisherToken({ ...options(), topics: ['https://example.com/y'] }) },
      403,
      /./,
    ],
  ];
  try {
    for (const [update, opts, status, detail] of cases) {
      const before = proxy.requests;
      await assert.rejects(publish({ data: 'x', ...update }, opts), (error) => {
        assert.ok(error instanceof PublishError, String(error));
        assert.equal(error.status, status, error.message);
        assert.match(error.detail, detail);
        assert.ok(error.message.includes(error.detail));
        return true;
      });
      assert.equal(proxy.requests - before, 1, `not retried: ${JSON.stringify(update)}`);
    }
  } finally {
    await proxy.close();
  }
});

test('an unreachable hub is a PublishError after the retries', async () => {
  await assert.rejects(
    publish({ topic: 'https://example.com/x' }, { ...options(), internalHubUrl: 'http://127.0.0.1:9/.well-known/mercure', attempts: 2 }),
    (error) => error instanceof PublishError && error.status === undefined && /could not publish/.test(error.message),
  );
});

test('a topic is required', async () => {
  await assert.rejects(publish({ data: 'x' }, options()), TypeError);
});
