// The proxy under hostile or unlucky conditions (issue "Node sidecar hardening"):
// each test here reproduces a defect found by trying to break the proxy on loopback.
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import { AddressInfo, Socket } from 'node:net';
import { RouteTable, RtRoute } from '../model';
import { Backend, backend, eventually, raw, resolveTo, RunningProxy, sleep, startProxy, viaProxy } from './support/sidecar';

const HOST = 'api.default.svc.cluster.local';

function table(routes: RtRoute[]): RouteTable {
  return {
    apiVersion: 'mesh.cdk8s.io/v1alpha1', kind: 'RouteTable', clusterDomain: 'cluster.local', outboundTrafficPolicy: 'ALLOW_ANY',
    services: [{ host: HOST, ports: [8080] }],
    virtualHosts: [{ name: 'default/api', hosts: [HOST], gateways: ['mesh'], routes }],
    gateways: [],
  };
}

const to = [{ host: HOST, port: 8080, weight: 100 }];
const prefix = (value: string) => [{ uri: { kind: 'prefix' as const, value } }];

describe('a request reaches the backend at most as often as the retry policy says', () => {
  // A backend that answers the first request of each connection (keep-alive) and resets
  // the connection when a second one arrives on it: what a server closing an idle
  // keep-alive connection just as the proxy reuses it looks like.
  let server: http.Server;
  let port = 0;
  const received: string[] = [];
  let proxy: RunningProxy;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      received.push(`${req.method} ${req.url}`);
      const s = req.socket as typeof req.socket & { served?: number };
      s.served = (s.served ?? 0) + 1;
      if (s.served > 1) { s.destroy(); return; }
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'keep-alive' }).end('ok');
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    proxy = await startProxy(table([
      { match: prefix('/default'), destinations: to },
      { match: prefix('/off'), destinations: to, retries: { attempts: 0, retryOn: ['reset'] } },
      { match: prefix('/reset'), destinations: to, retries: { attempts: 1, retryOn: ['reset'] } },
    ]), resolveTo({ [`${HOST}:8080`]: port }));
  });
  afterAll(async () => {
    await proxy.stop();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  // Two requests in a row: the second reuses the pooled connection and meets the reset.
  async function pair(path: string, method = 'POST'): Promise<number[]> {
    const body = method === 'POST' ? 'x' : undefined;
    const a = await viaProxy(proxy.port, `http://api:8080${path}`, { method, body });
    const b = await viaProxy(proxy.port, `http://api:8080${path}`, { method, body });
    return [a.status, b.status];
  }

  test("Istio's default policy (no reset in retryOn): the reset is answered 503, the POST is not sent again", async () => {
    received.length = 0;
    const failures = await proxy.metric('mesh_proxy_upstream_failures_total', { kind: 'reset' });
    expect(await pair('/default')).toEqual([200, 503]);
    expect(received).toEqual(['POST /default', 'POST /default']);
    expect(await proxy.metric('mesh_proxy_retries_total', { reason: 'reset' })).toBe(0);
    // Counted by kind whether or not it was retried: the 503's cause, for whoever reads the stats.
    expect(await proxy.metric('mesh_proxy_upstream_failures_total', { kind: 'reset' })).toBe(failures + 1);
  });

  test('attempts: 0 is exactly one try, even for a GET on a reused connection', async () => {
    received.length = 0;
    expect(await pair('/off', 'GET')).toEqual([200, 503]);
    expect(received).toEqual(['GET /off', 'GET /off']);
  });

  test('retryOn reset: the resend is the policy\'s, and counted', async () => {
    received.length = 0;
    const before = await proxy.metric('mesh_proxy_retries_total', { reason: 'reset' });
    expect(await pair('/reset')).toEqual([200, 200]);
    expect(received).toEqual(['POST /reset', 'POST /reset', 'POST /reset']);
    expect(await proxy.metric('mesh_proxy_retries_total', { reason: 'reset' })).toBe(before + 1);
  });
});

