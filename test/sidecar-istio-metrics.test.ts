// Istio's standard metrics from the node sidecar, on loopback: the exposition against
// Istio's documented names, types, labels and buckets; the label values a request gets
// through a sidecar and through a gateway; Envoy's response flags; bounded cardinality.
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { RouteTable } from '../model';
import { parseExposition, Sample } from '../observe';
import { Backend, backend, get, resolveTo, routeTableOf, RunningProxy, sleep, startProxy, viaProxy } from './support/sidecar';
import { synthVariant, variant } from './support/synth';

jest.setTimeout(30_000);

// From Istio's "Istio Standard Metrics" reference (istio.io/latest/docs/reference/config/metrics)
// and the labels its proxies write today (the canonical service/revision pair Kiali reads).
const ISTIO_DOC_LABELS = [
  'reporter', 'source_workload', 'source_workload_namespace', 'source_principal', 'source_app', 'source_version',
  'source_canonical_service', 'source_canonical_revision', 'source_cluster',
  'destination_workload', 'destination_workload_namespace', 'destination_principal', 'destination_app', 'destination_version',
  'destination_service', 'destination_service_name', 'destination_service_namespace',
  'destination_canonical_service', 'destination_canonical_revision', 'destination_cluster',
  'request_protocol', 'response_code', 'grpc_response_status', 'response_flags', 'connection_security_policy',
].sort();
// Envoy's default histogram buckets, which Istio keeps for istio_* histograms.
const ENVOY_BUCKETS = ['0.5', '1', '5', '10', '25', '50', '100', '250', '500', '1000', '2500', '5000', '10000', '30000', '60000', '300000', '600000', '1800000', '3600000', '+Inf'];

/** The TYPE lines (observe's parser reads samples only) and the samples. */
function parse(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map([...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]] as [string, string]));
  return { types, samples: parseExposition(text) };
}

async function scrape(proxy: RunningProxy): Promise<{ types: Map<string, string>; samples: Sample[] }> {
  const r = await get(`http://127.0.0.1:${proxy.stats}/stats/prometheus`);
  expect(r.status).toBe(200);
  return parse(r.body);
}

const requests = (samples: Sample[], want: Record<string, string> = {}) =>
  samples.filter((s) => s.name === 'istio_requests_total' && Object.entries(want).every(([k, v]) => s.labels[k] === v));
const total = (samples: Sample[], want: Record<string, string> = {}) => requests(samples, want).reduce((a, s) => a + s.value, 0);

const SOURCE_ENV = { MESH_WORKLOAD_NAME: 'istioclient-deploy', MESH_APP: 'istioclient', MESH_VERSION: 'v1', POD_NAMESPACE: 'istioclient' };

