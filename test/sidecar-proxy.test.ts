// The mesh proxy on loopback: route tables rendered from charts, real backends, real clients.
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Testing } from 'cdk8s';
import { DataPlane, IngressGateway, MeshChart, MeshGateway, MeshWorkload, TrafficRoute } from '../constructs';
import { RouteTable } from '../model';
import {
  Backend, backend, deadPort, eventually, get, raw, resolveTo, routeTableOf, RunningProxy, sleep, startProxy, viaProxy,
} from './support/sidecar';
import { K8sObject, synthVariant, variant } from './support/synth';

jest.setTimeout(30_000);
const run = promisify(execFile);
const CANARY = 'http://springbootapp-svc.springistiodemo:8080/hello';

describe('springboot canary (70/30) from the client namespace', () => {
  let v1: Backend; let v2: Backend; let proxy: RunningProxy;
  const table = routeTableOf(synthVariant(variant('springboot-canary-node-sidecar')), 'istioclient');
  beforeAll(async () => {
    v1 = await backend('v1');
    v2 = await backend('v2');
    proxy = await startProxy(table, ['--namespace', 'istioclient', ...resolveTo({
      'springbootapp-svc-v1.springistiodemo.svc.cluster.local:8080': v1.port,
      'springbootapp-svc-v2.springistiodemo.svc.cluster.local:8080': v2.port,
    })]);
  });
  afterAll(async () => { await proxy.stop(); await v1.close(); await v2.close(); });

  test('every run of 10 requests is exactly 7 to v1 and 3 to v2', async () => {
    const bodies: string[] = [];
    for (let i = 0; i < 50; i++) bodies.push((await viaProxy(proxy.port, CANARY)).body);
    for (let w = 0; w < 50; w += 10) {
      const window = bodies.slice(w, w + 10);
      expect(window.filter((b) => b === 'v1')).toHaveLength(7);
      expect(window.filter((b) => b === 'v2')).toHaveLength(3);
    }
    // The upstream sees the host the client asked for, a request id and b3 trace headers.
    const h = v1.seen[0].headers;
    expect(h.host).toBe('springbootapp-svc.springistiodemo:8080');
    expect(h['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(h['x-b3-traceid']).toMatch(/^[0-9a-f]{32}$/);
    expect(h['x-b3-spanid']).toMatch(/^[0-9a-f]{16}$/);
    expect(await proxy.metric('mesh_proxy_requests_total', { destination: 'springbootapp-svc-v2.springistiodemo.svc.cluster.local:8080', code: '200' })).toBe(15);
  });

  test('every name of the service reaches the rules; a short name from another namespace does not', async () => {
    for (const host of ['springbootapp-svc.springistiodemo', 'springbootapp-svc.springistiodemo.svc', 'springbootapp-svc.springistiodemo.svc.cluster.local']) {
      expect(['v1', 'v2']).toContain((await viaProxy(proxy.port, `http://${host}:8080/hello`)).body);
    }
    // `springbootapp-svc` from istioclient means springbootapp-svc.istioclient: no rules, no such host.
    const short = await viaProxy(proxy.port, 'http://springbootapp-svc:8080/hello');
    expect(short.status).toBe(503);
    expect(short.body).toMatch(/connection failure/);
  });

  test('an existing x-request-id and b3 trace are kept, with a new span under the caller\'s', async () => {
    const before = v1.seen.length + v2.seen.length;
    await viaProxy(proxy.port, CANARY, { headers: { 'x-request-id': 'req-1', 'x-b3-traceid': 'a'.repeat(32), 'x-b3-spanid': 'b'.repeat(16), 'x-b3-sampled': '1' } });
    const h = [...v1.seen, ...v2.seen].find((s) => s.headers['x-request-id'] === 'req-1')!.headers;
    expect(v1.seen.length + v2.seen.length).toBe(before + 1);
    expect(h['x-b3-traceid']).toBe('a'.repeat(32));
    expect(h['x-b3-parentspanid']).toBe('b'.repeat(16));
    expect(h['x-b3-spanid']).not.toBe('b'.repeat(16));
    expect(h['x-b3-sampled']).toBe('1');
  });

  test('curl, GNU wget and busybox wget with http_proxy set get the same split', async () => {
    const env = { ...process.env, http_proxy: `http://127.0.0.1:${proxy.port}`, HTTP_PROXY: `http://127.0.0.1:${proxy.port}`, no_proxy: '', NO_PROXY: '' };
    const clients: Array<[string, string[]]> = [['curl', ['-s', '--max-time', '5', CANARY]], ['wget', ['-q', '-O', '-', '--timeout=5', CANARY]]];
    try {
      await run('busybox', ['true']);
      clients.push(['busybox', ['wget', '-q', '-O', '-', CANARY]]);
    } catch {
      // busybox is installed by .ci/run; without it the two other clients still run.
    }
    for (const [cmd, args] of clients) {
      const got: string[] = [];
      for (let i = 0; i < 10; i++) got.push((await run(cmd, args, { env })).stdout.trim());
      expect(got.filter((b) => b === 'v1').length).toBe(7);
      expect(got.filter((b) => b === 'v2').length).toBe(3);
    }
  });
});

test('--pick random splits 70/30 on average, not exactly', async () => {
  const v1 = await backend('v1');
  const v2 = await backend('v2');
  const table = routeTableOf(synthVariant(variant('springboot-canary-node-sidecar')), 'istioclient');
  const proxy = await startProxy(table, ['--pick', 'random', ...resolveTo({
    'springbootapp-svc-v1.springistiodemo.svc.cluster.local:8080': v1.port,
    'springbootapp-svc-v2.springistiodemo.svc.cluster.local:8080': v2.port,
  })]);
  const n = 600;
  await Promise.all(Array.from({ length: n }, () => viaProxy(proxy.port, CANARY)));
  expect(v1.seen.length + v2.seen.length).toBe(n);
  expect(v2.seen.length / n).toBeGreaterThan(0.22);
  expect(v2.seen.length / n).toBeLessThan(0.38);
  await proxy.stop(); await v1.close(); await v2.close();
});

test('the 0.002s timeout: 504 from the proxy long before a slow backend answers', async () => {
  const slow = await backend('slow', (_q, res) => setTimeout(() => res.end('late'), 300));
  const table = routeTableOf(synthVariant(variant('springboot-canary-timeout-node-sidecar')), 'istioclient');
  const proxy = await startProxy(table, resolveTo({
    'springbootapp-svc-v1.springistiodemo.svc.cluster.local:8080': slow.port,
    'springbootapp-svc-v2.springistiodemo.svc.cluster.local:8080': slow.port,
  }));
  const t0 = Date.now();
  const r = await viaProxy(proxy.port, CANARY);
  expect(r.status).toBe(504);
  expect(r.body.trim()).toBe('upstream request timeout');
  expect(Date.now() - t0).toBeLessThan(250);
  await proxy.stop(); await slow.close();
});

describe('rules: matches, redirect, rewrite, headers, faults, retries, mirror', () => {
  const ports: Record<string, number> = {};
  const backends: Record<string, Backend> = {};
  let proxy: RunningProxy;
  let flakyFailures = 2;

  function rulesChart(): K8sObject[] {
    const chart = new MeshChart(Testing.app(), 'rules', { dataPlane: DataPlane.NODE_SIDECAR });
    const w = (app: string) => new MeshWorkload(chart, app, { app, image: 'x', port: 8080 });
    const [front, a, b, flaky, slowfirst, down, shadow, busy] = ['front', 'a', 'b', 'flaky', 'slowfirst', 'down', 'shadow', 'busy'].map(w);
    new TrafficRoute(chart, 'routes', {
      name: 'front-vs',
      hosts: [front],
      http: [
        { match: [{ uri: { prefix: '/old' } }], redirect: { uri: '/new', redirectCode: 302 } },
        { match: [{ uri: { prefix: '/abort' } }], route: [{ to: a }], fault: { abort: { httpStatus: 418, percentage: 100 } } },
        { match: [{ uri: { prefix: '/delay' } }], route: [{ to: a }], fault: { delay: { fixedDelay: '150ms', percentage: 100 } } },
        {
          match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ to: b }],
          headers: { request: { set: { 'x-tier': 'gold' }, remove: ['x-drop-me'] }, response: { set: { 'x-served-by': 'b' } } },
        },
        { match: [{ uri: { regex: '/items/[0-9]+' } }, { queryParams: { debug: { exact: '1' } } }], route: [{ to: b }] },
        { match: [{ uri: { prefix: '/v1/' } }], route: [{ to: a }], rewrite: { uri: '/v2/' } },
        { match: [{ uri: { prefix: '/flaky' } }], route: [{ to: flaky }], retries: { attempts: 3, retryOn: ['5xx'] } },
        { match: [{ uri: { prefix: '/slowfirst' } }], route: [{ to: slowfirst }], retries: { attempts: 2, perTryTimeout: '80ms', retryOn: ['gateway-error'] } },
        { match: [{ uri: { prefix: '/down' } }], route: [{ to: down }], retries: { attempts: 2, retryOn: ['connect-failure'] } },
        { match: [{ uri: { prefix: '/noretry' } }], route: [{ to: busy }], retries: { attempts: 0 } },
        { match: [{ uri: { prefix: '/busy' } }], route: [{ to: busy }] },
        { match: [{ uri: { prefix: '/mirror' } }], route: [{ to: a }], mirror: { to: shadow } },
        // Istio: Host in headers.request.add (or set) rewrites the authority.
        { match: [{ uri: { prefix: '/host-add' } }], route: [{ to: a }], headers: { request: { add: { Host: 'api.example' } } } },
        { route: [{ to: a }] },
      ],
    });
    return Testing.synth(chart) as K8sObject[];
  }

  beforeAll(async () => {
    backends.a = await backend('a');
    backends.b = await backend('b');
    backends.flaky = await backend('flaky', (_q, res, _b, n) => res.writeHead(n <= flakyFailures ? 503 : 200).end(n <= flakyFailures ? 'fail' : 'ok'));
    backends.slowfirst = await backend('slowfirst', (_q, res, _b, n) => setTimeout(() => res.end('ok'), n === 1 ? 400 : 0));
    backends.busy = await backend('busy', (_q, res, _b, n) => res.writeHead(n % 2 === 1 ? 503 : 200).end(n % 2 === 1 ? 'busy' : 'ok'));
    backends.shadow = await backend('shadow', (_q, res) => setTimeout(() => res.end('shadow'), 1000));
    for (const [k, v] of Object.entries(backends)) ports[`${k}.default.svc.cluster.local:8080`] = v.port;
    ports['down.default.svc.cluster.local:8080'] = await deadPort();
    proxy = await startProxy(routeTableOf(rulesChart()), resolveTo(ports));
  });
  afterAll(async () => {
    await proxy.stop();
    for (const b of Object.values(backends)) await b.close();
  });
  // front is a Service on 8080: its rules apply on that port (a request to front:80 would pass through).
  const go = (path: string, headers = {}) => viaProxy(proxy.port, `http://front:8080${path}`, { headers });

  test('redirect answers from the proxy with the new location', async () => {
    const r = await go('/old/page?x=1');
    expect(r.status).toBe(302);
    expect(r.headers.location).toBe('http://front:8080/new?x=1');
  });

  test('header, regex (whole path) and query matches pick their rule; the rest falls through', async () => {
    expect((await go('/', { 'end-user': 'jason' })).body).toBe('b');
    expect((await go('/', { 'end-user': 'jasonx' })).body).toBe('a');
    expect((await go('/items/42')).body).toBe('b');
    expect((await go('/items/42/reviews')).body).toBe('a'); // RE2 full match, as Envoy
    expect((await go('/anything?debug=1')).body).toBe('b');
    expect((await go('/anything?debug=0')).body).toBe('a');
  });

  test('request and response header operations', async () => {
    const r = await go('/', { 'end-user': 'jason', 'x-drop-me': 'secret' });
    expect(r.headers['x-served-by']).toBe('b');
    const seen = backends.b.seen[backends.b.seen.length - 1].headers;
    expect(seen['x-tier']).toBe('gold');
    expect(seen['x-drop-me']).toBeUndefined();
  });

  test('prefix rewrite keeps the rest of the path and the query', async () => {
    await go('/v1/users/7?full=1');
    expect(backends.a.seen[backends.a.seen.length - 1].url).toBe('/v2/users/7?full=1');
  });

  test('fault abort answers 418 without reaching the backend; delay holds the request', async () => {
    const before = backends.a.seen.length;
    const r = await go('/abort');
    expect(r.status).toBe(418);
    expect(r.body.trim()).toBe('fault filter abort');
    expect(backends.a.seen.length).toBe(before);
    const t0 = Date.now();
    expect((await go('/delay')).body).toBe('a');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(145);
    expect(await proxy.metric('mesh_proxy_faults_total', { kind: 'abort' })).toBe(1);
    expect(await proxy.metric('mesh_proxy_faults_total', { kind: 'delay' })).toBe(1);
  });

  test('retries on 5xx until the backend recovers; exhausted retries return its 503', async () => {
    flakyFailures = 2;
    let r = await go('/flaky');
    expect([r.status, r.body]).toEqual([200, 'ok']);
    expect(backends.flaky.seen).toHaveLength(3);
    flakyFailures = 100;
    r = await go('/flaky');
    expect([r.status, r.body]).toEqual([503, 'fail']);
    expect(backends.flaky.seen).toHaveLength(3 + 4);
    expect(await proxy.metric('mesh_proxy_retries_total', { reason: '503' })).toBe(2 + 3);
  });

  test('a per-try timeout is retried under gateway-error', async () => {
    const r = await go('/slowfirst');
    expect([r.status, r.body]).toEqual([200, 'ok']);
    expect(backends.slowfirst.seen).toHaveLength(2);
    expect(await proxy.metric('mesh_proxy_retries_total', { reason: 'per-try-timeout' })).toBe(1);
  });

  test('connect failures are retried, then answered 503 like Envoy', async () => {
    const r = await go('/down');
    expect(r.status).toBe(503);
    expect(r.body).toMatch(/reset reason: connection failure/);
    expect(await proxy.metric('mesh_proxy_retries_total', { reason: 'connect-failure' })).toBe(2);
  });

  test('without a retry policy Istio\'s default retries a 503; attempts 0 does not', async () => {
    const r = await go('/busy'); // busy answers 503, then 200
    expect([r.status, r.body]).toEqual([200, 'ok']);
    const n = await go('/noretry'); // the next request is a 503 again
    expect(n.status).toBe(503);
  });

  test('a mirror gets a copy (Host "-shadow") and never delays the response', async () => {
    const t0 = Date.now();
    const r = await go('/mirror/x', { 'x-request-id': 'mirror-1' });
    expect(r.body).toBe('a');
    expect(Date.now() - t0).toBeLessThan(800); // the shadow backend takes 1000ms
    await eventually(() => backends.shadow.seen.length === 1);
    expect(backends.shadow.seen[0].headers.host).toBe('front-shadow:8080'); // Envoy inserts -shadow before the port
    expect(backends.shadow.seen[0].headers['x-request-id']).toBe('mirror-1');
    expect(backends.shadow.seen[0].url).toBe('/mirror/x');
  });

  test('Host in headers.request.add rewrites the authority, as Istio does (one Host goes upstream)', async () => {
    const r = await go('/host-add');
    expect(r.body).toBe('a');
    const seen = backends.a.seen[backends.a.seen.length - 1];
    expect(seen.url).toBe('/host-add');
    expect(seen.headers.host).toBe('api.example');
  });

  test('the proxy never forwards to itself', async () => {
    const r = await viaProxy(proxy.port, `http://127.0.0.1:${proxy.port}/`);
    expect(r.status).toBe(508);
    expect(r.body).toMatch(/own port/);
  });

  test('a request that comes back through the same proxy (a loop) is stopped', async () => {
    const via = String((await go('/')).headers.via);
    expect(via).toMatch(/^1\.1 mesh-proxy-[0-9a-f]{8}$/);
    const r = await go('/', { via });
    expect(r.status).toBe(508);
    expect(r.body).toMatch(/request loop/);
  });
});