describe('slow clients and floods are bounded', () => {
  // A backend that reads each request body to the end before answering.
  let server: http.Server;
  let port = 0;
  let open = 0;
  const upstreamAborts: string[] = [];
  const clients = new Set<Socket>();

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      req.on('aborted', () => upstreamAborts.push(req.url!));
      req.resume();
      req.on('end', () => res.end('done'));
    });
    server.on('connection', (s) => { open++; s.on('close', () => open--); });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  afterEach(() => { for (const c of clients) c.destroy(); clients.clear(); });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  const start = (args: string[]) => startProxy(table([{ match: [], destinations: to }]), [...resolveTo({ [`${HOST}:8080`]: port }), ...args]);

  /** A POST whose chunked body trickles in: one byte every `everyMs` (never idle). */
  function trickle(proxyPort: number, everyMs = 200): { socket: Socket; got: () => string } {
    const socket = new Socket();
    let got = '';
    clients.add(socket);
    socket.on('data', (d) => (got += d.toString()));
    socket.on('error', () => undefined);
    socket.connect(proxyPort, '127.0.0.1', () => {
      socket.write(`POST http://api:8080/slow HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\n\r\n`);
      const t = setInterval(() => (socket.writable ? socket.write('1\r\na\r\n') : clearInterval(t)), everyMs);
      socket.on('close', () => clearInterval(t));
    });
    return { socket, got: () => got };
  }

  test('a request body that stops arriving ends with 408 after the stream idle timeout, and its upstream request is freed', async () => {
    const proxy = await start(['--stream-idle-timeout', '400']);
    const t0 = Date.now();
    const answer = await raw(proxy.port, 'POST http://api:8080/stalled HTTP/1.1\r\nHost: api\r\nContent-Length: 100000\r\n\r\nab', 5000);
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
    expect(answer).toContain('stream idle timeout');
    expect(Date.now() - t0).toBeLessThan(3000); // closed by the proxy, not by raw()'s 5 s
    await eventually(() => upstreamAborts.includes('/stalled'));
    await proxy.stop();
  });

  test('per destination: connections and pending requests are capped; the next request gets 503 x-envoy-overloaded at once', async () => {
    const proxy = await start(['--max-upstream-connections', '4', '--max-pending', '2']);
    for (let i = 0; i < 6; i++) trickle(proxy.port);
    await eventually(async () => open === 4 && (await proxy.metric('mesh_proxy_requests_in_flight')) === 6);
    const t0 = Date.now();
    const r = await viaProxy(proxy.port, 'http://api:8080/one-more');
    expect(Date.now() - t0).toBeLessThan(1000);
    expect([r.status, r.headers['x-envoy-overloaded']]).toEqual([503, 'true']);
    expect(r.body).toMatch(/reset reason: overflow/);
    expect(open).toBe(4);
    expect(await proxy.metric('mesh_proxy_overflow_total', { limit: 'upstream_pending' })).toBe(1);
    await proxy.stop('SIGKILL');
  });

  test('downstream: beyond --max-connections a request gets 503 x-envoy-overloaded and its connection is closed', async () => {
    const proxy = await start(['--max-connections', '10']);
    for (let i = 0; i < 10; i++) trickle(proxy.port);
    await eventually(async () => (await proxy.metric('mesh_proxy_requests_in_flight')) === 10);
    const answer = await raw(proxy.port, 'GET http://api:8080/extra HTTP/1.1\r\nHost: api\r\n\r\n', 3000);
    expect(answer).toMatch(/^HTTP\/1\.1 503 /);
    expect(answer.toLowerCase()).toContain('x-envoy-overloaded: true');
    expect(answer.toLowerCase()).toContain('connection: close');
    expect(await proxy.metric('mesh_proxy_overflow_total', { limit: 'downstream_connections' })).toBe(1);
    await proxy.stop('SIGKILL');
  });

  test('a burst of connections at the cap: those told 503 never make room, so no more than --max-connections are served', async () => {
    // Each connection beyond the cap is answered 503 with `connection: close` and is closed a
    // moment later. A newcomer arriving in that moment used to close it "to make room", as if
    // it were an idle keep-alive connection, and was served: one past the cap per such race.
    const proxy = await start(['--max-connections', '10']);
    for (let i = 0; i < 10; i++) trickle(proxy.port, 500);
    await eventually(async () => (await proxy.metric('mesh_proxy_requests_in_flight')) === 10);
    for (let round = 0; round < 10; round++) {
      for (let i = 0; i < 300; i++) trickle(proxy.port, 500);
      await sleep(200);
    }
    let inflight = 0;
    await eventually(async () => (inflight = await proxy.metric('mesh_proxy_requests_in_flight')) === 10, 20_000).catch(() => undefined);
    expect({ inflight, upstream: open }).toEqual({ inflight: 10, upstream: 10 });
    expect(await proxy.metric('mesh_proxy_overflow_total', { limit: 'downstream_idle_closed' })).toBe(0);
    await proxy.stop('SIGKILL');
  }, 60_000);

  test('4,000 clients trickling bodies at the default limits: RSS stays under the 128 MiB the renderer gives the proxy', async () => {
    const proxy = await start([]);
    const all = Array.from({ length: 4000 }, () => trickle(proxy.port, 1000));
    await eventually(async () => (await proxy.metric('mesh_proxy_requests_in_flight')) >= 1024, 20_000);
    await sleep(2000);
    const rssMiB = Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${proxy.proc.pid}/status`, 'utf8'))![1]) / 1024;
    // Clients beyond the cap keep arriving: each is answered 503 at once but is in flight for
    // that moment, so one read can land on 1,025. The served count is read between them; more
    // than 1,024 served would never read 1,024 (the trickling clients stay for minutes).
    // Arrivals go on for half a minute: the connections the kernel's backlog dropped retry
    // their SYN after 1, 3, 7, 15 and 31 s. A 1,025 that stays was a real bug: a newcomer took
    // the place of a connection told 503 that was still closing (test/sidecar-downstream.test.ts).
    let inflight = 0;
    await eventually(async () => (inflight = await proxy.metric('mesh_proxy_requests_in_flight')) === 1024, 40_000).catch(() => undefined);
    expect(inflight).toBe(1024);
    expect(open).toBeLessThanOrEqual(1024);
    process.stderr.write(`proxy RSS with 4,000 trickling clients: ${rssMiB.toFixed(1)} MiB\n`);
    expect(rssMiB).toBeLessThan(128);
    expect(all.filter((c) => c.got().includes('x-envoy-overloaded')).length).toBeGreaterThan(0);
    await proxy.stop('SIGKILL');
  }, 90_000);
});

describe('request hygiene', () => {
  let api: Backend;
  let proxy: RunningProxy;
  const seen = () => api.seen.map((x) => x.headers);

  beforeAll(async () => {
    api = await backend('api', (_req, res) => {
      res.writeHead(200, { connection: 'x-secret-hop', 'x-secret-hop': 'from-upstream', 'content-type': 'text/plain' }).end('ok');
    });
    proxy = await startProxy(table([{ match: [], destinations: to }]), resolveTo({ [`${HOST}:8080`]: api.port }));
  });
  afterAll(async () => {
    await proxy.stop();
    await api.close();
  });

  const headerLines = (n: number) => Array.from({ length: n }, (_, i) => `x-h${i}: ${i}\r\n`).join('');

  test('more than 100 request headers: 431, not a silently shortened request; exactly 100 pass', async () => {
    const answer = await raw(proxy.port, `GET http://api:8080/many HTTP/1.1\r\nHost: api\r\n${headerLines(150)}Authorization: Bearer t\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    expect(answer).toContain('more than 100 request headers');
    const ok = await raw(proxy.port, `GET http://api:8080/enough HTTP/1.1\r\nHost: api\r\n${headerLines(97)}Authorization: Bearer t\r\nConnection: close\r\n\r\n`);
    expect(ok).toMatch(/^HTTP\/1\.1 200 /);
    expect(seen()[seen().length - 1].authorization).toBe('Bearer t');
  });

  test('two Host headers: 400 (RFC 9112)', async () => {
    const answer = await raw(proxy.port, 'GET /x HTTP/1.1\r\nHost: api\r\nHost: evil\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('more than one Host header');
  });

  test('a CONNECT whose target is not host:port gets 400 with a reason instead of a silent close (tunnels: sidecar-egress.test.ts)', async () => {
    const answer = await raw(proxy.port, 'CONNECT /api HTTP/1.1\r\nHost: api:443\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 400 /);
    expect(answer).toContain('CONNECT needs a host:port target (got "/api")');
  });

  test('an HTTP/2.0 request line gets 505', async () => {
    const answer = await raw(proxy.port, 'GET http://api:8080/v2 HTTP/2.0\r\nHost: api\r\n\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 505 /);
  });

  test('headers named in Connection are hop-by-hop: dropped both ways', async () => {
    const r = await viaProxy(proxy.port, 'http://api:8080/hop', { headers: { connection: 'x-client-hop', 'x-client-hop': 'secret', 'x-kept': 'yes' } });
    expect(r.status).toBe(200);
    const got = seen()[seen().length - 1];
    expect([got['x-client-hop'], got['x-kept']]).toEqual([undefined, 'yes']);
    expect(r.headers['x-secret-hop']).toBeUndefined();
  });

  test('a route table whose header operation carries CR/LF is refused at load', async () => {
    const bad = table([{ match: [], destinations: to, headers: { request: { set: { 'x-a': 'ok\r\nInjected: 1' } } } }]);
    await expect(startProxy(bad)).rejects.toThrow(/must match pattern/);
  });
});

describe('paths are normalised before matching and sent normalised', () => {
  let api: Backend;
  let proxy: RunningProxy;

  beforeAll(async () => {
    api = await backend('public');
    // A rule that blocks /admin (403 from the proxy) before the public prefix.
    proxy = await startProxy(table([
      { match: prefix('/admin'), destinations: to, fault: { abort: { httpStatus: 403, percentage: 100 } } },
      { match: prefix('/public'), destinations: to },
    ]), resolveTo({ [`${HOST}:8080`]: api.port }));
  });
  afterAll(async () => {
    await proxy.stop();
    await api.close();
  });

  test.each(['/public/../admin', '/public/%2e%2e/admin', '/public/%2E%2E/admin/', '/public/./../admin'])('%s is /admin: blocked', async (path) => {
    expect((await viaProxy(proxy.port, `http://api:8080${path}`)).status).toBe(403);
  });

  test('the upstream gets the normalised path; the query is untouched', async () => {
    api.seen.length = 0;
    expect((await viaProxy(proxy.port, 'http://api:8080/public/a/./b/../%7Ec?next=/../x')).status).toBe(200);
    expect(api.seen.map((x) => x.url)).toEqual(['/public/a/~c?next=/../x']);
  });
});

describe('ports: only the ones the route table knows, never the proxy\'s own', () => {
  let api: Backend;
  const start = (policy: 'ALLOW_ANY' | 'REGISTRY_ONLY', extra: string[] = []) => startProxy(
    { ...table([{ match: [], destinations: [{ host: HOST, weight: 100 }], fault: { abort: { httpStatus: 418, percentage: 100 } } }]), outboundTrafficPolicy: policy },
    [...resolveTo({ [`${HOST}:8080`]: api.port, 'ext.example.com:18082': api.port, [`${HOST}:22`]: api.port }), ...extra],
  );

  beforeAll(async () => { api = await backend('reached'); });
  afterAll(() => api.close());

  test('REGISTRY_ONLY: a host the table does not know is refused on any port', async () => {
    const proxy = await start('REGISTRY_ONLY');
    const r = await viaProxy(proxy.port, 'http://ext.example.com:18082/');
    expect([r.status, api.seen.length]).toEqual([502, 0]);
    await proxy.stop();
  });

  test("a known service on a port it does not have is not that service: not its rules, and refused under REGISTRY_ONLY", async () => {
    const proxy = await start('REGISTRY_ONLY');
    expect((await viaProxy(proxy.port, 'http://api:8080/')).status).toBe(418); // its rules, on its port
    const r = await viaProxy(proxy.port, 'http://api:22/');
    expect([r.status, api.seen.length]).toEqual([502, 0]);
    expect(r.body).toContain('port 22 is not a port of service api.default.svc.cluster.local (it has 8080)');
    await proxy.stop();
  });

  test("the proxy's own ports are never reached, through any loopback address", async () => {
    const proxy = await start('ALLOW_ANY');
    for (const url of [`http://127.0.0.2:${proxy.admin}/config_dump`, `http://127.1.2.3:${proxy.port}/`, `http://[::ffff:127.0.0.1]:${proxy.admin}/config_dump`]) {
      const r = await viaProxy(proxy.port, url);
      expect([url, r.status]).toEqual([url, 508]);
      expect(r.body).not.toContain('virtualHosts');
    }
    await proxy.stop();
  });
});

describe('as Istio does it', () => {
  let api: Backend;
  let proxy: RunningProxy;

  beforeAll(async () => {
    api = await backend('ok');
    proxy = await startProxy(table([
      // A hand-written table with an upper-case header key.
      { match: [{ headers: { 'End-User': { kind: 'exact', value: 'jason' } } }], destinations: to, fault: { abort: { httpStatus: 418, percentage: 100 } } },
      { name: 'uploads', match: prefix('/upload'), destinations: to, retries: { attempts: 2, retryOn: ['5xx'] } },
      { match: [], destinations: to, rewrite: { uri: '/v2' } },
    ]), resolveTo({ [`${HOST}:8080`]: api.port }));
  });
  afterAll(async () => {
    await proxy.stop();
    await api.close();
  });

  test('header match keys are case-insensitive (a table key End-User matches end-user)', async () => {
    expect((await viaProxy(proxy.port, 'http://api:8080/x', { headers: { 'end-user': 'jason' } })).status).toBe(418);
  });

  test('rewrite on a rule without a uri match swaps only the leading "/"', async () => {
    api.seen.length = 0;
    await viaProxy(proxy.port, 'http://api:8080/something?q=1');
    expect(api.seen.map((x) => x.url)).toEqual(['/v2something?q=1']);
  });

  test('a body over --max-buffer loses its retries: counted, and logged once per route', async () => {
    const big = 'x'.repeat(70 * 1024);
    for (let i = 0; i < 2; i++) expect((await viaProxy(proxy.port, 'http://api:8080/upload', { method: 'POST', body: big })).status).toBe(200);
    expect(await proxy.metric('mesh_proxy_unbuffered_bodies_total', { virtual_host: 'default/api' })).toBe(2);
    expect(proxy.log.filter((l) => l.includes('request body not buffered') && l.includes('"route":"uploads"'))).toHaveLength(1);
  });
});

test('a table with a prefix match on a query parameter is refused at load (Istio: exact and regex only)', async () => {
  const bad = table([{ match: [{ queryParams: { debug: { kind: 'prefix', value: '1' } } }], destinations: to }]);
  await expect(startProxy(bad)).rejects.toThrow(/queryParams/);
});

test("header sizes as Envoy's 60 KiB: a 20 KB response header passes, a 50 KB request header too; 70 KB is 431", async () => {
  // Backend and client here accept large heads; Node's own default is 16 KiB.
  const server = http.createServer({ maxHeaderSize: 200_000 }, (req, res) => res.writeHead(200, { 'x-big-response': 'r'.repeat(20_000), 'x-got': String(req.headers['x-big-request']?.length) }).end('ok'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const proxy = await startProxy(table([{ match: [], destinations: to }]), resolveTo({ [`${HOST}:8080`]: (server.address() as AddressInfo).port }));
  try {
    const answer = await raw(proxy.port, `GET http://api:8080/ HTTP/1.1\r\nHost: api\r\nX-Big-Request: ${'q'.repeat(50_000)}\r\nConnection: close\r\n\r\n`);
    expect(answer).toMatch(/^HTTP\/1\.1 200 /);
    expect(answer).toContain(`x-big-response: ${'r'.repeat(20_000)}`);
    expect(answer).toContain('x-got: 50000');
    expect(await raw(proxy.port, `GET http://api:8080/ HTTP/1.1\r\nHost: api\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`)).toMatch(/^HTTP\/1\.1 431 /);
  } finally {
    await proxy.stop();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('header bytes outside ASCII pass through unchanged both ways (obs-text, RFC 9110 5.5)', async () => {
  // A backend that records the raw request head and answers with a latin1 byte in a header.
  const heads: Buffer[] = [];
  const net = await import('node:net');
  const server = net.createServer((s) => {
    s.once('data', (d: Buffer) => {
      heads.push(d);
      s.end(Buffer.concat([Buffer.from('HTTP/1.1 200 OK\r\nx-back: caf'), Buffer.from([0xe9]), Buffer.from('\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok')]));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const proxy = await startProxy(table([{ match: [], destinations: to }]), resolveTo({ [`${HOST}:8080`]: (server.address() as AddressInfo).port }));
  try {
    const answer = await new Promise<Buffer>((resolve, reject) => {
      const c = new Socket();
      const got: Buffer[] = [];
      c.connect(proxy.port, '127.0.0.1', () => c.write(Buffer.concat([Buffer.from('GET http://api:8080/ HTTP/1.1\r\nhost: api:8080\r\nx-name: caf'), Buffer.from([0xe9]), Buffer.from('\r\nconnection: close\r\n\r\n')])));
      c.on('data', (d) => got.push(d));
      c.on('end', () => resolve(Buffer.concat(got)));
      c.on('error', reject);
    });
    expect(heads[0].includes(Buffer.concat([Buffer.from('x-name: caf'), Buffer.from([0xe9]), Buffer.from('\r\n')]))).toBe(true);
    expect(answer.includes(Buffer.concat([Buffer.from('x-back: caf'), Buffer.from([0xe9]), Buffer.from('\r\n')]))).toBe(true);
  } finally {
    await proxy.stop();
    await new Promise<void>((r) => server.close(() => r()));
  }
});