describe('istio_* from a sidecar: the springboot canary (70/30)', () => {
  let v1: Backend; let v2: Backend; let proxy: RunningProxy;
  const table = routeTableOf(synthVariant(variant('springboot-canary-node-sidecar')), 'istioclient');
  beforeAll(async () => {
    v1 = await backend('v1');
    v2 = await backend('v2', (req, res, body) => { res.writeHead(200, { 'content-type': 'text/plain' }).end(`v2 got ${body.length}`); });
    proxy = await startProxy(table, ['--namespace', 'istioclient', ...resolveTo({
      'springbootapp-svc-v1.springistiodemo.svc.cluster.local:8080': v1.port,
      'springbootapp-svc-v2.springistiodemo.svc.cluster.local:8080': v2.port,
    })], SOURCE_ENV);
    for (let i = 0; i < 20; i++) await viaProxy(proxy.port, 'http://springbootapp-svc.springistiodemo:8080/hello');
    await viaProxy(proxy.port, 'http://springbootapp-svc.springistiodemo:8080/hello', { method: 'POST', body: 'x'.repeat(5000), headers: { 'content-type': 'text/plain' } });
  });
  afterAll(async () => { await proxy.stop(); await v1.close(); await v2.close(); });

  test('names, types, label set and buckets are Istio\'s', async () => {
    const { types, samples } = await scrape(proxy);
    expect(types.get('istio_requests_total')).toBe('counter');
    for (const h of ['istio_request_duration_milliseconds', 'istio_request_bytes', 'istio_response_bytes']) {
      expect(types.get(h)).toBe('histogram');
      const buckets = samples.filter((s) => s.name === `${h}_bucket`);
      const one = buckets.filter((s) => s.labels.response_code === '200' && s.labels.destination_version === 'v1');
      expect(one.map((s) => s.labels.le)).toEqual(ENVOY_BUCKETS);
      // Cumulative, ending at the count.
      for (let i = 1; i < one.length; i++) expect(one[i].value).toBeGreaterThanOrEqual(one[i - 1].value);
      const count = samples.find((s) => s.name === `${h}_count` && s.labels.destination_version === 'v1' && s.labels.response_code === '200')!;
      expect(one[one.length - 1].value).toBe(count.value);
    }
    for (const s of requests(samples)) expect(Object.keys(s.labels).sort()).toEqual(ISTIO_DOC_LABELS);
    // The proxy's own series stay beside them.
    expect(types.get('mesh_proxy_requests_total')).toBe('counter');
  });

  test('label values: reporter=source, the client as source, the subset\'s workload as destination', async () => {
    const { samples } = await scrape(proxy);
    const v1s = requests(samples, { destination_version: 'v1' });
    expect(v1s).toHaveLength(1);
    expect(v1s[0].labels).toEqual({
      reporter: 'source',
      source_workload: 'istioclient-deploy', source_workload_namespace: 'istioclient', source_app: 'istioclient', source_version: 'v1',
      source_canonical_service: 'istioclient', source_canonical_revision: 'v1', source_principal: 'unknown', source_cluster: 'Kubernetes',
      destination_workload: 'springbootapp-v1', destination_workload_namespace: 'springistiodemo', destination_app: 'springbootapp', destination_version: 'v1',
      destination_service: 'springbootapp-svc.springistiodemo.svc.cluster.local', destination_service_name: 'springbootapp-svc', destination_service_namespace: 'springistiodemo',
      destination_canonical_service: 'springbootapp', destination_canonical_revision: 'v1', destination_principal: 'unknown', destination_cluster: 'Kubernetes',
      request_protocol: 'http', response_code: '200', grpc_response_status: '', response_flags: '-', connection_security_policy: 'unknown',
    });
    // 21 requests, split 70/30 by the smooth round robin: the query Kiali runs shows it.
    expect(total(samples, { destination_service: 'springbootapp-svc.springistiodemo.svc.cluster.local' })).toBe(21);
    expect(v1s[0].value + total(samples, { destination_version: 'v2' })).toBe(21);
    expect(Math.abs(v1s[0].value - 14.7)).toBeLessThanOrEqual(1);
  });

  test('request and response sizes count headers and body; the duration is in milliseconds', async () => {
    const { samples } = await scrape(proxy);
    const sum = (name: string, version: string) => samples.filter((s) => s.name === name && s.labels.destination_version === version).reduce((a, s) => a + s.value, 0);
    const count = (name: string, version: string) => sum(name.replace(/_sum$/, '_count'), version);
    // The 5,000-byte POST went to one version: that version's mean request size is above 5000 / its count.
    const big = sum('istio_request_bytes_sum', 'v1') > 5000 ? 'v1' : 'v2';
    expect(sum('istio_request_bytes_sum', big)).toBeGreaterThan(5000);
    const small = big === 'v1' ? 'v2' : 'v1';
    // A bodiless GET: the request line and headers, tens to a few hundred bytes.
    const meanGet = sum('istio_request_bytes_sum', small) / count('istio_request_bytes_sum', small);
    expect(meanGet).toBeGreaterThan(30);
    expect(meanGet).toBeLessThan(1000);
    // The response: status line, headers and "v1"/"v2 got 0".
    const meanResp = sum('istio_response_bytes_sum', 'v1') / count('istio_response_bytes_sum', 'v1');
    expect(meanResp).toBeGreaterThan(40);
    expect(meanResp).toBeLessThan(1000);
    // Loopback requests take well under a second: milliseconds, not seconds, so le="1000" holds them all.
    const b1000 = samples.find((s) => s.name === 'istio_request_duration_milliseconds_bucket' && s.labels.destination_version === 'v1' && s.labels.le === '1000')!;
    expect(b1000.value).toBe(count('istio_request_duration_milliseconds_count', 'v1'));
    expect(sum('istio_request_duration_milliseconds_sum', 'v1')).toBeGreaterThan(0);
  });
});

