// The proxy at the edge and under hostile clients (issue "Node sidecar safety, round 2"):
// gateway isolation, one authority, edge header sanitising, listeners that follow reloads,
// no crash on any client reset, idle connections giving way, paths that cannot dodge a rule.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RouteTable, RtGateway, RtVirtualHost } from '../model';
import { backend, Backend, deadPort, eventually, get, raw, resolveTo, RunningProxy, sleep, startProxy, viaProxy } from './support/sidecar';

const API = 'api.default.svc.cluster.local';
const INTERNAL = 'internal.default.svc.cluster.local';

function gatewayTable(gateways: RtGateway[], virtualHosts: RtVirtualHost[]): RouteTable {
  return {
    apiVersion: 'mesh.cdk8s.io/v1alpha1', kind: 'RouteTable', clusterDomain: 'cluster.local', outboundTrafficPolicy: 'ALLOW_ANY',
    services: [{ host: API, ports: [8080] }, { host: INTERNAL, ports: [8080] }],
    virtualHosts, gateways,
  };
}
const httpServer = (port: number, hosts: string[], extra: object = {}) => ({ port, listenPort: port, protocol: 'HTTP' as const, hosts, ...extra });

/** A gateway whose table port 8080 lands on a free port (the others at the same offset). */
async function startGateway(table: RouteTable, names: string, args: string[] = []): Promise<{ gw: RunningProxy; port: number }> {
  for (let attempt = 0; ; attempt++) {
    const port = await deadPort();
    try {
      return { gw: await startProxy(table, ['--mode', 'gateway', '--gateway', names, '--bind', '127.0.0.1', '--port-offset', String(port - 8080), ...args]), port };
    } catch (e) {
      if (attempt >= 4 || !/EADDRINUSE/.test(String(e))) throw e;
    }
  }
}

const opened: Array<{ close(): Promise<void> }> = [];
afterEach(async () => { await Promise.all(opened.splice(0).map((b) => b.close())); });
async function back(name: string): Promise<Backend> { const b = await backend(name); opened.push(b); return b; }

describe('a gateway serves on each listener only the routes bound to its own Gateway', () => {
  test('a VirtualService bound to the internal Gateway does not answer on the public "*" listener', async () => {
    const pub = await back('public');
    const int = await back('internal');
    const table = gatewayTable(
      [{ name: 'edge/public', servers: [httpServer(8080, ['*'])] }, { name: 'edge/internal', servers: [httpServer(8081, ['*'])] }],
      [
        { name: 'default/public', hosts: ['www.example.com'], gateways: ['edge/public'], routes: [{ match: [], destinations: [{ host: API, port: 8080, weight: 100 }] }] },
        { name: 'default/internal', hosts: ['admin.example.com'], gateways: ['edge/internal'], routes: [{ match: [], destinations: [{ host: INTERNAL, port: 8080, weight: 100 }] }] },
      ],
    );
    const { gw, port } = await startGateway(table, 'edge/public,edge/internal', resolveTo({ [`${API}:8080`]: pub.port, [`${INTERNAL}:8080`]: int.port }));
    try {
      expect((await get(`http://127.0.0.1:${port}/`, { host: 'www.example.com' })).body).toBe('public');
      expect((await get(`http://127.0.0.1:${port + 1}/`, { host: 'admin.example.com' })).body).toBe('internal');
      const leak = await get(`http://127.0.0.1:${port}/`, { host: 'admin.example.com' });
      expect(leak.status).toBe(404);
      expect(int.seen).toHaveLength(1);
      // Nor the other way round.
      expect((await get(`http://127.0.0.1:${port + 1}/`, { host: 'www.example.com' })).status).toBe(404);
    } finally { await gw.stop('SIGKILL'); }
  });
});

