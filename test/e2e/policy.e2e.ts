/**
 * DestinationRule traffic policy on the node-sidecar data plane, as pods: the client's
 * proxy balances over the EndpointSlices it watches (with its own token, under RBAC),
 * ejects a failing pod, limits connections, hashes sessions, and a rolling update under
 * load loses nothing. The chart is made here (a chart of the catalogue would add a plan
 * and snapshots for a test fixture); the backends are the stand-in image with its
 * STANDIN_DELAY_MS and STANDIN_STATUS.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Testing } from 'cdk8s';
import { stringify } from 'yaml';
import { DataPlane, DestinationPolicy, MeshChart, MeshNamespace, MeshWorkload } from '../../constructs';
import type { TrafficPolicy } from '../../model';
import { removeManifest } from './support/chart';
import { clusterReachable, execIn, K8sObject, kubectl, kubectlOk, Pod, podsOf, proxyStats, sample, waitAvailable } from './support/kube';

const NS = 'policy';
const IMAGE = 'docker.io/library/springbootapp:v1';

function chart(): K8sObject[] {
  const c = new MeshChart(Testing.app(), 'policy', { dataPlane: DataPlane.NODE_SIDECAR });
  const namespace = new MeshNamespace(c, 'ns', { name: NS });
  // Backends outside the mesh (the client's proxy does the balancing), but `rr`, whose pods
  // keep serving through the mesh's preStop wait while a rollout takes them out.
  const standin = (id: string, app: string, replicas: number, env: Record<string, string> = {}, service = true) => new MeshWorkload(c, id, {
    app, version: id, deploymentName: id, image: IMAGE, port: 8080, replicas, namespace, mesh: app === 'rr',
    ...(service ? { serviceName: app, serviceSelector: { app } } : { service: false }),
    env: { STANDIN_APP: app, STANDIN_VERSION: id, ...env },
  });
  const policy = (name: string, service: MeshWorkload, trafficPolicy: TrafficPolicy) => new DestinationPolicy(c, `${name}-dr`, { name, service, trafficPolicy });
  policy('rr', standin('rr', 'rr', 3), { loadBalancer: 'ROUND_ROBIN' });
  // LEAST_REQUEST (Istio's default) with one slow pod of three.
  const lr = standin('lr-fast', 'lr', 2);
  standin('lr-slow', 'lr', 1, { STANDIN_DELAY_MS: '300' }, false);
  policy('lr', lr, { loadBalancer: 'LEAST_REQUEST' });
  policy('hash', standin('hash', 'hash', 3), { consistentHash: { httpHeaderName: 'x-user' } });
  policy('cookie', standin('cookie', 'cookie', 3), { consistentHash: { httpCookie: { name: 'sid', path: '/', ttl: '1h' } } });
  // Istio's circuit-breaking task: one connection, one pending request.
  policy('cb', standin('cb', 'cb', 1, { STANDIN_DELAY_MS: '500' }), { connectionPool: { tcp: { maxConnections: 1 }, http: { http1MaxPendingRequests: 1 } } });
  const od = standin('od-good', 'od', 2);
  standin('od-bad', 'od', 1, { STANDIN_STATUS: '500' }, false);
  policy('od', od, { loadBalancer: 'ROUND_ROBIN', outlierDetection: { consecutive5xxErrors: 3, interval: '1s', baseEjectionTime: '4s', maxEjectionPercent: 100 } });
  new MeshWorkload(c, 'client', { app: 'client', image: 'docker.io/library/busybox:1.36', command: ['sh', '-c', 'sleep 3600'], service: false, namespace });
  return Testing.synth(c) as K8sObject[];
}

/** What the client's proxy answered: counts by pod (from the stand-in's body) or by status, the first Set-Cookie, and which pod each hashed user got (`pairs`). */
interface Load { byPod: Record<string, number>; codes: Record<string, number>; setCookie?: string; pairs: Record<string, number> }

/**
 * `n` requests to `url` through the client's proxy, `concurrency` at a time, sent by Node
 * in the proxy's container to 127.0.0.1:15001 as the app's HTTP_PROXY would send them.
 */
