// A small web application for the browser tests: it serves the package's
// sources as ES modules, a test page or bundle, and any routes a test adds,
// on 127.0.0.1 (pages are opened as http://localhost:PORT).
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve } from 'node:path';

const SOURCES = resolve(import.meta.dirname, '../../src');
const TYPES = { '.js': 'text/javascript', '.html': 'text/html; charset=utf-8' };

/** `routes` maps a path to `(url, req, res) => void`. */
export async function startApp(routes = {}) {
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, 'http://localhost');
    try {
      const route = routes[url.pathname];
      if (route) return await route(url, req, res);
      if (url.pathname.startsWith('/pkg/')) {
        const file = join(SOURCES, normalize(url.pathname.slice('/pkg/'.length)));
        if (!file.startsWith(SOURCES)) return res.writeHead(404).end();
        const body = await readFile(file);
        return res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'text/plain' }).end(body);
      }
      res.writeHead(404).end();
    } catch (error) {
      console.error(error);
      res.writeHead(500).end(String(error));
    }
  });
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address();
  return {
    port,
    origin: `http://localhost:${port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise((done) => server.close(done));
    },
  };
}

export const html = (body) => (url, req, res) =>
  res.writeHead(200, { 'content-type': TYPES['.html'] }).end(`<!doctype html><meta charset="utf-8">${body}`);
