// A plain Node.js SSE broadcast server, as tutorials build it: the
// `http` module, a Set of open responses per topic, write to each on publish.
//
//   GET  /events?topic=X   streams text/event-stream
//   POST /publish?topic=X  sends the request body as one event to X's subscribers
//
// Usage: node node-sse.js [port]   (listens on 127.0.0.1 only)
'use strict';

const http = require('node:http');

const port = Number(process.argv[2] || 8091);
const topics = new Map(); // topic -> Set of responses
let nextId = 0;

function topicOf(req) {
  return new URL(req.url, 'http://localhost').searchParams.get('topic') || '';
}

const server = http.createServer((req, res) => {
  const path = req.url.split('?')[0];
  if (req.method === 'GET' && path === '/events') {
    const topic = topicOf(req);
    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
    });
    res.write(':\n\n');
    if (!topics.has(topic)) topics.set(topic, new Set());
    const subscribers = topics.get(topic);
    subscribers.add(res);
    req.on('close', () => {
      subscribers.delete(res);
      if (subscribers.size === 0) topics.delete(topic);
    });
  } else if (req.method === 'POST' && path === '/publish') {
    const topic = topicOf(req);
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const data = Buffer.concat(chunks).toString();
      const event = `id: ${nextId++}\ndata: ${data}\n\n`;
      for (const sub of topics.get(topic) || []) sub.write(event);
      res.writeHead(204).end();
    });
  } else {
    res.writeHead(404).end();
  }
});

// Subscriptions are long-lived; the defaults would cut idle ones.
server.requestTimeout = 0;
server.headersTimeout = 60000;
server.keepAliveTimeout = 60000;
server.listen(port, '127.0.0.1', 4096, () => {
  console.error(`node-sse listening on 127.0.0.1:${port}`);
});
