// The origin behind Pushpin: answers every subscription with GRIP headers
// so that Pushpin holds the connection open as a stream on the requested
// channel. Publishing goes to Pushpin's HTTP control API, not here.
//
//   GET /events?topic=X  ->  200, Grip-Hold: stream, Grip-Channel: X
//
// Usage: node pushpin-origin.js [port]   (listens on 127.0.0.1 only)
'use strict';

const http = require('node:http');

const port = Number(process.argv[2] || 8092);

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://localhost');
  if (req.method !== 'GET' || url.pathname !== '/events') {
    res.writeHead(404).end();
    return;
  }
  res.writeHead(200, {
    'Content-Type': 'text/event-stream',
    'Grip-Hold': 'stream',
    'Grip-Channel': url.searchParams.get('topic') || '',
  });
  res.end();
});

server.keepAliveTimeout = 60000;
server.listen(port, '127.0.0.1', 4096, () => {
  console.error(`pushpin-origin listening on 127.0.0.1:${port}`);
});