describe('hosts without rules', () => {
  test('pass through by default (ALLOW_ANY); REGISTRY_ONLY answers 502 but still admits the mesh\'s services', async () => {
    const outside = await backend('outside');
    const known = await backend('known');
    const table = routeTableOf(synthVariant(variant('springboot-canary-node-sidecar')), 'istioclient');
    const open = await startProxy(table);
    expect((await viaProxy(open.port, `http://127.0.0.1:${outside.port}/x`)).body).toBe('outside');
    await open.stop();

    const closed = await startProxy(table, ['--outbound-policy', 'REGISTRY_ONLY', ...resolveTo({ 'springbootapp-svc-v1.springistiodemo.svc.cluster.local:8080': known.port })]);
    const r = await viaProxy(closed.port, `http://127.0.0.1:${outside.port}/x`);
    expect(r.status).toBe(502);
    expect(r.body).toMatch(/not a service of this mesh and outboundTrafficPolicy is REGISTRY_ONLY/);
    expect(outside.seen).toHaveLength(1);
    expect((await viaProxy(closed.port, 'http://springbootapp-svc-v1.springistiodemo:8080/')).body).toBe('known');
    await closed.stop(); await outside.close(); await known.close();
  });
});

describe('operations', () => {
  const canaryTable = () => routeTableOf(synthVariant(variant('springboot-canary-node-sidecar')), 'istioclient');
  const withWeights = (t: RouteTable, w1: number, w2: number): RouteTable => JSON.parse(JSON.stringify(t, (k, v) => (k === 'weight' ? (v === 70 ? w1 : w2) : v)));

  test('hot reload: a broken table is refused, logged and counted while the last good one serves; a good one applies', async () => {
    const v1 = await backend('v1');
    const v2 = await backend('v2');
    const table = canaryTable();
    const proxy = await startProxy(table, ['--reload-interval', '50', ...resolveTo({
      'springbootapp-svc-v1.springistiodemo.svc.cluster.local:8080': v1.port,
      'springbootapp-svc-v2.springistiodemo.svc.cluster.local:8080': v2.port,
    })]);
    writeFileSync(proxy.configFile, '{"apiVersion": "mesh.cdk8s.io/v1alpha1", "kind": "RouteTable"');
    await eventually(async () => (await proxy.metric('mesh_proxy_config_reloads_total', { result: 'rejected' })) === 1);
    expect(proxy.log.join('\n')).toMatch(/config reload refused; the previous route table stays in use.*not valid JSON/);
    expect(['v1', 'v2']).toContain((await viaProxy(proxy.port, CANARY)).body);

    // Valid JSON, but weights all zero: refused too.
    writeFileSync(proxy.configFile, JSON.stringify(withWeights(table, 0, 0)));
    await eventually(async () => (await proxy.metric('mesh_proxy_config_reloads_total', { result: 'rejected' })) === 2);

    writeFileSync(proxy.configFile, JSON.stringify(withWeights(table, 0, 100)));
    await eventually(async () => (await proxy.metric('mesh_proxy_config_reloads_total', { result: 'applied' })) === 2);
    for (let i = 0; i < 5; i++) expect((await viaProxy(proxy.port, CANARY)).body).toBe('v2');
    const dump = JSON.parse((await get(`http://127.0.0.1:${proxy.admin}/config_dump`)).body);
    expect(dump.table.virtualHosts[0].routes[0].destinations.map((d: { weight: number }) => d.weight)).toEqual([0, 100]);
    await proxy.stop(); await v1.close(); await v2.close();
  });

  test('SIGTERM: not ready, in-flight requests finish, the app\'s last outbound calls still go out during the drain period, then exit 0', async () => {
    const slow = await backend('slow', (_q, res) => setTimeout(() => res.end('done'), 400));
    const proxy = await startProxy(canaryTable(), ['--drain-timeout', '1500', ...resolveTo({
      'springbootapp-svc-v1.springistiodemo.svc.cluster.local:8080': slow.port,
      'springbootapp-svc-v2.springistiodemo.svc.cluster.local:8080': slow.port,
    })]);
    expect((await get(`http://127.0.0.1:${proxy.admin}/healthz/ready`)).status).toBe(200);
    const inflight = Promise.all([viaProxy(proxy.port, CANARY), viaProxy(proxy.port, CANARY)]);
    await eventually(() => slow.seen.length === 2);
    const t0 = Date.now();
    const exit = proxy.stop('SIGTERM');
    await sleep(50);
    expect((await get(`http://127.0.0.1:${proxy.admin}/healthz/ready`)).status).toBe(503);
    // The app, shutting down as well, makes one more call after the proxy got SIGTERM.
    const last = await viaProxy(proxy.port, CANARY);
    expect([last.status, last.body, last.headers.connection]).toEqual([200, 'done', 'close']);
    expect((await inflight).map((r) => [r.status, r.body])).toEqual([[200, 'done'], [200, 'done']]);
    expect(await exit).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400); // the whole drain period, not just until idle
    await expect(viaProxy(proxy.port, CANARY)).rejects.toThrow(/ECONNREFUSED/);
    await slow.close();
  });

  test('SIGTERM: an app still calling after the drain period keeps its proxy until it has been quiet for 1 s; --drain-max bounds that', async () => {
    const b = await backend('b');
    const resolve = resolveTo({
      'springbootapp-svc-v1.springistiodemo.svc.cluster.local:8080': b.port,
      'springbootapp-svc-v2.springistiodemo.svc.cluster.local:8080': b.port,
    });
    const proxy = await startProxy(canaryTable(), ['--drain-timeout', '500', ...resolve]);
    const t0 = Date.now();
    const exit = proxy.stop('SIGTERM');
    // The app goes on calling every 200 ms for 2 s, well past the 500 ms drain period.
    const answers: number[] = [];
    while (Date.now() - t0 < 2000) {
      answers.push((await viaProxy(proxy.port, CANARY)).status);
      await sleep(200);
    }
    const lastCall = Date.now();
    expect(answers.every((s) => s === 200)).toBe(true);
    expect(answers.length).toBeGreaterThanOrEqual(8);
    expect(await exit).toBe(0);
    const quiet = Date.now() - lastCall;
    expect(quiet).toBeGreaterThanOrEqual(700);
    expect(quiet).toBeLessThan(3000);

    // A caller that never stops: the proxy leaves at --drain-max.
    const busy = await startProxy(canaryTable(), ['--drain-timeout', '300', '--drain-max', '1200', ...resolve]);
    const t1 = Date.now();
    const exit2 = busy.stop('SIGTERM');
    let stopped = false;
    void exit2.then(() => { stopped = true; });
    while (!stopped && Date.now() - t1 < 5000) {
      await viaProxy(busy.port, CANARY).catch(() => undefined);
      await sleep(100);
    }
    expect(await exit2).toBe(0);
    expect(Date.now() - t1).toBeGreaterThanOrEqual(1100);
    expect(Date.now() - t1).toBeLessThan(2500);
    await b.close();
  });

  test("preStop: /prestop/S answers after S seconds (the kubelet's hook holds SIGTERM that long), from any address", async () => {
    const proxy = await startProxy(canaryTable());
    const t0 = Date.now();
    const r = await get(`http://127.0.0.1:${proxy.admin}/prestop/1`);
    expect([r.status, r.body]).toEqual([200, 'waited 1 s\n']);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    expect((await get(`http://127.0.0.1:${proxy.admin}/prestop`)).body).toBe('waited 0 s\n');
    // As the 1.20 kubelet asks (its hooks' URLs have two slashes).
    expect((await get(`http://127.0.0.1:${proxy.admin}//prestop/0`)).body).toBe('waited 0 s\n');
    expect(proxy.log.join('\n')).toMatch(/preStop: waiting before SIGTERM/);
    await proxy.stop();
  });

  test('malformed, oversized and slow requests get a clear 4xx; other clients are unaffected', async () => {
    const ok = await backend('ok');
    const proxy = await startProxy(canaryTable(), ['--header-timeout', '300', ...resolveTo({
      'springbootapp-svc-v1.springistiodemo.svc.cluster.local:8080': ok.port,
      'springbootapp-svc-v2.springistiodemo.svc.cluster.local:8080': ok.port,
    })]);
    const slowloris = raw(proxy.port, 'GET http://x/ HTTP/1.1\r\nHost: x\r\n', 3000);
    const [garbage, huge, badTarget, normal] = await Promise.all([
      raw(proxy.port, 'THIS IS NOT HTTP\r\n\r\n'),
      raw(proxy.port, `GET ${CANARY} HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(70_000)}\r\n\r\n`),
      raw(proxy.port, 'GET ftp://example.com/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
      viaProxy(proxy.port, CANARY),
    ]);
    expect(garbage).toMatch(/^HTTP\/1.1 400 Bad Request/);
    expect(huge).toMatch(/^HTTP\/1.1 431 Request Header Fields Too Large/);
    expect(badTarget).toMatch(/^HTTP\/1.1 400 .*\r\n[\s\S]*neither a path nor an http:\/\/ URL/);
    expect([normal.status, normal.body]).toEqual([200, 'ok']);
    expect(await slowloris).toMatch(/^HTTP\/1.1 408 Request Timeout/);
    expect(await proxy.metric('mesh_proxy_client_errors_total', { code: '431' })).toBe(1);
    await proxy.stop(); await ok.close();
  });

  test('client aborts free the upstream request: no leaked sockets or in-flight requests', async () => {
    const hang = await backend('hang', (_q, res) => setTimeout(() => res.end('late'), 2000));
    const proxy = await startProxy(canaryTable(), resolveTo({
      'springbootapp-svc-v1.springistiodemo.svc.cluster.local:8080': hang.port,
      'springbootapp-svc-v2.springistiodemo.svc.cluster.local:8080': hang.port,
    }));
    const aborts = Array.from({ length: 20 }, () => {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 100);
      return viaProxy(proxy.port, CANARY, { signal: ac.signal }).catch((e: Error) => e.name);
    });
    expect(new Set(await Promise.all(aborts))).toEqual(new Set(['AbortError']));
    await eventually(async () => hang.aborted === 20);
    await eventually(async () => (await proxy.metric('mesh_proxy_requests_in_flight')) === 0);
    await proxy.stop(); await hang.close();
  });
});

