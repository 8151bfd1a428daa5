// The node sidecar's DestinationRule half on loopback: endpoints from a static file or a
// fake Kubernetes API, each load balancer, outlier detection and each pool limit, retries
// to another endpoint. Backends are real servers; the proxy is the bundle.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RouteTable, RtTrafficPolicy } from '../model';
import { Backend, backend, deadPort, get, startProxy, viaProxy } from './support/sidecar';

const WEB = 'web.default.svc.cluster.local';
const URL_ = `http://${WEB}:8080/`;

function table(policy?: RtTrafficPolicy, routes?: RouteTable['virtualHosts'][number]['routes']): RouteTable {
  return {
    apiVersion: 'mesh.cdk8s.io/v1alpha1', kind: 'RouteTable', clusterDomain: 'cluster.local', outboundTrafficPolicy: 'REGISTRY_ONLY',
    services: [{ host: WEB, ports: [8080], portNames: ['http'], ...(policy ? { policy } : {}) }],
    virtualHosts: routes ? [{ name: 'default/web', hosts: [WEB], gateways: ['mesh'], routes }] : [],
    gateways: [],
  };
}

function endpointsFile(ports: number[], extra: Array<{ ready?: boolean; terminating?: boolean }> = []): string {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-endpoints-'));
  const file = join(dir, 'endpoints.json');
  writeEndpoints(file, ports, extra);
  return file;
}
function writeEndpoints(file: string, ports: number[], extra: Array<{ ready?: boolean; terminating?: boolean }> = []): void {
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, JSON.stringify({
    apiVersion: 'mesh.cdk8s.io/v1alpha1', kind: 'Endpoints',
    clusters: { [`${WEB}:8080`]: ports.map((port, i) => ({ address: '127.0.0.1', port, ...extra[i] })) },
  }));
  renameSync(tmp, file);
}

/** Which backend answered each of `n` sequential requests. */
async function spread(proxyPort: number, n: number, headers: http.OutgoingHttpHeaders = {}, url = URL_): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    const r = await viaProxy(proxyPort, url, { headers });
    const k = r.status === 200 ? r.body : String(r.status);
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}

async function three(handler?: (name: string) => Parameters<typeof backend>[1]): Promise<Backend[]> {
  return Promise.all(['a', 'b', 'c'].map((n) => backend(n, handler?.(n))));
}

