// Request framing through the proxy (issue "Node sidecar safety, round 2"): every body it
// forwards is framed by the proxy itself, so no client can make the backend read a second
// request that no route rule saw, and no other client can receive its response.
import * as net from 'node:net';
import { RouteTable } from '../model';
import { rawBackend, RawBackend } from './support/raw-backend';
import { raw, resolveTo, RunningProxy, sleep, startProxy, viaProxy } from './support/sidecar';

const HOST = 'api.default.svc.cluster.local';
const table: RouteTable = {
  apiVersion: 'mesh.cdk8s.io/v1alpha1', kind: 'RouteTable', clusterDomain: 'cluster.local', outboundTrafficPolicy: 'REGISTRY_ONLY',
  services: [{ host: HOST, ports: [8080] }],
  virtualHosts: [{
    name: 'default/api', hosts: [HOST], gateways: ['mesh'], routes: [
      // What an attacker wants to reach: the rules answer 403 here, the backend never sees it.
      { match: [{ uri: { kind: 'prefix', value: '/admin' } }], destinations: [{ host: HOST, port: 8080, weight: 100 }], fault: { abort: { httpStatus: 403, percentage: 100 } } },
      { match: [], destinations: [{ host: HOST, port: 8080, weight: 100 }] },
    ],
  }],
  gateways: [],
};

let backend: RawBackend;
let proxy: RunningProxy;
beforeAll(async () => {
  backend = await rawBackend();
  proxy = await startProxy(table, resolveTo({ [`${HOST}:8080`]: backend.port }));
});
afterAll(async () => {
  await proxy.stop('SIGKILL');
  await backend.close();
});

/** The request the attacker hides in a body: the rules answer it 403. */
const SMUGGLED = 'GET /admin/secret HTTP/1.1\r\nHost: api\r\n\r\n';
const target = (n: number) => `http://api:8080/public/case-${n}`;

/**
 * The corpus: ambiguous framings from the request smuggling literature (CL.TE, TE.CL,
 * TE.TE obfuscation, duplicate and listed lengths, bare CR/LF, NUL, obs-fold, oversized
 * chunk sizes, hop-by-hop abuse). Each is a whole request head and body, aimed at /public.
 */
