// The sidecar's upstream client (apps/sidecar/upstream.ts) against raw loopback servers:
// response framings, connection reuse, limits, timeouts, aborts and backpressure.
import * as http from 'node:http';
import * as net from 'node:net';
import { Readable, Writable } from 'node:stream';
import type { ServerResponse } from 'node:http';
import { Attempt, HTTPParser, UpstreamError, UpstreamResponse, Upstreams } from '../apps/sidecar/upstream';

jest.setTimeout(20_000);

interface RawServer { port: number; connections: number; requests: string[]; sockets: net.Socket[]; close(): Promise<void> }

/** A server answering each request head with `answer(head, index)` written as raw bytes (undefined: no answer). */
async function rawServer(answer: (head: string, i: number, s: net.Socket) => string | Buffer | undefined): Promise<RawServer> {
  const st: RawServer = { port: 0, connections: 0, requests: [], sockets: [], close: async () => undefined };
  const server = net.createServer((s) => {
    st.connections++;
    st.sockets.push(s);
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      let end: number;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        const head = buf.slice(0, end);
        buf = buf.slice(end + 4);
        const n = st.requests.push(head) - 1;
        const out = answer(head, n, s);
        if (out !== undefined) s.write(out);
      }
    });
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  st.port = (server.address() as net.AddressInfo).port;
  let closed: Promise<void> | undefined;
  st.close = () => (closed ??= new Promise<void>((r) => { for (const s of st.sockets) s.destroy(); server.close(() => r()); }));
  open.push(st);
  return st;
}

/** Collects what an UpstreamResponse pipes, as a ServerResponse would receive it. */
class Sink extends Writable {
  chunks: Buffer[] = [];
  ended = new Promise<string>((resolve, reject) => { this.on('finish', () => resolve(Buffer.concat(this.chunks).toString())); this.on('close', () => { if (!this.writableFinished) reject(new Error('sink destroyed')); }); });
  constructor(private readonly delayMs = 0, highWaterMark = 16 * 1024) { super({ highWaterMark }); }
  _write(c: Buffer, _e: string, cb: () => void): void { this.chunks.push(c); if (this.delayMs) setTimeout(cb, this.delayMs); else cb(); }
}
const asRes = (s: Sink) => s as unknown as ServerResponse;