describe('endpoints from a static file', () => {
  test('ROUND_ROBIN over three endpoints: 30 sequential requests go 10/10/10', async () => {
    const bs = await three();
    const p = await startProxy(table({ loadBalancer: 'ROUND_ROBIN' }), ['--endpoints', endpointsFile(bs.map((b) => b.port))]);
    expect(await spread(p.port, 30)).toEqual({ a: 10, b: 10, c: 10 });
    const clusters = JSON.parse((await get(`http://127.0.0.1:${p.admin}/clusters`)).body);
    expect(clusters[`${WEB}:8080`]).toMatchObject({ source: 'file', balanced: true, hosts: [{ ready: true, ejected: false }, {}, {}] });
    expect(await p.metric('mesh_proxy_endpoint_source', { source: 'file' })).toBe(1);
    await p.stop();
  });

  test('RANDOM reaches every endpoint; PASSTHROUGH goes to the Service\'s name (kube-proxy\'s pick)', async () => {
    const bs = await three();
    const file = endpointsFile(bs.map((b) => b.port));
    const r = await startProxy(table({ loadBalancer: 'RANDOM' }), ['--endpoints', file]);
    expect(Object.keys(await spread(r.port, 60)).sort()).toEqual(['a', 'b', 'c']);
    await r.stop();
    const cip = await backend('cluster-ip');
    const p = await startProxy(table({ loadBalancer: 'PASSTHROUGH' }), ['--endpoints', file, '--resolve', `${WEB}:8080=127.0.0.1:${cip.port}`]);
    expect(await spread(p.port, 5)).toEqual({ 'cluster-ip': 5 });
    await p.stop();
  });

  test('LEAST_REQUEST (the default): a slow endpoint gets clearly fewer of 60 requests, 6 at a time', async () => {
    const bs = await three((n) => (n === 'a' ? (_req, res) => { setTimeout(() => res.end('a'), 150); } : undefined));
    const p = await startProxy(table(), ['--endpoints', endpointsFile(bs.map((b) => b.port))]);
    const counts: Record<string, number> = {};
    const worker = async () => { for (let i = 0; i < 10; i++) { const r = await viaProxy(p.port, URL_); counts[r.body] = (counts[r.body] ?? 0) + 1; } };
    await Promise.all(Array.from({ length: 6 }, worker));
    expect(counts.a + counts.b + counts.c).toBe(60);
    // Round robin would give the slow one 20; two choices send it a request only when it is the less busy of two.
    expect(counts.a).toBeLessThan(12);
    await p.stop();
  });

  test('consistentHash on a header: 10 users x 10 requests, each user always on one endpoint, users spread', async () => {
    const bs = await three();
    const p = await startProxy(table({ consistentHash: { httpHeaderName: 'x-user' } }), ['--endpoints', endpointsFile(bs.map((b) => b.port))]);
    const where = new Set<string>();
    for (let u = 0; u < 10; u++) {
      const s = await spread(p.port, 10, { 'x-user': `user-${u}` });
      expect(Object.values(s)).toEqual([10]);
      where.add(Object.keys(s)[0]);
    }
    expect(where.size).toBeGreaterThan(1);
    // No key: a random endpoint, not an error.
    expect(Object.keys(await spread(p.port, 30)).length).toBeGreaterThan(1);
    await p.stop();
  });

  test('consistentHash with Maglev, on a query parameter, and on the source address', async () => {
    const bs = await three();
    const file = endpointsFile(bs.map((b) => b.port));
    const m = await startProxy(table({ consistentHash: { httpQueryParameterName: 'u', maglev: { tableSize: 65537 } } }), ['--endpoints', file]);
    for (const u of ['x', 'y', 'z']) expect(Object.values(await spread(m.port, 8, {}, `${URL_}?a=1&u=${u}`))).toEqual([8]);
    await m.stop();
    const s = await startProxy(table({ consistentHash: { useSourceIp: true } }), ['--endpoints', file]);
    expect(Object.values(await spread(s.port, 10))).toEqual([10]);
    await s.stop();
  });

  test('consistentHash on a cookie: set when absent (ttl, path), then the session sticks', async () => {
    const bs = await three();
    const p = await startProxy(table({ consistentHash: { httpCookie: { name: 'sid', path: '/', ttlMs: 3_600_000 } } }), ['--endpoints', endpointsFile(bs.map((b) => b.port))]);
    const first = await viaProxy(p.port, URL_);
    const cookie = String(first.headers['set-cookie']);
    expect(cookie).toMatch(/^sid="[0-9a-f]{16}"; Max-Age=3600; Path=\/; HttpOnly$/);
    const value = /sid="([^"]+)"/.exec(cookie)![1];
    const s = await spread(p.port, 10, { cookie: `other=1; sid="${value}"` });
    expect(s).toEqual({ [first.body]: 10 });
    // A request that has the cookie gets none back.
    expect((await viaProxy(p.port, URL_, { headers: { cookie: `sid=${value}` } })).headers['set-cookie']).toBeUndefined();
    await p.stop();
  });

  test('terminating and unready endpoints get no new requests; none ready: 503 no healthy upstream (UH)', async () => {
    const bs = await three();
    const file = endpointsFile(bs.map((b) => b.port), [{}, { terminating: true, ready: false }, { ready: false }]);
    const p = await startProxy(table({ loadBalancer: 'ROUND_ROBIN' }), ['--endpoints', file]);
    expect(await spread(p.port, 6)).toEqual({ a: 6 });
    // The file changes (a rollout): the proxy follows within its 1 s check.
    writeEndpoints(file, bs.map((b) => b.port), [{ ready: false }, { ready: false }, { ready: false }]);
    await waitFor(async () => (await viaProxy(p.port, URL_)).status === 503);
    const r = await viaProxy(p.port, URL_);
    expect([r.status, r.body]).toEqual([503, 'no healthy upstream\n']);
    expect(await p.metric('istio_requests_total', { response_flags: 'UH' })).toBeGreaterThan(0);
    writeEndpoints(file, bs.map((b) => b.port));
    await waitFor(async () => Object.keys(await spread(p.port, 3)).length === 3);
    await p.stop();
  });

  test('a bad endpoints file is refused at start, with the place and what is expected', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mesh-endpoints-'));
    const bad = join(dir, 'e.json');
    writeFileSync(bad, JSON.stringify({ apiVersion: 'mesh.cdk8s.io/v1alpha1', kind: 'Endpoints', clusters: { [`${WEB}:8080`]: [{ address: '127.0.0.1; rm -rf /', port: 1 }] } }));
    await expect(startProxy(table(), ['--endpoints', bad])).rejects.toThrow(/e\.json: \/clusters\/web\.default\.svc\.cluster\.local:8080\/0: expected \{"address"/);
  });
});