describe('gateway mode', () => {
  /**
   * Start a gateway whose first listener (8080 in the table) lands on a free port; its
   * other listeners follow at the same offset, and one of those may be taken meanwhile
   * by another process: then try another offset.
   */
  async function startGateway(table: RouteTable, args: string[]): Promise<{ gw: RunningProxy; port: number }> {
    for (let attempt = 0; ; attempt++) {
      const port = await deadPort();
      try {
        return { gw: await startProxy(table, [...args, '--bind', '127.0.0.1', '--port-offset', String(port - 8080)]), port };
      } catch (e) {
        if (attempt >= 4 || !/EADDRINUSE/.test(String(e))) throw e;
      }
    }
  }

  test('demo-gateway: any host, exact "/" to demo-svc:80, anything else 404', async () => {
    const nginx = await backend('nginx');
    const table = routeTableOf(synthVariant(variant('demo-gateway-node-sidecar')));
    const { gw, port } = await startGateway(table, ['--mode', 'gateway', '--gateway', 'default/demo-gateway',
      ...resolveTo({ 'demo-svc.default.svc.cluster.local:80': nginx.port })]);
    const r = await get(`http://127.0.0.1:${port}/`, { host: 'demo.example.com' });
    expect([r.status, r.body]).toEqual([200, 'nginx']);
    expect(nginx.seen[0].headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(nginx.seen[0].headers['x-forwarded-proto']).toBe('http');
    expect((await get(`http://127.0.0.1:${port}/other`)).status).toBe(404);
    await gw.stop(); await nginx.close();
  });

  test('SIGTERM: a gateway keeps accepting through the drain period (its Service still sends it connections), answering connection: close, then exits 0', async () => {
    const nginx = await backend('nginx');
    const table = routeTableOf(synthVariant(variant('demo-gateway-node-sidecar')));
    const { gw, port } = await startGateway(table, ['--mode', 'gateway', '--gateway', 'default/demo-gateway', '--drain-timeout', '1500',
      ...resolveTo({ 'demo-svc.default.svc.cluster.local:80': nginx.port })]);
    const t0 = Date.now();
    const exit = gw.stop('SIGTERM');
    await sleep(50);
    // A new connection after SIGTERM, as kube-proxy sends until the endpoint is gone everywhere.
    const late = await get(`http://127.0.0.1:${port}/`, { host: 'demo.example.com' });
    expect([late.status, late.body, late.headers.connection]).toEqual([200, 'nginx', 'close']);
    expect(await exit).toBe(0);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
    await expect(get(`http://127.0.0.1:${port}/`)).rejects.toThrow(/ECONNREFUSED/);
    await nginx.close();
  });

  test('a gateway whose listener cannot open at start does not start (no half-served Gateway that looks ready)', async () => {
    const chart = new MeshChart(Testing.app(), 'gw', { dataPlane: DataPlane.NODE_SIDECAR });
    const shop = new MeshWorkload(chart, 'shop', { app: 'shop', image: 'x', port: 8080 });
    const g = new MeshGateway(chart, 'gw', { name: 'shop-gateway', servers: [{ port: 80, hosts: ['*'] }, { port: 81, name: 'http-81', hosts: ['*'] }] });
    new TrafficRoute(chart, 'vs', { name: 'shop', hosts: ['*'], gateways: [g.name], http: [{ route: [{ to: shop }] }] });
    // Port 81's listener (offset + 81) is taken; port 80's is free.
    const taken = http.createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const busy = (taken.address() as AddressInfo).port;
    try {
      await expect(startProxy(routeTableOf(Testing.synth(chart) as K8sObject[]), ['--mode', 'gateway', '--gateway', 'default/shop-gateway', '--bind', '127.0.0.1', '--port-offset', String(busy - 8081)]))
        .rejects.toThrow(/EADDRINUSE/);
    } finally {
      await new Promise<void>((r) => taken.close(() => r()));
    }
  });

  test('server hosts, wildcard VirtualService hosts and httpsRedirect', async () => {
    const chart = new MeshChart(Testing.app(), 'gw', { dataPlane: DataPlane.NODE_SIDECAR });
    const shop = new MeshWorkload(chart, 'shop', { app: 'shop', image: 'x', port: 8080 });
    const g = new MeshGateway(chart, 'gw', {
      name: 'shop-gateway',
      servers: [{ port: 80, hosts: ['*.example.com'] }, { port: 81, hosts: ['secure.example.com'], httpsRedirect: true }],
    });
    new TrafficRoute(chart, 'vs', { name: 'shop', hosts: ['*.example.com'], gateways: [g.name], http: [{ route: [{ to: shop }] }] });
    const back = await backend('shop');
    const { gw, port } = await startGateway(routeTableOf(Testing.synth(chart) as K8sObject[]), ['--mode', 'gateway', '--gateway', 'default/shop-gateway',
      ...resolveTo({ 'shop.default.svc.cluster.local:8080': back.port })]);
    expect((await get(`http://127.0.0.1:${port}/`, { host: 'www.example.com' })).body).toBe('shop');
    expect((await get(`http://127.0.0.1:${port}/`, { host: 'www.example.org' })).status).toBe(404);
    const redirect = await get(`http://127.0.0.1:${port + 1}/cart?id=1`, { host: 'secure.example.com' });
    expect(redirect.status).toBe(301);
    expect(redirect.headers.location).toBe('https://secure.example.com/cart?id=1');
    await gw.stop(); await back.close();
  });
});

/** GET / over TLS with SNI `host`, trusting any certificate: the body and the certificate's CN. */
function httpsGet(port: number, host: string): Promise<{ body: string; cn: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/', servername: host, headers: { host }, rejectUnauthorized: false }, (res) => {
      const cn = String((res.socket as import('node:tls').TLSSocket).getPeerCertificate().subject.CN);
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ body, cn }));
    });
    req.on('error', reject);
  });
}