describe('one authority: the request target\'s when absolute, for the redirect, the host check and routing', () => {
  test('httpsRedirect is not bypassed by an absolute-form target whose Host names another server', async () => {
    const www = await back('www');
    const table = gatewayTable(
      [{ name: 'edge/gw', servers: [httpServer(8080, ['secure.example.com'], { httpsRedirect: true }), httpServer(8080, ['www.example.com'])] }],
      [{ name: 'default/all', hosts: ['secure.example.com', 'www.example.com'], gateways: ['edge/gw'], routes: [{ match: [], destinations: [{ host: API, port: 8080, weight: 100 }] }] }],
    );
    const { gw, port } = await startGateway(table, 'edge/gw', resolveTo({ [`${API}:8080`]: www.port }));
    try {
      const answer = await raw(port, 'GET http://secure.example.com/x HTTP/1.1\r\nHost: www.example.com\r\nConnection: close\r\n\r\n', 3000);
      expect(answer).toMatch(/^HTTP\/1\.1 301 /);
      expect(answer.toLowerCase()).toContain('location: https://secure.example.com/x');
      // And the plain form of the same request is served over HTTP.
      expect((await get(`http://127.0.0.1:${port}/x`, { host: 'www.example.com' })).body).toBe('www');
      expect(www.seen).toHaveLength(1);
    } finally { await gw.stop('SIGKILL'); }
  });
});