describe('outlier detection', () => {
  test('an endpoint answering 500 is ejected after consecutive5xxErrors, 100% success while out, back after baseEjectionTime', async () => {
    const bs = await three((n) => (n === 'c' ? (_req, res) => { res.writeHead(500).end('c'); } : undefined));
    const p = await startProxy(table({
      loadBalancer: 'ROUND_ROBIN',
      outlierDetection: { consecutive5xxErrors: 3, intervalMs: 200, baseEjectionTimeMs: 1000, maxEjectionPercent: 100 },
    }), ['--endpoints', endpointsFile(bs.map((b) => b.port))]);
    // Round robin: every third request meets c; the third 500 ejects it.
    const before = await spread(p.port, 9);
    expect(before['500']).toBe(3);
    expect(await p.metric('mesh_proxy_outlier_detection_total', { event: 'ejected' })).toBe(1);
    expect(await spread(p.port, 40)).toEqual({ a: 20, b: 20 });
    expect(p.log.some((l) => l.includes('"outlier ejected"') && l.includes('"reason":"3 consecutive 5xx"'))).toBe(true);
    // 1 s later, at the next 200 ms tick, it is back.
    await waitFor(async () => (await p.metric('mesh_proxy_outlier_detection_total', { event: 'returned' })) === 1);
    expect((await spread(p.port, 6))['500']).toBeGreaterThan(0);
    await p.stop();
  });

  test('maxEjectionPercent bounds ejections (at least one is allowed); gateway errors count on their own', async () => {
    const failing = (n: string) => (n !== 'a' ? ((_req: http.IncomingMessage, res: http.ServerResponse) => { res.writeHead(503).end(n); }) : undefined);
    const bs = await three(failing);
    const p = await startProxy(table({
      loadBalancer: 'ROUND_ROBIN',
      outlierDetection: { consecutive5xxErrors: 0, consecutiveGatewayErrors: 2, intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 34 },
    }), ['--endpoints', endpointsFile(bs.map((b) => b.port))]);
    await spread(p.port, 12);
    // b and c both fail, but 34% of 3 allows one ejection.
    expect(await p.metric('mesh_proxy_outlier_detection_total', { event: 'ejected' })).toBe(1);
    const hosts = JSON.parse((await get(`http://127.0.0.1:${p.admin}/clusters`)).body)[`${WEB}:8080`].hosts;
    expect(hosts.filter((h: { ejected: boolean }) => h.ejected)).toHaveLength(1);
    await p.stop();
  });

  test('minHealthPercent: below it nothing is held out (panic), every ready endpoint gets traffic', async () => {
    const bs = await Promise.all(['a', 'b'].map((n) => backend(n, n === 'b' ? (_req, res) => { res.writeHead(500).end('b'); } : undefined)));
    const p = await startProxy(table({
      loadBalancer: 'ROUND_ROBIN',
      outlierDetection: { consecutive5xxErrors: 1, maxEjectionPercent: 100, minHealthPercent: 60 },
    }), ['--endpoints', endpointsFile(bs.map((b) => b.port))]);
    await spread(p.port, 4);
    // b is ejected, which leaves 50% healthy: under 60%, so b still gets its share.
    expect(await p.metric('mesh_proxy_outlier_detection_total', { event: 'ejected' })).toBe(1);
    expect((await spread(p.port, 10))['500']).toBe(5);
    await p.stop();
  });
});

