// A static file server on 127.0.0.1 for the browser tests, the benchmark page
// and the demo. Started and stopped by its user; nothing else listens.
//
//   const s = await serve({ mounts: { '/web/': 'build/web', '/pkg/': 'build/web-test/pkg' } });
//   s.url            'http://127.0.0.1:PORT'
//   s.log            every request: {method, path, status, bytes}
//   s.faults         Map path -> 'abort' (send half the body, then reset the connection)
//                    or 'br' (send a .br file's bytes with Content-Encoding: br, as a CDN does)
//   s.brAll = true   every .br file is sent with Content-Encoding: br
//   await s.close()
//
// Cross-origin use (a page on one server, packages on another) is allowed
// with CORS headers; Content-Encoding is exposed only when s.exposeEncoding.
import { createServer } from 'node:http';
import { readFile, stat } from 'node:fs/promises';
import { extname, join, normalize, resolve } from 'node:path';

const TYPES = {
  '.html': 'text/html; charset=utf-8', '.mjs': 'text/javascript', '.js': 'text/javascript', '.css': 'text/css',
  '.json': 'application/json', '.wasm': 'application/wasm', '.ts': 'text/plain', '.png': 'image/png',
  '.txt': 'text/plain; charset=utf-8', '.sig': 'text/plain', '.onnx': 'application/octet-stream',
};

export async function serve({ mounts, port = 0, quiet = true } = {}) {
  const log = [];
  const faults = new Map();
  const state = { brAll: false, exposeEncoding: false };
  const roots = Object.entries(mounts).map(([prefix, dir]) => [prefix, resolve(dir)]);
  const sockets = new Set();
  const server = createServer(async (req, res) => {
    const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    const entry = { method: req.method, path, status: 0, bytes: 0 };
    log.push(entry);
    const send = (status, body, headers = {}) => {
      entry.status = status;
      res.writeHead(status, { 'Access-Control-Allow-Origin': '*', 'Cache-Control': 'no-cache', ...headers });
      res.end(body);
    };
    if (req.method === 'OPTIONS') return send(204, '', { 'Access-Control-Allow-Headers': '*' });
    const m = roots.find(([p]) => path.startsWith(p));
    if (!m || path.includes('\0')) return send(404, 'not found');
    const file0 = normalize(join(m[1], path.slice(m[0].length)));
    if (!file0.startsWith(m[1])) return send(403, 'forbidden');
    let body, file = file0;
    try {
      if ((await stat(file)).isDirectory()) file = join(file, 'index.html');
      body = await readFile(file);
    } catch {
      return send(404, 'not found');
    }
    const fault = faults.get(path);
    const isBr = extname(file) === '.br';
    const headers = { 'Content-Type': TYPES[extname(file)] || 'application/octet-stream' };
    if (isBr && (state.brAll || fault === 'br')) {
      headers['Content-Encoding'] = 'br';
      if (state.exposeEncoding) headers['Access-Control-Expose-Headers'] = 'Content-Encoding';
    }
    entry.bytes = body.length;
    if (fault === 'abort') {
      entry.status = 200;
      res.writeHead(200, { 'Access-Control-Allow-Origin': '*', 'Content-Length': body.length, ...headers });
      res.write(body.subarray(0, body.length >> 1));
      setTimeout(() => res.socket?.destroy(), 50);
      return undefined;
    }
    return send(200, body, { 'Content-Length': body.length, ...headers });
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((ok, bad) => { server.once('error', bad); server.listen(port, '127.0.0.1', ok); });
  const url = `http://127.0.0.1:${server.address().port}`;
  if (!quiet) console.log(`serving on ${url}`);
  return {
    url, log, faults,
    set brAll(v) { state.brAll = v; },
    set exposeEncoding(v) { state.exposeEncoding = v; },
    close: () => new Promise((ok) => { for (const s of sockets) s.destroy(); server.close(() => ok()); }),
  };
}

// `node tests/web/server.mjs PREFIX=DIR ... [--port N]`: serve until stopped.
if (import.meta.url === `file://${process.argv[1]}`) {
  const mounts = {};
  let port = 0;
  const args = process.argv.slice(2);
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--port') port = +args[++i];
    else {
      const [p, d] = args[i].split('=');
      mounts[p] = d;
    }
  }
  const s = await serve({ mounts, port, quiet: false });
  const stop = async () => { await s.close(); process.exit(0); };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