describe('edge requests are sanitised as an Istio ingress gateway does', () => {
  const table = gatewayTable(
    [{ name: 'edge/gw', servers: [httpServer(8080, ['*'])] }],
    [{ name: 'default/api', hosts: ['*'], gateways: ['edge/gw'], routes: [{ match: [], destinations: [{ host: API, port: 8080, weight: 100 }] }] }],
  );
  const hostile = {
    host: 'www.example.com', 'x-envoy-retry-on': '5xx', 'x-envoy-max-retries': '100', 'x-envoy-upstream-rq-timeout-ms': '1',
    'x-envoy-internal': 'true', 'x-envoy-original-path': '/admin', 'x-forwarded-client-cert': 'By=spiffe://cluster.local/ns/prod/sa/admin',
    'x-request-id': 'chosen-by-the-client', 'x-forwarded-for': '10.9.9.9', 'x-forwarded-proto': 'https', 'x-b3-traceid': '463ac35c9f6413ad48485a3953bb6124',
  };

  test('x-envoy-* and XFCC dropped, a fresh x-request-id, XFF appended, XFP and the external address set; trace headers kept', async () => {
    const api = await back('api');
    const { gw, port } = await startGateway(table, 'edge/gw', resolveTo({ [`${API}:8080`]: api.port }));
    try {
      expect((await get(`http://127.0.0.1:${port}/`, hostile)).status).toBe(200);
      const h = api.seen[0].headers;
      expect(Object.keys(h).filter((k) => k.startsWith('x-envoy-'))).toEqual(['x-envoy-external-address']);
      expect(h['x-envoy-external-address']).toBe('127.0.0.1');
      expect(h['x-forwarded-client-cert']).toBeUndefined();
      expect(h['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(h['x-forwarded-for']).toBe('10.9.9.9, 127.0.0.1');
      expect(h['x-forwarded-proto']).toBe('http');
      expect(h['x-b3-traceid']).toBe('463ac35c9f6413ad48485a3953bb6124');
    } finally { await gw.stop('SIGKILL'); }
  });

  test('--preserve-external-request-id keeps the client\'s id', async () => {
    const api = await back('api');
    const { gw, port } = await startGateway(table, 'edge/gw', [...resolveTo({ [`${API}:8080`]: api.port }), '--preserve-external-request-id']);
    try {
      await get(`http://127.0.0.1:${port}/`, hostile);
      expect(api.seen[0].headers['x-request-id']).toBe('chosen-by-the-client');
    } finally { await gw.stop('SIGKILL'); }
  });
});

describe('gateway reload applies servers, not only routes', () => {
  test('a new server opens its port, a removed one stops accepting, a new host on a server is served', async () => {
    const api = await back('api');
    const vh = (hosts: string[]): RtVirtualHost => ({ name: 'default/api', hosts, gateways: ['edge/gw'], routes: [{ match: [], destinations: [{ host: API, port: 8080, weight: 100 }] }] });
    const before = gatewayTable([{ name: 'edge/gw', servers: [httpServer(8080, ['a.example.com'])] }], [vh(['a.example.com'])]);
    const { gw, port } = await startGateway(before, 'edge/gw', [...resolveTo({ [`${API}:8080`]: api.port }), '--reload-interval', '50']);
    try {
      expect((await get(`http://127.0.0.1:${port}/`, { host: 'a.example.com' })).status).toBe(200);
      expect((await get(`http://127.0.0.1:${port}/`, { host: 'b.example.com' })).status).toBe(404);
      const after = gatewayTable([{ name: 'edge/gw', servers: [httpServer(8080, ['a.example.com', 'b.example.com']), httpServer(8082, ['c.example.com'])] }], [vh(['a.example.com', 'b.example.com', 'c.example.com'])]);
      writeFileSync(gw.configFile, JSON.stringify(after));
      await eventually(async () => gw.log.some((l) => l.includes('gateway listener opened')));
      expect((await get(`http://127.0.0.1:${port}/`, { host: 'b.example.com' })).status).toBe(200);
      expect((await get(`http://127.0.0.1:${port + 2}/`, { host: 'c.example.com' })).status).toBe(200);
      // The new table was read and validated in a worker thread, off the request path.
      expect(gw.log.find((l) => l.includes('config reloaded'))).toContain('"checkedIn":"worker"');
      // 8080 goes: no longer accepted.
      writeFileSync(gw.configFile, JSON.stringify(gatewayTable([{ name: 'edge/gw', servers: [httpServer(8082, ['c.example.com'])] }], [vh(['c.example.com'])])));
      await eventually(async () => gw.log.some((l) => l.includes('gateway listener closed')));
      await expect(get(`http://127.0.0.1:${port}/`, { host: 'a.example.com' })).rejects.toThrow(/ECONNREFUSED/);
      expect((await get(`http://127.0.0.1:${port + 2}/`, { host: 'c.example.com' })).status).toBe(200);
    } finally { await gw.stop('SIGKILL'); }
  });
});

describe('no client reset ends the process', () => {
  /** Connect, write `bytes`, wait `ms`, then reset the connection (RST). */
  function resetAfter(port: number, bytes: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => {
        s.write(bytes);
        setTimeout(() => { s.resetAndDestroy(); resolve(); }, ms);
      });
      s.on('error', () => resolve());
    });
  }

  test.each(['sidecar', 'gateway'])('%s: resets during the head, after a refusal, after CONNECT, mid-body, mid-response and while draining', async (mode) => {
    const slow = await backend('slow', (_req, res) => { res.writeHead(200); res.write('x'.repeat(1000)); setTimeout(() => res.end('end'), 2000); });
    opened.push(slow);
    const table = gatewayTable(
      [{ name: 'edge/gw', servers: [httpServer(8080, ['*'])] }],
      [{ name: 'default/api', hosts: [API, '*'], gateways: ['mesh', 'edge/gw'], routes: [{ match: [], destinations: [{ host: API, port: 8080, weight: 100 }] }] }],
    );
    const args = [...resolveTo({ [`${API}:8080`]: slow.port }), '--drain-timeout', '1500'];
    const { gw: p, port } = mode === 'gateway' ? await startGateway(table, 'edge/gw', args) : { gw: await startProxy(table, args), port: 0 };
    const to = mode === 'gateway' ? port : p.port;
    const target = mode === 'gateway' ? '/' : `http://${API}:8080/`;
    const alive = async () => {
      expect(p.proc.exitCode).toBeNull();
      const r = mode === 'gateway' ? await get(`http://127.0.0.1:${to}/`, { host: 'x' }) : await viaProxy(to, target);
      expect(r.status).toBe(200);
    };
    await resetAfter(to, `GET ${target} HTTP/1.1\r\nHo`, 50);
    await resetAfter(to, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 50);
    await resetAfter(to, 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\nhello', 0);
    await resetAfter(to, `GET ${target} HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n`, 50);
    await resetAfter(to, 'BAD\x01 / HTTP/1.1\r\n\r\n', 50);
    await resetAfter(to, `POST ${target} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n${'a'.repeat(1000)}`, 100);
    await resetAfter(to, `POST ${target} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab`, 100);
    await resetAfter(to, `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`, 300);
    await sleep(100);
    await alive();
    // While draining: in-flight responses and new requests, reset half-way.
    const resets = [resetAfter(to, `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`, 400)];
    await sleep(100);
    p.proc.kill('SIGTERM');
    await sleep(100);
    resets.push(resetAfter(to, `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`, 300), resetAfter(to, 'CONNECT example.com:443 HTTP/1.1\r\n\r\n', 50));
    await Promise.all(resets);
    expect(p.proc.exitCode).toBeNull();
    const code = await new Promise<number | null>((r) => (p.proc.exitCode !== null ? r(p.proc.exitCode) : p.proc.once('exit', (c) => r(c))));
    // The drain ends it normally (0), not an uncaught error (1).
    expect(code).toBe(0);
    expect(p.log.join('\n')).not.toMatch(/ECONNRESET|Uncaught|throw er/);
  }, 30_000);
});