async function load(client: Pod, url: string, opts: { n: number; concurrency?: number; headers?: Record<string, string>; perRequestHeaders?: string; durationMs?: number } = { n: 1 }): Promise<Load> {
  const script = `
const http = require('http');
const [url, n, conc, headers, per, durationMs] = JSON.parse(process.argv[1]);
const end = durationMs ? Date.now() + durationMs : 0;
const out = { byPod: {}, codes: {}, pairs: {} };
let next = 0;
const one = (i) => new Promise((resolve) => {
  const h = { ...headers, ...(per ? { [per]: 'user-' + (i % 10) } : {}) };
  const req = http.request({ host: '127.0.0.1', port: 15001, path: url, headers: { host: new URL(url).host, ...h }, agent: false }, (res) => {
    let b = '';
    res.on('data', (c) => (b += c));
    res.on('end', () => {
      out.codes[res.statusCode] = (out.codes[res.statusCode] || 0) + 1;
      if (res.headers['set-cookie'] && !out.setCookie) out.setCookie = String(res.headers['set-cookie']);
      const m = /\\(pod ([^)]+)\\)/.exec(b);
      const key = res.statusCode === 200 && m ? m[1] : 'status ' + res.statusCode;
      out.byPod[key] = (out.byPod[key] || 0) + 1;
      if (per) out.pairs[h[per] + ' ' + key] = 1;
      resolve();
    });
  });
  req.on('error', () => { out.codes.error = (out.codes.error || 0) + 1; resolve(); });
  req.setTimeout(10000, () => req.destroy());
  req.end();
});
const worker = async () => { while (end ? Date.now() < end : next < n) { const i = next++; await one(i); } };
Promise.all(Array.from({ length: conc }, worker)).then(() => console.log(JSON.stringify(out)));
`;
  const args = JSON.stringify([url, opts.n, opts.concurrency ?? 1, opts.headers ?? {}, opts.perRequestHeaders ?? '', opts.durationMs ?? 0]);
  const r = await execIn(client, 'mesh-proxy', ['node', '-e', script, args], 170_000);
  if (r.code !== 0) throw new Error(`load ${url}: exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

const svc = (name: string) => `http://${name}.${NS}.svc.cluster.local:8080/hello`;

describe('DestinationRule policy through the node sidecar, in pods', () => {
  const dir = mkdtempSync(join(tmpdir(), 'e2e-policy-'));
  const file = join(dir, 'policy.k8s.yaml');
  const objects = chart();
  const deployments = objects.filter((o) => o.kind === 'Deployment');
  let client: Pod;
  const podsOfApp: Record<string, string[]> = {};

  beforeAll(async () => {
    const unreachable = await clusterReachable();
    if (unreachable) throw new Error(unreachable);
    writeFileSync(file, objects.map((o) => stringify(o)).join('---\n'));
    await kubectlOk(['apply', '-f', file], { timeoutMs: 60_000 });
    await waitAvailable(deployments, 180_000);
    const pods = await podsOf(deployments);
    client = pods.find((p) => p.deployment === 'client')!;
    for (const p of pods) (podsOfApp[p.deployment] ??= []).push(p.name);
    // The proxy has listed the EndpointSlices once /clusters shows the first Service balanced.
    const t0 = Date.now();
    for (;;) {
      const r = await execIn(client, 'mesh-proxy', ['node', '-e', "require('http').get('http://127.0.0.1:15000/clusters', (r) => { let b = ''; r.on('data', (c) => b += c); r.on('end', () => console.log(b)); })"]);
      const warm = await load(client, svc('rr'), { n: 1 });
      if (warm.codes['200'] && r.code === 0 && r.stdout.includes('"balanced": true')) break;
      if (Date.now() - t0 > 60_000) throw new Error(`the client's proxy never balanced over endpoints: ${r.stdout}`);
      await new Promise((res) => setTimeout(res, 1000));
    }
  }, 300_000);
  afterAll(() => removeManifest(file, objects), 300_000);

  test('the proxy\'s account may list and watch EndpointSlices here, and nothing else: no Secrets, no other namespace\'s slices', async () => {
    const sa = `system:serviceaccount:${NS}:mesh-proxy`;
    const can = async (...args: string[]) => (await kubectl(['auth', 'can-i', ...args, '--as', sa])).stdout.trim();
    expect(await can('list', 'endpointslices.discovery.k8s.io', '-n', NS)).toBe('yes');
    expect(await can('watch', 'endpointslices.discovery.k8s.io', '-n', NS)).toBe('yes');
    expect(await can('get', 'endpointslices.discovery.k8s.io', '-n', NS)).toBe('no');
    expect(await can('list', 'secrets', '-n', NS)).toBe('no');
    expect(await can('get', 'secrets', '-n', NS)).toBe('no');
    expect(await can('list', 'endpointslices.discovery.k8s.io', '-n', 'kube-system')).toBe('no');
    expect(await can('list', 'pods', '-n', NS)).toBe('no');
    // The app container has no token at all.
    const app = await execIn(client, 'client', ['sh', '-c', 'ls /var/run/secrets/kubernetes.io/serviceaccount /var/run/secrets/mesh-proxy 2>&1; true']);
    expect(app.stdout).toMatch(/No such file or directory[\s\S]*No such file or directory/);
  });

  test('ROUND_ROBIN over three pods: 30 requests spread 10/10/10', async () => {
    const r = await load(client, svc('rr'), { n: 30 });
    expect(Object.keys(r.byPod).sort()).toEqual([...podsOfApp.rr].sort());
    for (const n of Object.values(r.byPod)) expect(Math.abs(n - 10)).toBeLessThanOrEqual(1);
  });

  test('LEAST_REQUEST with one slow pod (300 ms) of three: the slow pod gets clearly fewer', async () => {
    const r = await load(client, svc('lr'), { n: 90, concurrency: 6 });
    const slow = podsOfApp['lr-slow'][0];
    process.stdout.write(`e2e: LEAST_REQUEST spread ${JSON.stringify(r.byPod)}\n`);
    expect(r.codes['200']).toBe(90);
    // Round robin would give it 30.
    expect(r.byPod[slow] ?? 0).toBeLessThan(20);
  });

  test('consistentHash by header: 10 users, 100 requests, each user always on one pod', async () => {
    const r = await load(client, svc('hash'), { n: 100, concurrency: 4, perRequestHeaders: 'x-user' });
    expect(r.codes['200']).toBe(100);
    const podOf = new Map<string, Set<string>>();
    for (const k of Object.keys(r.pairs)) { const [user, pod] = k.split(' '); (podOf.get(user) ?? podOf.set(user, new Set()).get(user)!).add(pod); }
    expect(podOf.size).toBe(10);
    for (const pods of podOf.values()) expect(pods.size).toBe(1);
    expect(new Set([...podOf.values()].map((s) => [...s][0])).size).toBeGreaterThan(1);
  });

  test('consistentHash by cookie: the first answer sets it, then the session stays on one pod', async () => {
    const first = await load(client, svc('cookie'), { n: 1 });
    expect(first.setCookie).toMatch(/^sid="[0-9a-f]{16}"; Max-Age=3600; Path=\/; HttpOnly$/);
    const cookie = first.setCookie!.split(';')[0];
    const r = await load(client, svc('cookie'), { n: 20, headers: { cookie } });
    expect(Object.keys(r.byPod)).toEqual(Object.keys(first.byPod));
  });

  test('Istio\'s circuit-breaking task: 3 concurrent clients against maxConnections 1 / http1MaxPendingRequests 1 get some 503 UO; one at a time, none', async () => {
    const before = sample(await proxyStats(client), 'istio_requests_total', ['response_flags="UO"', `destination_service="cb.${NS}.svc.cluster.local"`]);
    const r = await load(client, svc('cb'), { n: 18, concurrency: 3 });
    process.stdout.write(`e2e: circuit breaking, 3 clients: ${JSON.stringify(r.codes)}\n`);
    expect(r.codes['503']).toBeGreaterThan(0);
    expect(r.codes['200']).toBeGreaterThan(0);
    const after = sample(await proxyStats(client), 'istio_requests_total', ['response_flags="UO"', `destination_service="cb.${NS}.svc.cluster.local"`]);
    expect(after - before).toBe(r.codes['503']);
    const serial = await load(client, svc('cb'), { n: 4, concurrency: 1 });
    expect(serial.codes).toEqual({ 200: 4 });
  });

  test('outlier detection: the pod answering 500 is ejected, then >= 99% success while it stays out, and it is back after baseEjectionTime', async () => {
    // Round robin meets the bad pod every third request: 3 of its 500s eject it.
    const warm = await load(client, svc('od'), { n: 12 });
    expect(warm.byPod[`status 500`]).toBe(3);
    const out = await load(client, svc('od'), { n: 100, concurrency: 2 });
    expect(out.codes['200'] ?? 0).toBeGreaterThanOrEqual(99);
    const stats = await proxyStats(client);
    expect(sample(stats, 'mesh_proxy_outlier_detection_total', ['event="ejected"', `cluster="od.${NS}.svc.cluster.local:8080"`])).toBe(1);
    // 4 s, at the next 1 s tick: back, and failing again.
    await new Promise((res) => setTimeout(res, 5500));
    const back = sample(await proxyStats(client), 'mesh_proxy_outlier_detection_total', ['event="returned"', `cluster="od.${NS}.svc.cluster.local:8080"`]);
    expect(back).toBe(1);
    const again = await load(client, svc('od'), { n: 6 });
    expect(again.byPod['status 500'] ?? 0).toBeGreaterThan(0);
  });

  test('a rolling update under load: 0 failed requests', async () => {
    // Load in 10 s rounds for as long as the rollout takes (three pods replaced one by one,
    // each old one through its 5 s preStop wait), and one round after it.
    const codes: Record<string, number> = {};
    const pods = new Set<string>();
    const round = async () => {
      const r = await load(client, svc('rr'), { n: 0, concurrency: 2, durationMs: 10_000 });
      for (const [k, v] of Object.entries(r.codes)) codes[k] = (codes[k] ?? 0) + v;
      for (const p of Object.keys(r.byPod)) pods.add(p);
    };
    const t0 = Date.now();
    let done = false;
    const rollout = (async () => {
      await new Promise((res) => setTimeout(res, 1000));
      await kubectlOk(['rollout', 'restart', 'deployment/rr', '-n', NS]);
      await kubectlOk(['rollout', 'status', 'deployment/rr', '-n', NS, '--timeout=150s'], { timeoutMs: 160_000 });
      done = true;
    })();
    while (!done) await round();
    await rollout;
    const rolledOutAfter = Date.now() - t0;
    await round();
    process.stdout.write(`e2e: rolling update under load: ${JSON.stringify(codes)} over ${pods.size} pods, rollout done ${rolledOutAfter} ms in\n`);
    expect(Object.keys(codes)).toEqual(['200']);
    // The three old pods and the three new ones all answered.
    expect(pods.size).toBe(6);
  }, 300_000);
});
