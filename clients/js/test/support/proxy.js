// A fault-injecting HTTP proxy in front of a real hub: it forwards requests
// and, when told to, loses or replaces the hub's answer after the hub has
// acted on the request, or cuts open event streams. This is how the tests
// make a publisher retry, or a subscriber lose its connection, for real.
import { createServer } from 'node:http';
import { Readable } from 'node:stream';

/**
 * `plan(n, request)` decides what happens to the n-th request (from 1):
 * `forward`, `cut` (forward, then drop the connection before answering),
 * `bad-gateway` (forward, then answer 502 instead), `refuse` (answer 502
 * without forwarding), or `{ delay: ms }` (forward, answer after ms).
 */
export async function startProxy(target, plan = () => 'forward') {
  const origin = new URL(target).origin;
  const streams = new Set();
  let count = 0;
  const server = createServer(async (req, res) => {
    const n = ++count;
    const action = plan(n, req);
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    if (action === 'refuse') {
      res.writeHead(502, { 'content-type': 'text/plain' }).end('refused by the test proxy');
      return;
    }
    const headers = { ...req.headers };
    delete headers.host;
    delete headers.connection;
    let upstream;
    try {
      upstream = await fetch(origin + req.url, {
        method: req.method,
        headers,
        body: chunks.length ? Buffer.concat(chunks) : undefined,
        redirect: 'manual',
      });
    } catch (error) {
      res.writeHead(502).end(String(error));
      return;
    }
    if (action === 'cut') {
      res.socket.destroy();
      return;
    }
    if (action === 'bad-gateway') {
      await upstream.arrayBuffer();
      res.writeHead(502, { 'content-type': 'text/plain' }).end('lost by the test proxy');
      return;
    }
    if (action?.delay) await new Promise((done) => setTimeout(done, action.delay));
    if (res.destroyed) return;
    res.writeHead(upstream.status, Object.fromEntries(upstream.headers));
    if (!upstream.body) return res.end();
    const body = Readable.fromWeb(upstream.body);
    streams.add(res);
    res.on('close', () => {
      streams.delete(res);
      body.destroy();
    });
    body.on('error', () => res.destroy());
    body.pipe(res);
  });
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  const url = new URL(target);
  url.host = `127.0.0.1:${server.address().port}`;
  return {
    url: url.toString(),
    /** Requests seen so far. */
    get requests() {
      return count;
    },
    /** Drops every open event stream. */
    cutStreams() {
      for (const res of streams) res.socket?.destroy();
    },
    async close() {
      this.cutStreams();
      server.closeAllConnections();
      await new Promise((done) => server.close(done));
    },
  };
}