describe('at the connection cap, idle keep-alive connections give way to new clients', () => {
  test('20 clients that sent one request and idle do not lock a 21st out', async () => {
    const api = await back('api');
    const table = gatewayTable([], [{ name: 'default/api', hosts: [API], gateways: ['mesh'], routes: [{ match: [], destinations: [{ host: API, port: 8080, weight: 100 }] }] }]);
    const p = await startProxy(table, [...resolveTo({ [`${API}:8080`]: api.port }), '--max-connections', '20']);
    const agents: http.Agent[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        agents.push(agent);
        await new Promise<void>((resolve, reject) => http.get({ host: '127.0.0.1', port: p.port, path: `http://${API}:8080/`, headers: { host: API }, agent }, (res) => { res.resume(); res.on('end', () => resolve()); }).on('error', reject));
      }
      const fresh = await viaProxy(p.port, `http://${API}:8080/new`);
      expect(fresh.status).toBe(200);
      expect(await p.metric('mesh_proxy_overflow_total', { limit: 'downstream_idle_closed' })).toBe(1);
      expect(await p.metric('mesh_proxy_overflow_total', { limit: 'downstream_connections' })).toBe(0);
    } finally {
      for (const a of agents) a.destroy();
      await p.stop('SIGKILL');
    }
  });
});

describe('the connection cap holds on HTTPS listeners too (counted on TLS sockets)', () => {
  test('a busy TLS connection at the cap: the next client gets 503; once it idles, it gives way', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tls-cap-'));
    mkdirSync(join(dir, 'cert'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=www.example.com',
      '-keyout', join(dir, 'cert', 'tls.key'), '-out', join(dir, 'cert', 'tls.crt')], { stdio: 'ignore' });
    const slow = await backend('slow', (req, res) => setTimeout(() => res.end('slow'), req.url === '/slow' ? 800 : 0));
    opened.push(slow);
    const table = gatewayTable(
      [{ name: 'edge/gw', servers: [{ port: 8080, listenPort: 8080, protocol: 'HTTPS', hosts: ['*'], tlsDir: '/etc/mesh-proxy/tls/cert' }] }],
      [{ name: 'default/api', hosts: ['*'], gateways: ['edge/gw'], routes: [{ match: [], destinations: [{ host: API, port: 8080, weight: 100 }] }] }],
    );
    const { gw, port } = await startGateway(table, 'edge/gw', [...resolveTo({ [`${API}:8080`]: slow.port }), '--tls-dir', dir, '--max-connections', '1']);
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
    const call = (path: string, a: https.Agent | false) => new Promise<number>((resolve, reject) => {
      https.get({ host: '127.0.0.1', port, path, servername: 'www.example.com', headers: { host: 'www.example.com' }, agent: a, rejectUnauthorized: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      }).on('error', reject);
    });
    try {
      const busy = call('/slow', agent);
      await sleep(300);
      expect(await call('/other', false)).toBe(503);
      expect(await busy).toBe(200);
      // Now idle (kept alive by its agent): it gives way to a new client.
      expect(await call('/other', false)).toBe(200);
      expect(await gw.metric('mesh_proxy_overflow_total', { limit: 'downstream_idle_closed' })).toBe(1);
    } finally {
      agent.destroy();
      await gw.stop('SIGKILL');
    }
  });
});