const ok = (body: string, extra = '') => `HTTP/1.1 200 OK\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
let pool: Upstreams;
/** Servers a test opened: closed after it even when an expectation failed (else jest waits on them). */
const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  pool?.close();
  await Promise.all(open.splice(0).map((s) => s.close()));
});

function get(port: number, extra: Partial<Parameters<Upstreams['send']>[0]> = {}, onAttempt?: Parameters<Upstreams['send']>[1]): Promise<UpstreamResponse> {
  return pool.send({ host: '127.0.0.1', port, method: 'GET', path: '/p?q=1', head: `host: svc\r\nx-a: 1\r\n`, ...extra }, onAttempt);
}
async function body(r: UpstreamResponse): Promise<string> {
  const s = new Sink();
  r.pipe(asRes(s));
  return s.ended;
}

test('this Node.js exposes the llhttp binding the client is built on', () => {
  for (const k of ['RESPONSE', 'kOnHeaders', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete'] as const) expect(typeof HTTPParser[k]).toBe('number');
});

test('sends the request line and head as given, and reuses the connection for the next request', async () => {
  const srv = await rawServer(() => ok('hello'));
  pool = new Upstreams({ resolve: new Map() });
  for (let i = 0; i < 3; i++) {
    const r = await get(srv.port);
    expect(r.statusCode).toBe(200);
    expect(await body(r)).toBe('hello');
  }
  expect(srv.requests[0]).toBe('GET /p?q=1 HTTP/1.1\r\nhost: svc\r\nx-a: 1');
  expect(srv.connections).toBe(1);
  await srv.close();
});

test('chunked, close-delimited, HEAD, 204 and 103-then-200 responses all end where they should', async () => {
  const srv = await rawServer((head, _i, s) => {
    const path = head.split(' ')[1];
    if (path === '/chunked') return 'HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n';
    if (path === '/close') { s.end('HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end'); return undefined; }
    if (path === '/head') return 'HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n';
    if (path === '/204') return 'HTTP/1.1 204 No Content\r\n\r\n';
    if (path === '/103') return 'HTTP/1.1 103 Early Hints\r\nlink: </a.css>\r\n\r\n' + ok('final');
    return 'HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n';
  });
  pool = new Upstreams({ resolve: new Map() });
  expect(await body(await get(srv.port, { path: '/chunked' }))).toBe('hello world');
  expect(await body(await get(srv.port, { path: '/close' }))).toBe('until the end');
  const head = await get(srv.port, { path: '/head', method: 'HEAD' });
  expect(head.rawHeaders).toEqual(['content-length', '1000']);
  expect(await body(head)).toBe('');
  expect(await body(await get(srv.port, { path: '/204' }))).toBe('');
  const early = await get(srv.port, { path: '/103' });
  expect(early.statusCode).toBe(200);
  expect(await body(early)).toBe('final');
  // The close-delimited answer cost its connection; HEAD and 204 did not.
  expect(srv.connections).toBe(2);
  await srv.close();
});

test('more than 32 headers and repeated ones arrive whole, in order and case', async () => {
  const many = Array.from({ length: 40 }, (_, i) => `X-H${i}: v${i}\r\n`).join('');
  const srv = await rawServer(() => ok('x', `${many}Set-Cookie: a=1\r\nset-cookie: b=2\r\n`));
  pool = new Upstreams({ resolve: new Map() });
  const r = await get(srv.port);
  expect(r.rawHeaders.length).toBe(2 * 43);
  expect(r.rawHeaders.slice(2, 6)).toEqual(['X-H0', 'v0', 'X-H1', 'v1']);
  expect(r.rawHeaders.slice(-4)).toEqual(['Set-Cookie', 'a=1', 'set-cookie', 'b=2']);
  await body(r);
  await srv.close();
});

test('a malformed response or an oversized head fails with the parser\'s code; a response nobody asked for closes the connection', async () => {
  const srv = await rawServer((head, _i, s) => {
    const path = head.split(' ')[1];
    if (path === '/bad') return 'HTTP/1.1 2OO OK\r\n\r\n';
    if (path === '/big') return `HTTP/1.1 200 OK\r\nx-big: ${'a'.repeat(4000)}\r\ncontent-length: 0\r\n\r\n`;
    setTimeout(() => s.write(ok('unsolicited')), 50);
    return ok('fine');
  });
  pool = new Upstreams({ resolve: new Map(), maxHeaderBytes: 1024 });
  await expect(get(srv.port, { path: '/bad' })).rejects.toMatchObject({ code: expect.stringMatching(/^HPE_/) });
  await expect(get(srv.port, { path: '/big' })).rejects.toMatchObject({ code: 'HPE_HEADER_OVERFLOW' });
  expect(await body(await get(srv.port, { path: '/ok' }))).toBe('fine');
  await new Promise((r) => setTimeout(r, 150));
  // The connection that sent an extra response was dropped; the next request opens a new one.
  const before = srv.connections;
  expect(await body(await get(srv.port, { path: '/ok2' }))).toBe('fine');
  expect(srv.connections).toBe(before + 1);
  expect(pool.stats()[`127.0.0.1:${srv.port}`].connections).toBe(1);
  await srv.close();
});

test('connection and queue limits: beyond both a request fails at once with MESH_OVERFLOW; the queued one is served next', async () => {
  const held: net.Socket[] = [];
  const srv = await rawServer((_h, _i, s) => { held.push(s); return undefined; });
  pool = new Upstreams({ resolve: new Map(), maxConnectionsPerDestination: 1, maxPendingPerDestination: 1 });
  const first = get(srv.port);
  const queued = get(srv.port, { path: '/second' });
  await expect(get(srv.port)).rejects.toBeInstanceOf(UpstreamError);
  await expect(get(srv.port)).rejects.toMatchObject({ code: 'MESH_OVERFLOW' });
  await new Promise((r) => setTimeout(r, 100));
  expect(srv.requests).toHaveLength(1);
  held[0].write(ok('one'));
  expect(await body(await first)).toBe('one');
  await new Promise((r) => setTimeout(r, 100));
  expect(srv.requests[1]).toMatch(/^GET \/second /);
  held[0].write(ok('two'));
  expect(await body(await queued)).toBe('two');
  expect(srv.connections).toBe(1);
  await srv.close();
});

test('no headers within the per-try time: MESH_PER_TRY_TIMEOUT and the connection is closed', async () => {
  let closed = 0;
  const srv = await rawServer((_h, _i, s) => { s.on('close', () => closed++); return undefined; });
  pool = new Upstreams({ resolve: new Map() });
  const t0 = Date.now();
  await expect(get(srv.port, { headersTimeoutMs: 200 })).rejects.toMatchObject({ code: 'MESH_PER_TRY_TIMEOUT' });
  expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
  await new Promise((r) => setTimeout(r, 100));
  expect(closed).toBe(1);
  await srv.close();
});

test('aborting: a queued attempt leaves the queue, one in flight closes its connection', async () => {
  const srv = await rawServer(() => undefined);
  pool = new Upstreams({ resolve: new Map(), maxConnectionsPerDestination: 1 });
  const inFlight: { current?: Attempt } = {};
  const queued: { current?: Attempt } = {};
  const a = get(srv.port, {}, inFlight);
  const b = get(srv.port, {}, queued);
  const key = `127.0.0.1:${srv.port}`;
  expect(pool.stats()[key]).toEqual({ connections: 1, pending: 1 });
  queued.current!.destroy();
  await expect(b).rejects.toMatchObject({ code: 'ECONNABORTED' });
  expect(pool.stats()[key].pending).toBe(0);
  inFlight.current!.destroy();
  await expect(a).rejects.toMatchObject({ code: 'ECONNABORTED' });
  await new Promise((r) => setTimeout(r, 50));
  expect(pool.stats()[key]).toEqual({ connections: 0, pending: 0 });
  await srv.close();
});

test('idle connections close after the idle timeout', async () => {
  let closed = 0;
  const srv = await rawServer((_h, _i, s) => { s.once('close', () => closed++); return ok('x'); });
  pool = new Upstreams({ resolve: new Map(), idleTimeoutMs: 200 });
  await body(await get(srv.port));
  await new Promise((r) => setTimeout(r, 100));
  expect(closed).toBe(0);
  await new Promise((r) => setTimeout(r, 400));
  expect(closed).toBe(1);
  expect(pool.stats()).toEqual({});
  await srv.close();
});

test('a streamed request body of unknown length goes chunked; one of known length as it is', async () => {
  const got: Array<{ te?: string; cl?: string; body: string }> = [];
  const srv = http.createServer((req, res) => {
    let b = '';
    req.on('data', (c) => { b += c; });
    req.on('end', () => { got.push({ te: req.headers['transfer-encoding'], cl: req.headers['content-length'], body: b }); res.end('ok'); });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  open.push({ close: () => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }) });
  const port = (srv.address() as net.AddressInfo).port;
  pool = new Upstreams({ resolve: new Map() });
  const parts = ['first ', 'second ', 'third'];
  expect(await body(await get(port, { method: 'POST', body: Readable.from(parts.map((p) => Buffer.from(p))) }))).toBe('ok');
  expect(await body(await get(port, { method: 'POST', head: 'host: svc\r\n', body: Readable.from(parts.map((p) => Buffer.from(p))), bodyLength: 18 }))).toBe('ok');
  expect(await body(await get(port, { method: 'PUT', head: 'host: svc\r\n', body: Buffer.from('abc'), bodyLength: 3 }))).toBe('ok');
  expect(got).toEqual([
    { te: 'chunked', cl: undefined, body: 'first second third' },
    { te: undefined, cl: '18', body: 'first second third' },
    { te: undefined, cl: '3', body: 'abc' },
  ]);
});

test('a slow client holds the upstream back (backpressure), and still gets every byte', async () => {
  const size = 32 * 1024 * 1024;
  let upstreamSocket: net.Socket | undefined;
  const srv = await rawServer((_h, _i, s) => {
    upstreamSocket = s;
    s.write(`HTTP/1.1 200 OK\r\ncontent-length: ${size}\r\n\r\n`);
    const chunk = Buffer.alloc(64 * 1024, 'z');
    let sent = 0;
    const pump = () => { while (sent < size) { sent += chunk.length; if (!s.write(chunk)) { s.once('drain', pump); return; } } };
    pump();
    return undefined;
  });
  pool = new Upstreams({ resolve: new Map() });
  const r = await get(srv.port);
  const sink = new Sink(5, 64 * 1024);
  r.pipe(asRes(sink));
  await new Promise((res) => setTimeout(res, 500));
  // Bytes the upstream got into the kernel: the client's consumption plus socket buffers, not the whole body.
  const flushed = upstreamSocket!.bytesWritten - upstreamSocket!.writableLength;
  const consumed = sink.chunks.reduce((n, c) => n + c.length, 0);
  expect(consumed).toBeLessThan(size / 4);
  expect(flushed).toBeLessThan(consumed + 12 * 1024 * 1024);
  // Now read at full speed: every byte arrives.
  (sink as unknown as { delayMs: number }).delayMs = 0;
  const all = await sink.ended;
  expect(all.length).toBe(size);
  await srv.close();
});

test('an idle connection past the idle timeout is not reused, even before the sweep closes it', async () => {
  const srv = await rawServer(() => ok('x'));
  // Sweeps every 500 ms from now; the connection goes idle at ~5 ms, so the sweep at 1,000 ms
  // keeps it (idle < 1,000 ms) and the next is at 1,500 ms. The request at ~1,200 ms must not use it.
  pool = new Upstreams({ resolve: new Map(), idleTimeoutMs: 1000 });
  await body(await get(srv.port));
  await new Promise((r) => setTimeout(r, 1200));
  await body(await get(srv.port));
  expect(srv.connections).toBe(2);
  await srv.close();
});