describe('gateway mode: several Gateways on one selector, TLS from --tls-dir', () => {
  const chart = new MeshChart(Testing.app(), 'gw', { dataPlane: DataPlane.NODE_SIDECAR });
  const a = new MeshWorkload(chart, 'a', { app: 'shop-a', image: 'x', port: 8080 });
  const b = new MeshWorkload(chart, 'b', { app: 'shop-b', image: 'x', port: 8080 });
  new IngressGateway(chart, 'ga', { name: 'a-gateway', hosts: ['a.example.com'], http: { port: 8080 }, routes: [{ route: [{ to: a }] }] });
  new IngressGateway(chart, 'gb', { name: 'b-gateway', hosts: ['b.example.com'], http: { port: 8080 }, https: { port: 8443, credentialName: 'b-cert' }, routes: [{ route: [{ to: b }] }] });
  const table = routeTableOf(Testing.synth(chart) as K8sObject[]);
  // Backends are closed even when a test fails half-way: an open server keeps jest from exiting.
  const afterEachClose: Backend[] = [];
  afterEach(async () => { await Promise.all(afterEachClose.splice(0).map((b) => b.close())); });
  /** Listeners on a free port and 363 above it (8443 - 8080); another offset when one is taken meanwhile. */
  const start = async (tlsDir: string, backA: Backend, backB: Backend) => {
    for (let attempt = 0; ; attempt++) {
      const port = await deadPort();
      try {
        const gw = await startProxy(table, ['--mode', 'gateway', '--gateway', 'default/a-gateway,default/b-gateway', '--tls-dir', tlsDir,
          '--bind', '127.0.0.1', '--port-offset', String(port - 8080),
          ...resolveTo({ 'shop-a.default.svc.cluster.local:8080': backA.port, 'shop-b.default.svc.cluster.local:8080': backB.port })]);
        return { gw, port };
      } catch (e) {
        if (attempt >= 4 || !/EADDRINUSE/.test(String(e))) throw e;
      }
    }
  };

  test('one listener serves both gateways by Host; a missing Secret takes down only its HTTPS server', async () => {
    const backA = await backend('shop-a');
    const backB = await backend('shop-b');
    afterEachClose.push(backA, backB);
    const { gw, port } = await start(mkdtempSync(join(tmpdir(), 'no-tls-')), backA, backB);
    expect((await get(`http://127.0.0.1:${port}/`, { host: 'a.example.com' })).body).toBe('shop-a');
    expect((await get(`http://127.0.0.1:${port}/`, { host: 'b.example.com:8080' })).body).toBe('shop-b');
    expect((await get(`http://127.0.0.1:${port}/`, { host: 'c.example.com' })).status).toBe(404);
    expect(gw.log.join('\n')).toMatch(/TLS secret missing or unreadable.*"gateway":"default\/b-gateway","port":8443/);
    expect(await gw.metric('mesh_proxy_gateway_tls_missing_total', { gateway: 'default/b-gateway', port: '8443' })).toBe(1);
    await expect(httpsGet(port + 363, 'b.example.com')).rejects.toThrow(/ECONNREFUSED/);
    await gw.stop();
  });

  test('with the Secret in --tls-dir, HTTPS is served with it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tls-'));
    mkdirSync(join(dir, 'b-cert'));
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=b.example.com',
      '-keyout', join(dir, 'b-cert', 'tls.key'), '-out', join(dir, 'b-cert', 'tls.crt')], { stdio: 'ignore' });
    const backA = await backend('shop-a');
    const backB = await backend('shop-b');
    afterEachClose.push(backA, backB);
    const { gw, port } = await start(dir, backA, backB);
    const reply = await httpsGet(port + 363, 'b.example.com');
    expect(reply).toEqual({ body: 'shop-b', cn: 'b.example.com' });
    await gw.stop();
  });
});

test('bookinfo jason-v2 on the node sidecar: productpage\'s calls to reviews follow the end-user header', async () => {
  const v1 = await backend('reviews-v1');
  const v2 = await backend('reviews-v2');
  const table = routeTableOf(synthVariant(variant('bookinfo-jason-v2-node-sidecar')), 'bookinfo');
  const proxy = await startProxy(table, ['--namespace', 'bookinfo', ...resolveTo({
    'reviews-v1.bookinfo.svc.cluster.local:9080': v1.port, 'reviews-v2.bookinfo.svc.cluster.local:9080': v2.port,
  })]);
  expect((await viaProxy(proxy.port, 'http://reviews:9080/reviews/0', { headers: { 'end-user': 'jason' } })).body).toBe('reviews-v2');
  expect((await viaProxy(proxy.port, 'http://reviews:9080/reviews/0')).body).toBe('reviews-v1');
  await proxy.stop(); await v1.close(); await v2.close();
});