describe('what is matched is what is sent', () => {
  const table = gatewayTable([], [{
    name: 'default/api', hosts: [API], gateways: ['mesh'], routes: [
      { match: [{ uri: { kind: 'exact', value: '/private' } }], destinations: [{ host: API, port: 8080, weight: 100 }], fault: { abort: { httpStatus: 403, percentage: 100 } } },
      { match: [{ uri: { kind: 'prefix', value: '/admin' } }], destinations: [{ host: API, port: 8080, weight: 100 }], fault: { abort: { httpStatus: 403, percentage: 100 } } },
      { match: [{ uri: { kind: 'prefix', value: '/public' } }], destinations: [{ host: API, port: 8080, weight: 100 }] },
    ],
  }]);

  test('a #fragment in the target is refused with 400 (Envoy), so /private#x cannot miss the exact /private rule', async () => {
    const api = await back('api');
    const p = await startProxy(table, resolveTo({ [`${API}:8080`]: api.port }));
    try {
      for (const t of [`http://${API}:8080/private#x`, `http://${API}:8080/public#/../admin`]) {
        expect(await raw(p.port, `GET ${t} HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n`, 3000)).toMatch(/^HTTP\/1\.1 400 [^]*fragment/);
      }
      expect(await raw(p.port, `GET /private#x HTTP/1.1\r\nHost: ${API}:8080\r\nConnection: close\r\n\r\n`, 3000)).toMatch(/^HTTP\/1\.1 400 /);
      expect(api.seen).toEqual([]);
    } finally { await p.stop('SIGKILL'); }
  });

  test('a backslash is a slash before matching (Istio BASE): /public\\..\\admin is /admin, answered by the /admin rule', async () => {
    const api = await back('api');
    const p = await startProxy(table, resolveTo({ [`${API}:8080`]: api.port }));
    try {
      const r = await raw(p.port, `GET http://${API}:8080/public\\..\\admin HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n`, 3000);
      expect(r).toMatch(/^HTTP\/1\.1 403 /);
      const ok = await raw(p.port, `GET http://${API}:8080/public\\docs HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n`, 3000);
      expect(ok).toMatch(/^HTTP\/1\.1 200 /);
      expect(api.seen.map((s) => s.url)).toEqual(['/public/docs']);
      expect(await raw(p.port, `GET http://${API}:8080/public/%00 HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n`, 3000)).toMatch(/^HTTP\/1\.1 400 /);
    } finally { await p.stop('SIGKILL'); }
  });
});

describe('route table size', () => {
  test('a table over --max-table-bytes is refused on reload and the last good one keeps serving', async () => {
    const api = await back('api');
    const small = gatewayTable([], [{ name: 'default/api', hosts: [API], gateways: ['mesh'], routes: [{ match: [], destinations: [{ host: API, port: 8080, weight: 100 }] }] }]);
    const p = await startProxy(small, [...resolveTo({ [`${API}:8080`]: api.port }), '--reload-interval', '50', '--max-table-bytes', '65536']);
    try {
      const big = { ...small, virtualHosts: [...small.virtualHosts, ...Array.from({ length: 2000 }, (_, i) => ({ name: `default/h${i}`, hosts: [`h${i}.example.com`], gateways: ['mesh'], routes: [{ match: [], destinations: [{ host: API, port: 8080, weight: 100 }] }] }))] };
      writeFileSync(p.configFile, JSON.stringify(big));
      await eventually(async () => p.log.some((l) => l.includes('route tables over 65536 bytes')));
      expect(p.log.join('\n')).toMatch(/bytes; route tables over 65536 bytes are refused \(--max-table-bytes\)/);
      expect((await viaProxy(p.port, `http://${API}:8080/`)).status).toBe(200);
    } finally { await p.stop('SIGKILL'); }
  });

  test('20,000 wildcard hosts: the longest suffix still wins', async () => {
    const api = await back('api');
    const other = await back('other');
    const vh = (name: string, hosts: string[], to: string): RtVirtualHost => ({ name, hosts, gateways: ['mesh'], routes: [{ match: [], destinations: [{ host: to, port: 8080, weight: 100 }] }] });
    const t = gatewayTable([], [
      ...Array.from({ length: 20_000 }, (_, i) => vh(`default/w${i}`, [`*.w${i}.example.com`], INTERNAL)),
      vh('default/deep', ['*.deep.w7.example.com'], API),
    ]);
    const p = await startProxy(t, [...resolveTo({ [`${API}:8080`]: api.port, [`${INTERNAL}:8080`]: other.port }), '--max-table-bytes', String(8 * 1024 * 1024)]);
    try {
      expect((await viaProxy(p.port, 'http://x.deep.w7.example.com:8080/')).body).toBe('api');
      expect((await viaProxy(p.port, 'http://x.w7.example.com:8080/')).body).toBe('other');
      expect((await viaProxy(p.port, 'http://a.b.w19999.example.com:8080/')).body).toBe('other');
    } finally { await p.stop('SIGKILL'); }
  });
});