describe('connection pools per destination', () => {
  const slow = () => (_req: http.IncomingMessage, res: http.ServerResponse) => { setTimeout(() => res.end('slow'), 300); };

  test('Istio\'s circuit-breaking task: maxConnections 1, http1MaxPendingRequests 1: 3 at once, one 503 UO; one at a time, none', async () => {
    const b = await backend('slow', slow());
    const p = await startProxy(table({ connectionPool: { maxConnections: 1, http1MaxPendingRequests: 1 } }), ['--endpoints', endpointsFile([b.port])]);
    const replies = await Promise.all([0, 1, 2].map(() => viaProxy(p.port, URL_)));
    const codes = replies.map((r) => r.status).sort();
    expect(codes).toEqual([200, 200, 503]);
    const overflowed = replies.find((r) => r.status === 503)!;
    expect(overflowed.headers['x-envoy-overloaded']).toBe('true');
    expect(await p.metric('istio_requests_total', { response_code: '503', response_flags: 'UO' })).toBe(1);
    const serial = [];
    for (let i = 0; i < 3; i++) serial.push((await viaProxy(p.port, URL_)).status);
    expect(serial).toEqual([200, 200, 200]);
    await p.stop();
  });

  test('the pool is the cluster\'s: one connection shared by three endpoints; a waiter of another endpoint gets a slot when one frees up', async () => {
    const bs = await three(() => slow());
    const p = await startProxy(table({ loadBalancer: 'ROUND_ROBIN', connectionPool: { maxConnections: 1, http1MaxPendingRequests: 10 } }), ['--endpoints', endpointsFile(bs.map((b) => b.port))]);
    const t0 = Date.now();
    const replies = await Promise.all([0, 1, 2].map(() => viaProxy(p.port, URL_)));
    expect(replies.map((r) => r.body).sort()).toEqual(['slow', 'slow', 'slow']);
    // One at a time: about 3 x 300 ms.
    expect(Date.now() - t0).toBeGreaterThanOrEqual(850);
    expect(bs.map((b) => b.seen.length)).toEqual([1, 1, 1]);
    await p.stop();
  });

  test('http2MaxRequests bounds requests in flight to the cluster (503 UO beyond it)', async () => {
    const b = await backend('slow', slow());
    const p = await startProxy(table({ connectionPool: { http2MaxRequests: 1 } }), ['--endpoints', endpointsFile([b.port])]);
    const codes = (await Promise.all([0, 1].map(() => viaProxy(p.port, URL_)))).map((r) => r.status).sort();
    expect(codes).toEqual([200, 503]);
    expect(await p.metric('mesh_proxy_overflow_total', { limit: 'upstream_requests' })).toBe(1);
    await p.stop();
  });

  test('maxRequestsPerConnection 1: a new connection for every request', async () => {
    const remotes = new Set<number>();
    const b = await backend('b', (req, res) => { remotes.add(req.socket.remotePort!); res.end('b'); });
    const p = await startProxy(table({ connectionPool: { maxRequestsPerConnection: 1 } }), ['--endpoints', endpointsFile([b.port])]);
    await spread(p.port, 5);
    expect(remotes.size).toBe(5);
    await p.stop();
    // Unlimited (the default): one kept-alive connection.
    remotes.clear();
    const q = await startProxy(table(), ['--endpoints', endpointsFile([b.port])]);
    await spread(q.port, 5);
    expect(remotes.size).toBe(1);
    await q.stop();
  });

  test('an endpoint that refuses connections: the attempt fails (UF) and Istio\'s default retry goes to the other endpoint', async () => {
    const good = await backend('good');
    const p = await startProxy(table({ loadBalancer: 'ROUND_ROBIN', connectionPool: { connectTimeoutMs: 100 } }), ['--endpoints', endpointsFile([good.port, await deadPort()])]);
    expect(await spread(p.port, 6)).toEqual({ good: 6 });
    expect(await p.metric('mesh_proxy_upstream_failures_total', { kind: 'connect-failure' })).toBeGreaterThan(0);
    await p.stop();
  });
});

describe('retries', () => {
  test('a retry goes to another endpoint than the one that failed', async () => {
    const bad = await backend('bad', (_req, res) => { res.writeHead(503).end('bad'); });
    const good = await backend('good');
    const p = await startProxy(table({ loadBalancer: 'RANDOM' }, [{ match: [], destinations: [{ host: WEB, port: 8080, weight: 1 }], retries: { attempts: 1, retryOn: ['503'] } }]),
      ['--endpoints', endpointsFile([bad.port, good.port])]);
    // With one retry, a request that met `bad` first must get `good` next: always 200.
    expect(await spread(p.port, 30)).toEqual({ good: 30 });
    // Each request met `bad` at most once: every one of its tries was followed by one on `good`.
    expect(bad.seen.length).toBeGreaterThan(0);
    expect(good.seen.length).toBe(30);
    await p.stop();
  });

  test('maxRetries 0: no retries in flight allowed, the failure passes as it is', async () => {
    const bad = await backend('bad', (_req, res) => { res.writeHead(503).end('bad'); });
    const p = await startProxy(table({ connectionPool: { maxRetries: 0 } }, [{ match: [], destinations: [{ host: WEB, port: 8080, weight: 1 }], retries: { attempts: 3, retryOn: ['503'] } }]),
      ['--endpoints', endpointsFile([bad.port])]);
    expect((await viaProxy(p.port, URL_)).status).toBe(503);
    expect(bad.seen).toHaveLength(1);
    await p.stop();
  });
});