const CORPUS: Array<[string, (n: number) => string]> = [
  ['CL.TE: both headers, the body is a terminating chunk then a request', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nContent-Length: ${5 + SMUGGLED.length}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['TE.CL: chunked, with a Content-Length that ends early', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n${(SMUGGLED.length).toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n`],
  ['two Content-Length headers that differ', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nContent-Length: 0\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`],
  ['two equal Content-Length headers', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc`],
  ['a comma-listed Content-Length', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nContent-Length: 3, ${SMUGGLED.length + 3}\r\n\r\nabc${SMUGGLED}`],
  ['Content-Length with a sign', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nContent-Length: +3\r\n\r\nabc`],
  ['Content-Length in hex', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nContent-Length: 0x3\r\n\r\nabc`],
  ['negative Content-Length', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nContent-Length: -1\r\n\r\n${SMUGGLED}`],
  ['a space before the colon of Content-Length', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nContent-Length : ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`],
  ['Transfer-Encoding: xchunked beside a Content-Length', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nContent-Length: ${5 + SMUGGLED.length}\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['Transfer-Encoding with a space before the colon', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nTransfer-Encoding : chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['Transfer-Encoding: chunked, identity', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['Transfer-Encoding: identity, then chunked on a second line', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['Transfer-Encoding with a tab before the value', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nTransfer-Encoding:\tchunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['Transfer-Encoding folded onto a second line (obs-fold)', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nTransfer-Encoding:\r\n chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['an obs-fold in an ordinary header', (n) => `GET ${target(n)} HTTP/1.1\r\nHost: api\r\nX-Folded: a\r\n b\r\n\r\n`],
  ['Transfer-Encoding: CHUNKED (upper case)', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: CHUNKED\r\n\r\n3\r\nabc\r\n0\r\n\r\n`],
  ['Transfer-Encoding: gzip (not chunked last)', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: gzip\r\n\r\n${SMUGGLED}`],
  ['chunked on HTTP/1.0', (n) => `POST ${target(n)} HTTP/1.0\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n${SMUGGLED}`],
  ['bare LF line endings', (n) => `GET ${target(n)} HTTP/1.1\nHost: api\n\n`],
  ['a bare CR inside a header value', (n) => `GET ${target(n)} HTTP/1.1\r\nHost: api\r\nX-A: a\rContent-Length: 5\r\n\r\n`],
  ['a NUL inside a header value', (n) => `GET ${target(n)} HTTP/1.1\r\nHost: api\r\nX-A: a\u0000b\r\n\r\n`],
  ['whitespace before the first header line', (n) => `GET ${target(n)} HTTP/1.1\r\n Host: api\r\n\r\n`],
  ['a chunk size that overflows 64 bits', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff1\r\nabc\r\n0\r\n\r\n`],
  ['a chunk longer than its size line', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n`],
  ['a chunk size with a bare-LF extension', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\n3;x=\n\r\nabc\r\n0\r\n\r\n`],
  ['a last chunk ended with bare LFs', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\n\n${SMUGGLED}`],
  ['trailers that carry a Content-Length', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`],
  ['Connection: content-length (the body unframed when the header is stripped)', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nConnection: content-length\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`],
  ['Connection: transfer-encoding with a chunked body', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nConnection: transfer-encoding\r\nTransfer-Encoding: chunked\r\n\r\n${SMUGGLED.length.toString(16)}\r\n${SMUGGLED}\r\n0\r\n\r\n`],
  ['Connection: close, content-length, host', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nConnection: close, Content-Length, Host\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`],
  ['a GET with a body that is a request', (n) => `GET ${target(n)} HTTP/1.1\r\nHost: api\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`],
  ['a long body streamed past the buffer limit, as a request', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nContent-Length: ${70_000 + SMUGGLED.length}\r\n\r\n${'x'.repeat(70_000)}${SMUGGLED}`],
  ['Expect: 100-continue with a body', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nExpect: 100-continue\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`],
  ['an h2c upgrade (Upgrade, HTTP2-Settings)', (n) => `GET ${target(n)} HTTP/1.1\r\nHost: api\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n`],
  ['a websocket upgrade with a body', (n) => `GET ${target(n)} HTTP/1.1\r\nHost: api\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nContent-Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`],
  ['a request line with a tab', (n) => `GET\t${target(n)} HTTP/1.1\r\nHost: api\r\n\r\n`],
  ['a request line with two spaces', (n) => `GET  ${target(n)} HTTP/1.1\r\nHost: api\r\n\r\n`],
  ['a header name with a space inside', (n) => `POST ${target(n)} HTTP/1.1\r\nHost: api\r\nContent Length: ${SMUGGLED.length}\r\n\r\n${SMUGGLED}`],
  ['two Host headers', (n) => `GET /public/case-${n} HTTP/1.1\r\nHost: api\r\nHost: evil\r\n\r\n`],
];

/** Send raw bytes, close our side after `ms`, and return what came back. */
async function send(bytes: string, ms = 1500): Promise<string> {
  return raw(proxy.port, Buffer.from(bytes, 'latin1'), ms);
}

describe('the framing corpus: each request is refused with 400 or reaches the backend as exactly one well-framed request', () => {
  const answers = new Map<number, string>();
  beforeAll(async () => {
    await Promise.all(CORPUS.map(async ([, make], n) => answers.set(n, await send(make(n)))));
    await sleep(200);
  }, 30_000);

  test('the backend never saw the hidden request, and could parse every byte it got', () => {
    expect(backend.requests().filter((r) => r.url.includes('admin'))).toEqual([]);
    expect(backend.connections.filter((c) => c.error).map((c) => `${c.error}: ${JSON.stringify(c.bytes.slice(0, 200))}`)).toEqual([]);
  });

  test.each(CORPUS.map(([name], n) => [name, n] as const))('%s', (_name, n) => {
    const answer = answers.get(n)!;
    // The first final status (a 100 Continue may come before it).
    const status = [...answer.matchAll(/HTTP\/1\.[01] (\d{3})/g)].map((m) => m[1]).find((c) => !c.startsWith('1'));
    const reached = backend.requests().filter((r) => r.url === `/public/case-${n}`);
    if (status === '400') {
      expect([answer.slice(0, 300), reached]).toEqual([answer.slice(0, 300), []]);
    } else {
      // Forwarded: once, and framed by the proxy (one Content-Length or chunked, never both, never the client's).
      expect(status).toBe('200');
      expect(reached).toHaveLength(1);
      const names = reached[0].headers.filter((_, i) => i % 2 === 0).map((h) => h.toLowerCase());
      expect(names.filter((h) => h === 'content-length' || h === 'transfer-encoding').length).toBeLessThanOrEqual(1);
      expect(names).not.toContain('upgrade');
      expect(names).not.toContain('http2-settings');
    }
  });
});

describe('another client always gets its own response', () => {
  test('clients sharing upstream connections with smuggling attempts get the answer to their own request', async () => {
    const attacks = CORPUS.filter(([name]) => /Connection: content-length|CL\.TE|TE\.CL|comma|GET with a body|trailers/.test(name)).map(([, make]) => make);
    const wrong: string[] = [];
    for (let round = 0; round < 5; round++) {
      await Promise.all([
        ...attacks.map((make, i) => send(make(1000 + round * 100 + i), 400)),
        ...Array.from({ length: 10 }, async (_, i) => {
          const path = `/public/victim-${round}-${i}`;
          const r = await viaProxy(proxy.port, `http://api:8080${path}`);
          if (r.body !== `GET ${path}`) wrong.push(`${path} got ${r.status} ${r.body}`);
        }),
      ]);
    }
    expect(wrong).toEqual([]);
    expect(backend.requests().filter((r) => r.url.includes('admin'))).toEqual([]);
  }, 30_000);
});

test('a route cannot reframe a request: the proxy writes exactly one Content-Length, its own', async () => {
  const r = await send(`POST ${target(2000)} HTTP/1.1\r\nHost: api\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc`, 3000);
  expect(r).toMatch(/^HTTP\/1\.1 200/);
  const seen = backend.requests().find((x) => x.url === '/public/case-2000')!;
  const cl = seen.headers.flatMap((h, i) => (i % 2 === 0 && h.toLowerCase() === 'content-length' ? [seen.headers[i + 1]] : []));
  expect([cl, seen.body]).toEqual([['3'], 'abc']);
});

describe('pipelined requests', () => {
  test('3,000 pipelined GETs on one connection are served in order over one upstream connection; other clients are not refused', async () => {
    const before = backend.connections.length;
    const n = 3000;
    const sock = net.connect(proxy.port, '127.0.0.1');
    let got = '';
    const done = new Promise<void>((resolve) => {
      sock.on('data', (d) => { got += d.toString('latin1'); if ((got.match(/HTTP\/1\.1 /g) ?? []).length >= n) resolve(); });
      sock.on('close', () => resolve());
    });
    sock.on('error', () => undefined);
    sock.write(Array.from({ length: n }, (_, i) => `GET http://api:8080/public/p-${i} HTTP/1.1\r\nHost: api\r\n\r\n`).join(''));
    const other = await viaProxy(proxy.port, 'http://api:8080/public/other');
    await done;
    sock.destroy();
    expect(other.status).toBe(200);
    const bodies = [...got.matchAll(/\r\n\r\n(GET \/public\/p-\d+)/g)].map((m) => m[1]);
    expect(bodies).toHaveLength(n);
    expect(bodies.every((b, i) => b === `GET /public/p-${i}`)).toBe(true);
    // One connection for the pipelined client (the other client may have needed a second).
    expect(backend.connections.length - before).toBeLessThanOrEqual(2);
  }, 60_000);
});

test('pipelined requests waiting beyond --max-pipelined (all connections together): the connection that overruns it is closed, others are served', async () => {
  const back = await rawBackend();
  const p = await startProxy(table, [...resolveTo({ [`${HOST}:8080`]: back.port }), '--max-pipelined', '50']);
  try {
    const flood = await new Promise<string>((resolve) => {
      const sock = net.connect(p.port, '127.0.0.1', () => sock.write(Array.from({ length: 200 }, (_, i) => `GET http://api:8080/public/f-${i} HTTP/1.1\r\nHost: api\r\n\r\n`).join('')));
      let got = '';
      sock.on('data', (d) => (got += d.toString('latin1')));
      sock.on('error', () => undefined);
      sock.on('close', () => resolve(got));
    });
    // Closed before all 200 were answered; what was answered came in order.
    const answered = [...flood.matchAll(/\r\n\r\n(GET \/public\/f-\d+)/g)].map((m) => m[1]);
    expect(answered.length).toBeLessThan(200);
    expect(answered).toEqual(answered.map((_, i) => `GET /public/f-${i}`));
    expect(await p.metric('mesh_proxy_overflow_total', { limit: 'pipelined_requests' })).toBe(1);
    expect((await viaProxy(p.port, 'http://api:8080/public/after')).body).toBe('GET /public/after');
  } finally {
    await p.stop('SIGKILL');
    await back.close();
  }
});

test('a pipelined POST whose body arrives while the request before it is served is read and answered', async () => {
  const sock = net.connect(proxy.port, '127.0.0.1');
  let got = '';
  sock.on('data', (d) => (got += d.toString('latin1')));
  sock.on('error', () => undefined);
  await new Promise<void>((r) => sock.once('connect', () => r()));
  // The second request's head comes with the first; its body only once the first is in flight.
  sock.write(`GET http://api:8080/public/first HTTP/1.1\r\nHost: api\r\n\r\nPOST http://api:8080/public/second HTTP/1.1\r\nHost: api\r\nContent-Length: 5\r\n\r\n`);
  await sleep(100);
  sock.write('hello');
  for (let i = 0; i < 100 && (got.match(/HTTP\/1\.1 200/g) ?? []).length < 2; i++) await sleep(50);
  sock.destroy();
  expect([...got.matchAll(/\r\n\r\n((?:GET|POST) \/public\/[a-z]+)/g)].map((m) => m[1])).toEqual(['GET /public/first', 'POST /public/second']);
  expect(backend.requests().find((r) => r.url === '/public/second')?.body).toBe('hello');
});

describe('responses', () => {
  let up: RawBackend;
  let p: RunningProxy;
  beforeAll(async () => {
    up = await rawBackend((r, sock) => {
      if (r.url === '/trailers') {
        return 'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Leak\r\n\r\n2\r\nok\r\n0\r\nX-Leak: secret-of-the-first-client\r\n\r\n';
      }
      if (r.url === '/close-delimited-reset') {
        sock.write('HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\npartial body');
        setTimeout(() => sock.resetAndDestroy(), 100);
        return '';
      }
      if (r.url === '/te-and-cl') {
        // Both framings on a response: llhttp reads it by Transfer-Encoding (or refuses it).
        return 'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n';
      }
      return undefined;
    });
    p = await startProxy(table, resolveTo({ [`${HOST}:8080`]: up.port }));
  });
  afterAll(async () => { await p.stop('SIGKILL'); await up.close(); });

  test('upstream trailers reach no one: not the next response on the same upstream connection', async () => {
    const first = await viaProxy(p.port, 'http://api:8080/trailers');
    const second = await viaProxy(p.port, 'http://api:8080/public/next');
    expect(first.body).toBe('ok');
    expect(second.body).toBe('GET /public/next');
    expect(JSON.stringify([first.headers, second.headers])).not.toContain('secret-of-the-first-client');
    // Both went over one upstream connection: the case the leak needed.
    expect(up.connections.length).toBe(1);
  });

  test('an upstream reset inside a close-delimited body fails the response for the client (HTTP/1.1 and HTTP/1.0)', async () => {
    const r11 = await new Promise<string>((resolve) => {
      const s = net.connect(p.port, '127.0.0.1', () => s.write('GET http://api:8080/close-delimited-reset HTTP/1.1\r\nHost: api\r\n\r\n'));
      let got = '';
      s.on('data', (d) => (got += d));
      s.on('error', (e) => resolve(`error ${(e as NodeJS.ErrnoException).code}`));
      // A chunked response that ends without its last chunk is incomplete.
      s.on('end', () => resolve(got.endsWith('0\r\n\r\n') ? 'complete' : 'incomplete'));
    });
    expect(r11).not.toBe('complete');
    const r10 = await new Promise<string>((resolve) => {
      const s = net.connect(p.port, '127.0.0.1', () => s.write('GET http://api:8080/close-delimited-reset HTTP/1.0\r\nHost: api\r\n\r\n'));
      s.on('data', () => undefined);
      // HTTP/1.0 has no chunks: only a reset tells the client the body was cut.
      s.on('error', (e) => resolve(`error ${(e as NodeJS.ErrnoException).code}`));
      s.on('end', () => resolve('clean end'));
    });
    expect(r10).toBe('error ECONNRESET');
  });

  test('a response framed both ways is never passed on with a Content-Length that disagrees with its body', async () => {
    const r = await raw(p.port, 'GET http://api:8080/te-and-cl HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n', 3000);
    const head = r.slice(0, r.indexOf('\r\n\r\n')).toLowerCase();
    expect(head).not.toContain('content-length: 100');
  });
});