describe('istio_* response flags: Envoy\'s letters for what the proxy did', () => {
  let slow: Backend; let proxy: RunningProxy;
  const svc = (name: string) => `${name}.shop.svc.cluster.local`;
  const table: RouteTable = {
    apiVersion: 'mesh.cdk8s.io/v1alpha1', kind: 'RouteTable', clusterDomain: 'cluster.local', outboundTrafficPolicy: 'REGISTRY_ONLY',
    services: [
      { host: svc('api'), ports: [80], telemetry: { service: svc('api'), workload: 'api', app: 'api', version: 'v1' } },
      { host: svc('down'), ports: [80] },
    ],
    virtualHosts: [{
      name: 'shop/api', hosts: [svc('api')], gateways: ['mesh'], routes: [
        { match: [{ uri: { kind: 'prefix', value: '/slow' } }], destinations: [{ host: svc('api'), weight: 100 }], timeoutMs: 100 },
        { match: [{ uri: { kind: 'prefix', value: '/abort' } }], destinations: [{ host: svc('api'), weight: 100 }], fault: { abort: { httpStatus: 503, percentage: 100 } } },
        { match: [{ uri: { kind: 'prefix', value: '/ok' } }], destinations: [{ host: svc('api'), weight: 100 }] },
      ],
    }, {
      name: 'shop/down', hosts: [svc('down')], gateways: ['mesh'], routes: [{ match: [], destinations: [{ host: svc('down'), weight: 100 }] }],
    }],
    gateways: [],
  } as unknown as RouteTable;
  beforeAll(async () => {
    slow = await backend('api', (req, res) => { setTimeout(() => res.end('late'), req.url?.startsWith('/slow') ? 400 : 0); });
    const closed = http.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => closed.once('listening', r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    proxy = await startProxy(table, ['--namespace', 'shop', ...resolveTo({ [`${svc('api')}:80`]: slow.port, [`${svc('down')}:80`]: deadPort })], { MESH_WORKLOAD_NAME: 'web' });
    for (const path of ['/slow', '/abort', '/ok', '/none']) await viaProxy(proxy.port, `http://api.shop/${path.slice(1)}`);
    await viaProxy(proxy.port, 'http://down.shop/');
    await viaProxy(proxy.port, 'http://example.com/');
  });
  afterAll(async () => { await proxy.stop(); await slow.close(); });

  test('UT 504, FI 503, NR 404, UF 503 (retries spent: URX), BlackHoleCluster 502', async () => {
    const { samples } = await scrape(proxy);
    const api = { destination_service: svc('api') };
    expect(total(samples, { ...api, response_code: '504', response_flags: 'UT' })).toBe(1);
    expect(total(samples, { ...api, response_code: '503', response_flags: 'FI' })).toBe(1);
    expect(total(samples, { ...api, response_code: '200', response_flags: '-' })).toBe(1);
    // No route matched: Envoy knows no cluster, so no destination.
    expect(total(samples, { destination_service: 'unknown', destination_service_name: 'unknown', response_code: '404', response_flags: 'NR' })).toBe(1);
    // Connection refused on every attempt of Istio's default retry policy.
    expect(total(samples, { destination_service: svc('down'), destination_workload: 'unknown', response_code: '503', response_flags: 'UF,URX' })).toBe(1);
    // REGISTRY_ONLY: the unknown host is not a label value; Envoy's BlackHoleCluster is.
    expect(total(samples, { destination_service_name: 'BlackHoleCluster', destination_service: 'unknown', response_code: '502' })).toBe(1);
    expect(total(samples, { source_workload: 'web', source_app: 'unknown', source_version: 'unknown', source_canonical_service: 'web', source_canonical_revision: 'latest' })).toBe(6);
  });
});

describe('istio_* label cardinality stays bounded', () => {
  let echo: Backend; let proxy: RunningProxy;
  beforeAll(async () => {
    echo = await backend('echo');
    const table: RouteTable = { apiVersion: 'mesh.cdk8s.io/v1alpha1', kind: 'RouteTable', clusterDomain: 'cluster.local', outboundTrafficPolicy: 'ALLOW_ANY', services: [], virtualHosts: [], gateways: [] } as unknown as RouteTable;
    proxy = await startProxy(table, [], {});
  });
  afterAll(async () => { await proxy.stop(); await echo.close(); });

  test('300 random paths, methods, headers and 30 random hosts make one series per response code and flag', async () => {
    const rnd = () => Math.random().toString(36).slice(2, 10);
    for (let i = 0; i < 300; i++) {
      // Pass-through to 127.0.0.1 under random names in the Host header: the proxy connects to the address asked for.
      await viaProxy(proxy.port, `http://127.0.0.1:${echo.port}/${rnd()}/${rnd()}?q=${rnd()}`, {
        method: i % 3 ? 'GET' : 'POST', body: i % 3 ? undefined : rnd(), headers: { 'user-agent': rnd(), 'x-custom': rnd() },
      });
      if (i % 50 === 0) await sleep(1);
    }
    // Random loopback addresses (all of 127/8 is loopback): nothing listens there, so 503.
    for (let i = 0; i < 30; i++) {
      const r = await viaProxy(proxy.port, `http://127.${1 + Math.floor(Math.random() * 250)}.${Math.floor(Math.random() * 250)}.${2 + Math.floor(Math.random() * 250)}:${echo.port}/`);
      expect(r.status).toBe(503);
    }
    const { samples } = await scrape(proxy);
    const series = requests(samples);
    expect(series.map((s) => [s.labels.response_code, s.labels.response_flags, s.value]).sort()).toEqual([['200', '-', 300], ['503', 'UF,URX', 30]]);
    for (const s of series) expect(s.labels).toMatchObject({ destination_service_name: 'PassthroughCluster', destination_service: 'unknown' });
    for (const s of samples.filter((x) => x.name.startsWith('istio_'))) {
      for (const v of Object.values(s.labels)) expect(v).not.toMatch(/\/|\?|[0-9a-z]{8}\./);
    }
  });
});

describe('istio_* from a gateway, and the stats port', () => {
  let page: Backend; let app: http.Server; let proxy: RunningProxy;
  const objs = synthVariant(variant('bookinfo-node-sidecar'));
  const table = routeTableOf(objs, 'bookinfo');
  beforeAll(async () => {
    page = await backend('productpage');
    app = http.createServer((_req, res) => res.end('# TYPE app_hits_total counter\napp_hits_total 7\n')).listen(0, '127.0.0.1');
    await new Promise((r) => app.once('listening', r));
    const appPort = (app.address() as AddressInfo).port;
    proxy = await startProxy(table, ['--mode', 'gateway', '--gateway', 'bookinfo/bookinfo-gateway', '--bind', '127.0.0.1', '--port-offset', '20000',
      '--merge-metrics', `http://127.0.0.1:${appPort}/metrics`, ...resolveTo({ 'productpage.bookinfo.svc.cluster.local:9080': page.port })], { MESH_WORKLOAD_NAME: 'bookinfo-gateway', POD_NAMESPACE: 'bookinfo' });
  });
  afterAll(async () => { await proxy.stop(); await page.close(); app.close(); });

  test('a request through the gateway is reported as Istio\'s gateways report it', async () => {
    const gw = table.gateways[0].servers[0];
    const r = await get(`http://127.0.0.1:${gw.listenPort + 20000}/productpage`, { host: 'bookinfo.example' });
    expect(r.status).toBe(200);
    const { samples } = await scrape(proxy);
    const s = requests(samples, { response_code: '200' });
    expect(s).toHaveLength(1);
    expect(s[0].labels).toMatchObject({
      reporter: 'source', source_workload: 'bookinfo-gateway', source_workload_namespace: 'bookinfo',
      destination_service: 'productpage.bookinfo.svc.cluster.local', destination_workload: 'productpage-v1', destination_app: 'productpage', destination_version: 'v1',
    });
  });

  test('the stats port merges the app\'s metrics and serves readiness; nothing else', async () => {
    const text = (await get(`http://127.0.0.1:${proxy.stats}/stats/prometheus`)).body;
    expect(text).toContain('app_hits_total 7');
    expect(text).toContain('# TYPE istio_requests_total counter');
    expect((await get(`http://127.0.0.1:${proxy.stats}/healthz/ready`)).status).toBe(200);
    expect((await get(`http://127.0.0.1:${proxy.stats}/config_dump`)).status).toBe(404);
    app.close();
    app.closeAllConnections();
    // The app gone: the proxy's own metrics still come, and the failure is counted.
    const after = await get(`http://127.0.0.1:${proxy.stats}/stats/prometheus`);
    expect(after.status).toBe(200);
    expect(after.body).toContain('mesh_proxy_app_metrics_scrapes_total{result="failed"} 1');
  });
});