describe('endpoints from the Kubernetes API (a fake API server on loopback)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-k8s-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'ca.crt')], { stdio: 'ignore' });
  writeFileSync(join(dir, 'token'), 'proxy-token\n');

  function slice(name: string, ports: number[], conditions: Array<Record<string, boolean>> = []) {
    return {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
      metadata: { name, namespace: 'default', labels: { 'kubernetes.io/service-name': 'web' }, resourceVersion: '0' },
      // One slice port per Service port name; every endpoint of a slice shares it, so each backend is its own slice here.
      ports: [{ name: 'http', port: ports[0], protocol: 'TCP' }],
      endpoints: [{ addresses: ['127.0.0.1'], conditions: conditions[0] ?? { ready: true } }],
    };
  }

  test('lists, then follows the watch (added, modified to terminating, deleted), with the bearer token; only list and watch of its selector', async () => {
    const [a, b] = await Promise.all([backend('a'), backend('b')]);
    const asked: string[] = [];
    let watcher: http.ServerResponse | undefined;
    const api = https.createServer({ key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'ca.crt')) }, (req, res) => {
      asked.push(`${req.method} ${req.url} ${req.headers.authorization}`);
      if (req.headers.authorization !== 'Bearer proxy-token') { res.writeHead(401).end(); return; }
      const u = new URL(req.url!, 'https://x');
      if (u.searchParams.get('watch')) { watcher = res; res.writeHead(200, { 'content-type': 'application/json' }); res.write(''); return; }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ kind: 'EndpointSliceList', metadata: { resourceVersion: '10' }, items: [slice('web-a', [a.port])] }));
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    const port = (api.address() as AddressInfo).port;
    const p = await startProxy(table({ loadBalancer: 'ROUND_ROBIN' }), ['--endpoints', 'kubernetes', '--api-server', `https://127.0.0.1:${port}`, '--token-file', join(dir, 'token'), '--ca-file', join(dir, 'ca.crt')]);
    await waitFor(async () => watcher !== undefined);
    expect(await spread(p.port, 3)).toEqual({ a: 3 });
    const send = (type: string, o: unknown) => watcher!.write(`${JSON.stringify({ type, object: o })}\n`);
    send('ADDED', { ...slice('web-b', [b.port]), metadata: { ...slice('web-b', [b.port]).metadata, resourceVersion: '11' } });
    await waitFor(async () => Object.keys(await spread(p.port, 4)).length === 2);
    expect(await spread(p.port, 4)).toEqual({ a: 2, b: 2 });
    send('MODIFIED', slice('web-a', [a.port], [{ ready: false, serving: true, terminating: true }]));
    await waitFor(async () => (await spread(p.port, 2)).b === 2);
    send('DELETED', slice('web-b', [b.port]));
    await waitFor(async () => (await viaProxy(p.port, URL_)).status === 503);
    expect(asked[0]).toBe(`GET /apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=${encodeURIComponent('kubernetes.io/service-name in (web)')} Bearer proxy-token`);
    expect(asked[1]).toMatch(/&watch=1&allowWatchBookmarks=true&resourceVersion=10&timeoutSeconds=300 Bearer proxy-token$/);
    expect(asked.every((x) => x.startsWith('GET /apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector='))).toBe(true);
    await p.stop();
    watcher?.destroy();
    api.closeAllConnections();
    api.close();
  });

  test('no token: the proxy says so once, counts it, and sends requests to the Service\'s name (ClusterIP)', async () => {
    const cip = await backend('cluster-ip');
    const p = await startProxy(table({ loadBalancer: 'ROUND_ROBIN' }), ['--endpoints', 'kubernetes', '--api-server', 'https://127.0.0.1:1', '--token-file', join(dir, 'missing'), '--ca-file', join(dir, 'ca.crt'), '--resolve', `${WEB}:8080=127.0.0.1:${cip.port}`]);
    expect(await spread(p.port, 3)).toEqual({ 'cluster-ip': 3 });
    expect(p.log.filter((l) => l.includes('no access to the Kubernetes API'))).toHaveLength(1);
    expect(await p.metric('mesh_proxy_endpoint_source', { source: 'cluster-ip' })).toBe(1);
    await p.stop();
  });
});

async function waitFor(ok: () => Promise<boolean>, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('condition not met in time');
}
