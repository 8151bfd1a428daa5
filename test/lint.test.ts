// Mesh lint: each check trips on a manifest made to trip it and stays quiet on its fix;
// the seeds' mistakes are found; every chart lints clean; synth refuses lint errors.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiObject, App, Testing } from 'cdk8s';
import { stringify } from 'yaml';
import { CHART_VARIANTS, createVariant } from '../charts';
import { MeshChart } from '../constructs';
import { analyze, CHECKS, K8s } from '../lint/analyze';
import { lintApp, manifestsFromFiles } from '../lint/sources';
import { lintBeforeWrite, MeshLintError } from '../apps/run';

const ns = (name: string, inject = true): K8s => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: inject ? { 'istio-injection': 'enabled' } : {} } });
const deploy = (name: string, labels: Record<string, string>, extra: Partial<K8s['spec']> = {}, namespace = 'shop', annotations: Record<string, string> = {}): K8s => ({
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace },
  spec: { selector: { matchLabels: labels }, template: { metadata: { labels, annotations }, spec: { containers: [{ name: 'app', image: 'x', ports: [{ containerPort: 8080 }] }], ...extra } } },
});
const svc = (name: string, selector: Record<string, string>, ports: object[] = [{ name: 'http', port: 80, targetPort: 8080 }], namespace = 'shop'): K8s =>
  ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace }, spec: { selector, ports } });
const vs = (name: string, spec: object, namespace = 'shop'): K8s => ({ apiVersion: 'networking.istio.io/v1beta1', kind: 'VirtualService', metadata: { name, namespace }, spec });
const dr = (name: string, spec: object, namespace = 'shop'): K8s => ({ apiVersion: 'networking.istio.io/v1beta1', kind: 'DestinationRule', metadata: { name, namespace }, spec });
const gw = (name: string, hosts: string[], namespace = 'shop', port = 80): K8s => ({
  apiVersion: 'networking.istio.io/v1beta1', kind: 'Gateway', metadata: { name, namespace },
  spec: { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: port, name: 'http', protocol: 'HTTP' }, hosts }] },
});

/** A clean little mesh: web v1/v2 behind `web`, a client that calls it, rules and a gateway. */
function base(): K8s[] {
  return [
    ns('shop'),
    deploy('web-v1', { app: 'web', version: 'v1' }), deploy('web-v2', { app: 'web', version: 'v2' }),
    deploy('client', { app: 'client' }, {}, 'shop', { 'mesh.cdk8s.io/calls': 'web' }),
    svc('web', { app: 'web' }),
    dr('web', { host: 'web', subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] }),
    vs('web', { hosts: ['web'], http: [{ match: [{ uri: { prefix: '/api' } }], timeout: '2s', route: [{ destination: { host: 'web', subset: 'v2' } }] }, { route: [{ destination: { host: 'web', subset: 'v1' }, weight: 70 }, { destination: { host: 'web', subset: 'v2' }, weight: 30 }] }] }),
    gw('shop-gateway', ['shop.example.com']),
    // Ingress traffic takes the same 70/30 split as the mesh (else MESH030).
    vs('shop-ingress', { hosts: ['shop.example.com'], gateways: ['shop-gateway'], http: [{ route: [{ destination: { host: 'web', subset: 'v1', port: { number: 80 } }, weight: 70 }, { destination: { host: 'web', subset: 'v2', port: { number: 80 } }, weight: 30 }] }] }),
  ];
}
// Argo Rollouts and Flagger objects as their docs write them, around the base's web Service.
const rollout = (): K8s => ({
  apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', metadata: { name: 'web', namespace: 'shop' },
  spec: {
    selector: { matchLabels: { app: 'web' } }, workloadRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web-v2' },
    strategy: { canary: { trafficRouting: { istio: { virtualService: { name: 'web', routes: ['primary'] }, destinationRule: { name: 'web', stableSubsetName: 'v1', canarySubsetName: 'v2' } } }, steps: [{ setWeight: 10 }, { pause: {} }] } },
  },
});
// The Gateway API plugin's quick start: stable and canary Services behind one HTTPRoute.
const gatewayRollout = (): K8s => ({
  apiVersion: 'argoproj.io/v1alpha1', kind: 'Rollout', metadata: { name: 'web', namespace: 'shop' },
  spec: {
    selector: { matchLabels: { app: 'web' } }, workloadRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web-v2' },
    strategy: { canary: { canaryService: 'web-canary', stableService: 'web-stable', trafficRouting: { plugins: { 'argoproj-labs/gatewayAPI': { httpRoutes: [{ name: 'web-route' }], namespace: 'shop' } } }, steps: [{ setWeight: 10 }] } },
  },
});
const httpRoute = (name: string): K8s => ({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata: { name, namespace: 'shop' }, spec: { parentRefs: [{ group: '', kind: 'Service', name: 'web' }], rules: [{ backendRefs: [{ name: 'web-stable', port: 80 }, { name: 'web-canary', port: 80, weight: 0 }] }] } });
const flaggerCanary = (target: string): K8s => ({
  apiVersion: 'flagger.app/v1beta1', kind: 'Canary', metadata: { name: 'web', namespace: 'shop' },
  spec: { targetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: target }, service: { port: 80 }, analysis: { interval: '1m', threshold: 5, stepWeight: 10, maxWeight: 50, metrics: [{ name: 'request-success-rate', thresholdRange: { min: 99 } }] } },
});
const analysisTemplate = (query: string): K8s => ({
  apiVersion: 'argoproj.io/v1alpha1', kind: 'AnalysisTemplate', metadata: { name: 'web', namespace: 'shop' },
  spec: { metrics: [{ name: 'success-rate', successCondition: 'result[0] >= 0.99', provider: { prometheus: { address: 'http://prometheus:9090', query } } }] },
});
// The node sidecar's route table: these manifests are for that data plane.
const routeTable = (): K8s => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'mesh-routes', namespace: 'shop', labels: { 'mesh.cdk8s.io/route-table': 'true' } }, data: { 'routes.json': '{}' } } as K8s);
const codes = (objs: K8s[]) => analyze(objs.map((obj) => ({ obj }))).map((f) => f.code);
const edit = (f: (o: K8s[]) => void) => { const o = JSON.parse(JSON.stringify(base())); f(o); return o as K8s[]; };
const find = (o: K8s[], kind: string, name: string) => o.find((x) => x.kind === kind && x.metadata.name === name)!;

test('the base mesh is clean', () => {
  expect(analyze(base().map((obj) => ({ obj })))).toEqual([]);
});

// [code, a mutation that trips it, a mutation that fixes it again (none: undoing the defect, i.e. the clean base)]
const CASES: Array<[string, (o: K8s[]) => void, ((o: K8s[]) => void)?]> = [
  ['MESH001', (o) => { find(o, 'Service', 'web').spec.selector = { app: 'webb' }; }, (o) => { find(o, 'Service', 'web').spec.selector = { app: 'web' }; }],
  ['MESH002', (o) => { find(o, 'Deployment', 'client').spec.selector.matchLabels = { app: 'other' }; }],
  ['MESH003', (o) => { find(o, 'VirtualService', 'shop-ingress').spec.http[0].route[0].destination.host = 'demopage'; }],
  ['MESH004', (o) => { find(o, 'VirtualService', 'web').spec.http[0].route[0].destination.subset = 'v3'; }, (o) => { find(o, 'DestinationRule', 'web').spec.subsets.push({ name: 'v3', labels: { version: 'v2' } }); }],
  ['MESH005', (o) => { find(o, 'DestinationRule', 'web').spec.subsets.push({ name: 'v3', labels: { version: 'v3' } }); }, (o) => { o.push(deploy('web-v3', { app: 'web', version: 'v3' })); }],
  ['MESH006', (o) => { find(o, 'Service', 'web').spec.ports.push({ name: 'http-admin', port: 9090, targetPort: 9090 }); find(o, 'VirtualService', 'shop-ingress').spec.http[0].route[0].destination = { host: 'web' }; }, (o) => {
    for (const v of o.filter((x) => x.kind === 'VirtualService')) for (const r of v.spec.http) for (const d of r.route) d.destination.port = { number: 80 };
  }],
  ['MESH007', (o) => { o.push(vs('web-again', { hosts: ['web.shop.svc.cluster.local'], http: [{ route: [{ destination: { host: 'web' } }] }] })); }],
  ['MESH008', (o) => { find(o, 'VirtualService', 'web').spec.http.reverse(); }],
  ['MESH008', (o) => { find(o, 'VirtualService', 'web').spec.http.splice(1, 0, { match: [{ uri: { prefix: '/api' } }], route: [{ destination: { host: 'web', subset: 'v1' } }] }); }, (o) => { find(o, 'VirtualService', 'web').spec.http[1].match[0].uri = { prefix: '/admin' }; }],
  ['MESH009', (o) => { find(o, 'VirtualService', 'shop-ingress').spec.hosts = ['admin.example.com']; }, (o) => { find(o, 'Gateway', 'shop-gateway').spec.servers[0].hosts.push('admin.example.com'); }],
  ['MESH010', (o) => { o.push(gw('shop-gateway-2', ['shop.example.com'])); }, (o) => { find(o, 'Gateway', 'shop-gateway-2').spec.servers[0].hosts = ['other.example.com']; }],
  ['MESH011', (o) => { o.push(ns('pay'), deploy('pay', { app: 'pay' }, {}, 'pay'), svc('pay', { app: 'pay' }, undefined, 'pay')); find(o, 'VirtualService', 'shop-ingress').spec.http[0].route[0].destination.host = 'pay'; }, (o) => { find(o, 'VirtualService', 'shop-ingress').spec.http[0].route[0].destination.host = 'pay.pay.svc.cluster.local'; }],
  ['MESH011', (o) => { o.push(ns('pay'), deploy('pay', { app: 'pay' }, {}, 'pay'), svc('pay', { app: 'pay' }, undefined, 'pay'), vs('pay', { hosts: ['pay'], http: [{ timeout: '1s', route: [{ destination: { host: 'pay.pay.svc.cluster.local' } }] }] })); }, (o) => { find(o, 'VirtualService', 'pay').metadata.namespace = 'pay'; }],
  ['MESH012', (o) => { find(o, 'Service', 'web').spec.ports[0].name = 'web'; }, (o) => { find(o, 'Service', 'web').spec.ports[0].appProtocol = 'http'; }],
  ['MESH013', (o) => { o.push(svc('web-alt', { app: 'web' }, [{ name: 'http', port: 81, targetPort: 8080 }])); }],
  ['MESH014', (o) => { find(o, 'Deployment', 'web-v1').spec.template.spec.securityContext = { runAsUser: 1337 }; }],
  ['MESH015', (o) => { find(o, 'Deployment', 'web-v1').spec.template.spec.containers[0].ports.push({ containerPort: 15020 }); }],
  ['MESH016', (o) => { find(o, 'Deployment', 'web-v1').spec.template.metadata.annotations = { 'sidecar.istio.io/status': '{}' }; }, (o) => { find(o, 'Deployment', 'web-v1').spec.template.metadata.labels['sidecar.istio.io/inject'] = 'false'; }],
  ['MESH017', (o) => { find(o, 'Deployment', 'client').spec.template.metadata.labels['sidecar.istio.io/inject'] = 'false'; }, (o) => { find(o, 'Deployment', 'client').spec.template.metadata.labels['sidecar.istio.io/inject'] = 'true'; }],
  ['MESH018', (o) => { find(o, 'Namespace', 'shop').metadata.labels = {}; find(o, 'Deployment', 'client').metadata.namespace = 'elsewhere'; find(o, 'Deployment', 'client').spec.template.metadata.annotations = {}; }, (o) => { find(o, 'Namespace', 'shop').metadata.labels = { 'istio-injection': 'enabled' }; }],
  ['MESH019', (o) => { find(o, 'VirtualService', 'web').spec.http[1].route.forEach((r: { weight: number }) => { r.weight = 0; }); }, (o) => { find(o, 'VirtualService', 'web').spec.http[1].route[0].weight = 100; }],
  ['MESH020', (o) => { find(o, 'VirtualService', 'web').spec.http[0].fault = { abort: { httpStatus: 500, percentage: { value: 120 } } }; }, (o) => { find(o, 'VirtualService', 'web').spec.http[0].fault.abort.percentage.value = 50; }],
  ['MESH021', (o) => { find(o, 'VirtualService', 'web').spec.http[0].timeout = 'banana'; }, (o) => { find(o, 'VirtualService', 'web').spec.http[0].timeout = '0.002s'; }],
  ['MESH022', (o) => { find(o, 'VirtualService', 'web').spec.http[0].match[0].uri = { regex: '/(?=api)' }; }, (o) => { find(o, 'VirtualService', 'web').spec.http[0].match[0].uri = { regex: '/api/[0-9]+' }; }],
  ['MESH023', (o) => { find(o, 'VirtualService', 'shop-ingress').spec.gateways = ['istio-system/main-gateway']; }],
  // Same group, kind, namespace and name; a different API version is the same object.
  ['MESH025', (o) => { find(o, 'DestinationRule', 'web').spec.subsets[1].labels = { version: 'v9' }; }, (o) => { find(o, 'Deployment', 'web-v2').spec.template.metadata.labels.version = 'v9'; find(o, 'Deployment', 'web-v2').spec.selector.matchLabels.version = 'v9'; }],
  ['MESH026', (o) => { o.push(dr('ghost', { host: 'ghost', subsets: [] })); }, (o) => { find(o, 'DestinationRule', 'ghost').spec.host = 'web'; }],
  ['MESH027', (o) => { find(o, 'VirtualService', 'web').spec.http[0].match.push({ name: 'again', uri: { prefix: '/api' } }); }],
  ['MESH027', (o) => { find(o, 'VirtualService', 'web').spec.http[0].match.push({ uri: { prefix: '/api/v2' } }); }, (o) => { find(o, 'VirtualService', 'web').spec.http[0].match.reverse(); }],
  ['MESH028', (o) => { find(o, 'DestinationRule', 'web').spec.trafficPolicy = { tls: { mode: 'SIMPLE' } }; }, (o) => { find(o, 'DestinationRule', 'web').spec.trafficPolicy.tls.caCertificates = '/etc/certs/ca.pem'; }],
  ['MESH028', (o) => { find(o, 'DestinationRule', 'web').spec.trafficPolicy = { portLevelSettings: [{ port: { number: 80 }, tls: { mode: 'MUTUAL', clientCertificate: '/c.pem', privateKey: '/k.pem' } }] }; }, (o) => { find(o, 'DestinationRule', 'web').spec.trafficPolicy.portLevelSettings[0].tls.mode = 'ISTIO_MUTUAL'; }],
  ['MESH029', (o) => { o.push(deploy('ingress', { istio: 'ingressgateway' }), svc('ingress', { istio: 'ingressgateway' }, [{ name: 'http', port: 8080, targetPort: 8080 }])); }, (o) => { find(o, 'Service', 'ingress').spec.ports[0].port = 80; }],
  ['MESH030', (o) => { find(o, 'VirtualService', 'shop-ingress').spec.http[0].route = [{ destination: { host: 'web', port: { number: 80 } } }]; }, (o) => { find(o, 'VirtualService', 'shop-ingress').spec.http[0].route[0].destination.subset = 'v2'; }],
  ['MESH031', (o) => { o.push(svc('web-grpc', { app: 'web' }, [{ name: 'grpc', port: 80, targetPort: 8080 }])); }, (o) => { find(o, 'Service', 'web-grpc').spec.ports[0].name = 'http-alt'; }],
  ['MESH032', (o) => { for (const [name, host] of [['a', 'a.example.com'], ['b', 'b.example.com']]) o.push({ ...gw(`tls-${name}`, [host], 'shop', 443), spec: { selector: { istio: 'ingressgateway' }, servers: [{ port: { number: 443, name: 'https', protocol: 'HTTPS' }, hosts: [host], tls: { mode: 'SIMPLE', credentialName: 'wildcard-cert' } }] } }); }, (o) => { find(o, 'Gateway', 'tls-b').spec.servers[0].tls.credentialName = 'b-cert'; }],
  ['MESH024', (o) => { o.push({ ...vs('web', { hosts: ['other'], http: [] }), apiVersion: 'networking.istio.io/v1' }); }, (o) => { o[o.length - 1].metadata.namespace = 'elsewhere'; }],
  ['MESH033', (o) => { find(o, 'VirtualService', 'web').spec.http[0].headers = { request: { remove: ['Host'] } }; }, (o) => { find(o, 'VirtualService', 'web').spec.http[0].headers = { request: { set: { Host: 'web.internal' } } }; }],
  ['MESH033', (o) => { find(o, 'VirtualService', 'web').spec.http[0].rewrite = { authority: 'a' }; find(o, 'VirtualService', 'web').spec.http[0].headers = { request: { add: { host: 'b' } } }; }, (o) => { delete find(o, 'VirtualService', 'web').spec.http[0].headers; }],
  ['MESH033', (o) => { find(o, 'VirtualService', 'web').spec.http[0].headers = { response: { set: { host: 'x' } } }; }, (o) => { find(o, 'VirtualService', 'web').spec.http[0].headers = { response: { set: { 'x-host': 'x' } } }; }],
  ['MESH036', (o) => { o.push(rollout()); }, (o) => { find(o, 'VirtualService', 'web').spec.http[1].name = 'primary'; }],
  ['MESH036', (o) => { o.push(rollout()); find(o, 'VirtualService', 'web').spec.http[1].name = 'primary'; find(o, 'Rollout', 'web').spec.strategy.canary.trafficRouting.istio.virtualService.name = 'webs'; }, (o) => { find(o, 'Rollout', 'web').spec.strategy.canary.trafficRouting.istio.virtualService.name = 'web'; }],
  ['MESH037', (o) => { o.push(rollout()); find(o, 'VirtualService', 'web').spec.http[1].name = 'primary'; find(o, 'Rollout', 'web').spec.strategy.canary.trafficRouting.istio.destinationRule.canarySubsetName = 'canary'; }, (o) => { find(o, 'DestinationRule', 'web').spec.subsets.push({ name: 'canary', labels: { app: 'web' } }); }],
  ['MESH036', (o) => { o.push(gatewayRollout(), httpRoute('web-route')); find(o, 'Rollout', 'web').spec.strategy.canary.trafficRouting.plugins['argoproj-labs/gatewayAPI'].httpRoutes[0].name = 'web-rout'; }, (o) => {
    find(o, 'Rollout', 'web').spec.strategy.canary.trafficRouting.plugins['argoproj-labs/gatewayAPI'].httpRoutes[0].name = 'web-route';
  }],
  ['MESH037', (o) => { o.push(gatewayRollout(), httpRoute('web-route')); }, (o) => { o.push(svc('web-stable', { app: 'web' }), svc('web-canary', { app: 'web' })); }],
  ['MESH038', (o) => { o.push(flaggerCanary('web')); }, (o) => { find(o, 'Canary', 'web').spec.targetRef.name = 'web-v1'; }],
  ['MESH038', (o) => { o.push(rollout()); find(o, 'VirtualService', 'web').spec.http[1].name = 'primary'; find(o, 'Rollout', 'web').spec.workloadRef.name = 'web-v9'; }, (o) => { find(o, 'Rollout', 'web').spec.workloadRef.name = 'web-v2'; }],
  ['MESH039', (o) => { o.push(analysisTemplate('sum(irate(istio_request_total{reporter="source"}[1m]))')); }, (o) => { find(o, 'AnalysisTemplate', 'web').spec.metrics[0].provider.prometheus.query = 'sum(irate(istio_requests_total{reporter="source",destination_service="{{args.service}}"}[1m]))'; }],
  ['MESH039', (o) => { o.push(routeTable(), analysisTemplate('histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="destination"}[1m])) by (le))')); }, (o) => {
    find(o, 'AnalysisTemplate', 'web').spec.metrics[0].provider.prometheus.query = 'histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="source"}[1m])) by (le))';
  }],
  ['MESH039', (o) => { o.push(routeTable(), flaggerCanary('web-v1')); }, (o) => { find(o, 'Canary', 'web').spec.analysis.metrics = [{ name: 'success', templateRef: { name: 'success' } }]; }],
  ['MESH035', (o) => { o.push({ apiVersion: 'networking.istio.io/v1beta1', kind: 'ServiceEntry', metadata: { name: 'pg', namespace: 'shop' }, spec: { hosts: ['pg.example.com'], ports: [{ number: 5432, name: 'pg', protocol: 'TCP' }], resolution: 'DNS' } }); }, (o) => { find(o, 'ServiceEntry', 'pg').spec.addresses = ['10.9.8.7']; }],
];

test('MESH012 leaves UDP ports alone (Istio does not proxy them)', () => {
  const o = base();
  o.push(svc('dns', { app: 'web' }, [{ name: 'dns', port: 53, targetPort: 53, protocol: 'UDP' }]));
  expect(codes(o)).not.toContain('MESH012');
});

test('MESH010: conflicting gateways are reported once per pair, naming both', () => {
  const o = edit((x) => { x.push(gw('shop-gateway-2', ['shop.example.com']), gw('shop-gateway-3', ['shop.example.com'])); });
  const found = analyze(o.map((obj) => ({ obj }))).filter((f) => f.code === 'MESH010').map((f) => `${f.object.name}: ${f.message.split(' both')[0]}`);
  expect(found).toEqual([
    'shop-gateway-2: gateways shop-gateway and shop-gateway-2',
    'shop-gateway-3: gateways shop-gateway and shop-gateway-3',
    'shop-gateway-3: gateways shop-gateway-2 and shop-gateway-3',
  ]);
});

// MESH034 (what a chart let its data plane drop) is known from a chart, not from manifests: test/capabilities.test.ts.
const CHART_ONLY = ['MESH034'];
test('at least 20 checks, each with a test', () => {
  expect(CHECKS.length).toBeGreaterThanOrEqual(20);
  expect([...new Set(CASES.map(([c]) => c))].sort()).toEqual(CHECKS.map((c) => c.code).filter((c) => !CHART_ONLY.includes(c)).sort());
});

describe.each(CASES)('%s', (code, trip, fix) => {
  test('trips on its defect, on the defective object', () => {
    const broken = edit(trip);
    const found = analyze(broken.map((obj) => ({ obj, path: `${obj.kind}/${obj.metadata.name}` }))).filter((f) => f.code === code);
    expect(found.length).toBeGreaterThan(0);
    for (const f of found) {
      expect(f.severity).toBe(CHECKS.find((c) => c.code === code)!.severity);
      expect(f.message.length).toBeGreaterThan(30);
      expect(f.path).toBe(`${f.object.kind}/${f.object.name}`);
    }
  });
  test('is quiet when the manifest is right', () => {
    const fixed = fix ? edit((o) => { trip(o); fix(o); }) : base();
    expect(codes(fixed)).not.toContain(code);
  });
});

describe('the seeds\' mistakes, as YAML files through the CLI', () => {
  const dir = mkdtempSync(join(tmpdir(), 'lint-seeds-'));
  const write = (name: string, objs: K8s[]) => { const f = join(dir, name); writeFileSync(f, objs.map((o) => stringify(o)).join('---\n')); return f; };
  // The Service whose selector matched no pod (a typo in the pod labels).
  const selector = write('selector.yaml', [ns('default'), deploy('nginx', { app: 'demo' }, {}, 'default'), svc('demo-svc', { app: 'nginx' }, [{ name: 'http-web-svc', port: 80, targetPort: 'http-web-svc' }], 'default')]);
  // The route to a host that did not exist (demopage).
  const host = write('host.yaml', [ns('default'), deploy('nginx', { app: 'demo' }, {}, 'default'), svc('demo-svc', { app: 'demo' }, undefined, 'default'), gw('demo-gateway', ['*'], 'default'),
    vs('demoinfo', { hosts: ['*'], gateways: ['demo-gateway'], http: [{ match: [{ uri: { exact: '/' } }], route: [{ destination: { host: 'demopage', port: { number: 80 } } }] }] }, 'default')]);
  // istioctl kube-inject output applied in a namespace that injects by label: two proxies.
  const injected = deploy('springbootapp-v1', { app: 'springbootapp', version: 'v1' }, { initContainers: [{ name: 'istio-init', image: 'proxyv2' }] }, 'springistiodemo', { 'sidecar.istio.io/status': '{"containers":["istio-proxy"]}' });
  const double = write('double.yaml', [ns('springistiodemo'), injected, svc('springbootapp-svc', { app: 'springbootapp' }, undefined, 'springistiodemo')]);
  // The weighted split whose client was outside the mesh: the rules silently did nothing.
  const outside = write('outside.yaml', [ns('default', false), deploy('httpd', { app: 'httpd', tier: 'web' }, {}, 'default'), deploy('tomcat', { app: 'tomcat', tier: 'web' }, {}, 'default'),
    deploy('client', { app: 'client' }, {}, 'default', { 'mesh.cdk8s.io/calls': 'web-svc' }),
    svc('web-svc', { tier: 'web' }, undefined, 'default'), svc('httpd-svc', { app: 'httpd' }, undefined, 'default'), svc('tomcat-svc', { app: 'tomcat' }, undefined, 'default'),
    vs('web-svc-vs', { hosts: ['web-svc'], http: [{ route: [{ destination: { host: 'tomcat-svc' }, weight: 20 }, { destination: { host: 'httpd-svc' }, weight: 80 }] }] }, 'default')]);
  const cli = (args: string[]) => {
    try {
      return { status: 0, out: execFileSync(process.execPath, [join(__dirname, '..', 'bin', 'cdk8s-mesh.js'), 'lint', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
    } catch (e) {
      const err = e as { status: number; stdout: string };
      return { status: err.status, out: err.stdout };
    }
  };

  test.each<[string, string, string, string]>([
    ['selector', selector, 'MESH001', 'Service default/demo-svc'],
    ['host', host, 'MESH003', 'VirtualService default/demoinfo'],
    ['double', double, 'MESH016', 'Deployment springistiodemo/springbootapp-v1'],
    ['outside', outside, 'MESH017', 'Deployment default/client'],
  ])('%s: found on its object', (_name, file, code, object) => {
    const f = analyze(manifestsFromFiles([file])).filter((x) => x.code === code);
    expect(f.map((x) => `${x.object.kind} ${x.object.namespace}/${x.object.name}`)).toContain(object);
    expect(f[0].path).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}#\\d+$`));
  });

  test('the CLI: JSON findings, exit 1 on errors; text; exit 0 on a clean manifest', () => {
    const r = cli(['--format', 'json', host, outside]);
    expect(r.status).toBe(1);
    const findings = JSON.parse(r.out);
    expect(findings).toContainEqual({
      code: 'MESH003', severity: 'error', message: expect.stringMatching(/demopage/),
      object: { kind: 'VirtualService', name: 'demoinfo', namespace: 'default' }, path: `${host}#5`,
    });
    expect(findings.map((f: { code: string }) => f.code)).toEqual(expect.arrayContaining(['MESH017', 'MESH018']));
    const clean = write('clean.yaml', base());
    const ok = cli([clean]);
    expect(ok.status).toBe(0);
    expect(ok.out).toMatch(/mesh lint: 0 error\(s\), 0 warning\(s\), 0 info/);
  });
});

describe('as precise as istioctl: what the input cannot tell is not reported', () => {
  const codesOf = (objs: K8s[], code: string) => analyze(objs.map((obj) => ({ obj }))).filter((f) => f.code === code).map((f) => `${f.object.namespace ?? ''}/${f.object.name}`);
  test('MESH001 only where the input has workloads of the Service\'s namespace (else its pods are elsewhere)', () => {
    expect(codesOf([svc('api', { app: 'api' }, undefined, 'other')], 'MESH001')).toEqual([]);
    expect(codesOf([svc('api', { app: 'api' }, undefined, 'other'), deploy('worker', { app: 'worker' }, {}, 'other')], 'MESH001')).toEqual(['other/api']);
  });
  test('MESH012 leaves system namespaces, Istio\'s own Services and ExternalName Services alone', () => {
    const unnamed = [{ port: 8080 }];
    const objs = [
      svc('a', {}, unnamed, 'kube-system'), svc('b', {}, unnamed, 'istio-system'),
      { ...svc('c', {}, unnamed), metadata: { name: 'c', namespace: 'shop', labels: { istio: 'ingressgateway' } } },
      { ...svc('d', {}, unnamed), spec: { type: 'ExternalName', externalName: 'd.example.com', ports: unnamed } },
      svc('e', {}, unnamed),
    ];
    expect(codesOf(objs, 'MESH012')).toEqual(['shop/e']);
  });
  test('MESH005: subset labels on the node\'s topology select by locality, not by pod label', () => {
    const o = edit((x) => { find(x, 'DestinationRule', 'web').spec.subsets.push({ name: 'zone-a', labels: { 'topology.kubernetes.io/zone': 'a' } }, { name: 'v3-zone-a', labels: { version: 'v3', 'topology.kubernetes.io/zone': 'a' } }); });
    expect(codesOf(o, 'MESH005')).toEqual(['shop/web']); // v3 still selects no pod; zone-a alone selects them all
    expect(analyze(o.map((obj) => ({ obj }))).find((f) => f.code === 'MESH005')!.message).toMatch(/^subset v3-zone-a /);
  });
  test('MESH026 and MESH003 know ServiceEntry hosts; a DestinationRule with a workloadSelector may name hosts outside the input', () => {
    const se: K8s = { apiVersion: 'networking.istio.io/v1', kind: 'ServiceEntry', metadata: { name: 'db', namespace: 'shop' }, spec: { hosts: ['db.shop.svc.cluster.local'], ports: [{ number: 5432, name: 'tcp', protocol: 'TCP' }] } };
    const objs = [...base(), se, dr('db', { host: 'db' }), dr('cache', { host: 'cache', workloadSelector: { matchLabels: { app: 'web' } } }), dr('gone', { host: 'gone' }),
      vs('db', { hosts: ['db-alias.example.com'], http: [{ route: [{ destination: { host: 'db.shop.svc.cluster.local' } }] }] })];
    expect(codesOf(objs, 'MESH026')).toEqual(['shop/gone']);
    expect(codesOf(objs, 'MESH003')).toEqual([]);
    // A name under an entry's wildcard is known too; one outside it is not.
    const wild: K8s = { apiVersion: 'networking.istio.io/v1beta1', kind: 'ServiceEntry', metadata: { name: 'wiki', namespace: 'shop' }, spec: { hosts: ['*.wikipedia.org'], ports: [{ number: 80, name: 'http', protocol: 'HTTP' }] } };
    const to = (host: string) => vs('wiki', { hosts: ['wiki.example.com'], http: [{ route: [{ destination: { host } }] }] });
    expect(codesOf([...base(), wild, to('en.wikipedia.org')], 'MESH003')).toEqual([]);
    expect(codesOf([...base(), wild, to('wikipedia.org')], 'MESH003')).toEqual(['shop/wiki']);
  });
  test('MESH007 only where both VirtualServices are visible (exportTo)', () => {
    const two = (a: string[], b: string[]) => [...base(), vs('web-a', { hosts: ['api.example.com'], exportTo: a, http: [{ route: [{ destination: { host: 'web' } }] }] }),
      vs('web-b', { hosts: ['api.example.com'], exportTo: b, http: [{ route: [{ destination: { host: 'web' } }] }] }, 'other')];
    expect(codesOf(two(['.'], ['.']), 'MESH007')).toEqual([]);
    expect(codesOf(two(['shop'], ['*']), 'MESH007').sort()).toEqual(['other/web-b', 'shop/web-a']);
  });
  test('MESH009: each gateway must serve one of the rule\'s hosts (istioctl IST0132); "ns/host" serves that namespace only; Gateway API Gateways exist', () => {
    const bind = (hosts: string[], gateways: string[], namespace = 'shop') => vs('in', { hosts, gateways, http: [{ route: [{ destination: { host: 'web.shop.svc.cluster.local' } }] }] }, namespace);
    const gws = [gw('a', ['a.example.com']), gw('b', ['b.example.com']), gw('scoped', ['team/c.example.com'])];
    expect(codesOf([...base(), ...gws, bind(['a.example.com', 'b.example.com'], ['a', 'b'])], 'MESH009')).toEqual([]);
    expect(codesOf([...base(), ...gws, bind(['c.example.com'], ['scoped'])], 'MESH009')).toEqual(['shop/in']);
    expect(codesOf([...base(), ...gws, bind(['c.example.com'], ['shop/scoped'], 'team')], 'MESH009')).toEqual([]);
    const k8sGw: K8s = { apiVersion: 'gateway.networking.k8s.io/v1', kind: 'Gateway', metadata: { name: 'k', namespace: 'shop' }, spec: { gatewayClassName: 'istio', listeners: [{ name: 'http', port: 80, protocol: 'HTTP', hostname: 'k.example.com' }] } };
    const objs = [...base(), k8sGw, bind(['k.example.com'], ['k'])];
    expect([codesOf(objs, 'MESH023'), codesOf(objs, 'MESH009')]).toEqual([[], []]);
    expect(codesOf([...base(), k8sGw, bind(['x.example.com'], ['k'])], 'MESH009')).toEqual(['shop/in']);
  });
});

describe('as istioctl judges gateways and workloads', () => {
  const found = (objs: K8s[], code: string) => analyze(objs.map((obj) => ({ obj }))).filter((f) => f.code === code).map((f) => `${f.object.kind} ${f.object.name}`);
  const pod = (name: string, labels: Record<string, string>): K8s => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'shop', labels }, spec: { containers: [{ name: 'istio-proxy', image: 'proxy' }] } });
  const selecting = (g: K8s, selector: Record<string, string>): K8s => ({ ...g, spec: { ...g.spec, selector } });
  test('MESH010: gateways whose selectors differ but select the same pods of the input conflict; without such a pod they do not', () => {
    const a = selecting(gw('alpha', ['foo.example.com']), { istio: 'ingressgateway' });
    const b = selecting(gw('beta', ['foo.example.com']), { istio: 'ingressgateway', team: 'x' });
    expect(found([a, b], 'MESH010')).toEqual([]);
    expect(found([a, b, pod('ingress-1', { istio: 'ingressgateway', team: 'x' })], 'MESH010')).toEqual(['Gateway beta']);
  });
  test('MESH010 in a v1 List (kubectl get -o yaml): its items are objects like any other', () => {
    const list: K8s = { apiVersion: 'v1', kind: 'List', metadata: undefined as never, items: [gw('alpha', ['foo.example.com']), gw('beta', ['foo.example.com'])] };
    expect(found([list], 'MESH010')).toEqual(['Gateway beta']);
  });
  test('MESH032: a credential shared by gateways of one namespace whose selectors nest; not across namespaces or disjoint selectors', () => {
    const tls = (name: string, namespace: string, selector: Record<string, string>): K8s => ({
      ...gw(name, [`${name}.example.com`], namespace, 443),
      spec: { selector, servers: [{ port: { number: 443, name: 'https', protocol: 'HTTPS' }, hosts: [`${name}.example.com`], tls: { mode: 'SIMPLE', credentialName: 'wildcard' } }] },
    });
    expect(found([tls('a', 'shop', { istio: 'ingressgateway' }), tls('b', 'shop', { istio: 'ingressgateway', team: 'x' })], 'MESH032')).toEqual(['Gateway b']);
    expect(found([tls('a', 'shop', { istio: 'ingressgateway' }), tls('b', 'other', { istio: 'ingressgateway' })], 'MESH032')).toEqual([]);
    expect(found([tls('a', 'shop', { istio: 'ingressgateway' }), tls('b', 'shop', { istio: 'eastwest' })], 'MESH032')).toEqual([]);
  });
  test('MESH013 and MESH031 are reported on the workload, and only for pods in the mesh', () => {
    const o = edit((x) => { x.push(svc('web-alt', { app: 'web' }, [{ name: 'http', port: 81, targetPort: 8080 }]), svc('web-tcp', { app: 'web' }, [{ name: 'tcp', port: 80, targetPort: 8080, protocol: 'HTTP' }])); });
    expect(found(o, 'MESH013')).toEqual(['Deployment web-v1', 'Deployment web-v2']);
    // protocol: HTTP is not Kubernetes', but the port is still TCP to the proxy.
    expect(found(o, 'MESH031')).toEqual(['Deployment web-v1', 'Deployment web-v2']);
    const outside = o.map((x) => (x.kind === 'Namespace' ? ns('shop', false) : x));
    expect([found(outside, 'MESH013'), found(outside, 'MESH031')]).toEqual([[], []]);
  });
});

test('every chart of the project lints clean (no errors, no warnings)', () => {
  const app = new App({ outdir: '/nonexistent' });
  for (const v of CHART_VARIANTS) createVariant(app, v);
  expect(lintApp(app).filter((f) => f.severity !== 'info')).toEqual([]);
});

test('synth stops on lint errors, naming the construct path, before writing', () => {
  const app = Testing.app();
  const chart = new MeshChart(app, 'shop');
  // A workload of the namespace is in the chart, so a selector that matches none of its pods is a mistake.
  new ApiObject(chart, 'web', deploy('web', { app: 'web' }, {}, 'default'));
  new ApiObject(chart, 'orphan', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'orphan' }, spec: { selector: { app: 'nobody' }, ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } });
  const write = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    expect(() => lintBeforeWrite(app)).toThrow(MeshLintError);
    expect(write.mock.calls.map((c) => String(c[0])).join('')).toMatch(/ERROR {3}MESH001 Service orphan \(shop\/orphan\): selector/);
  } finally {
    write.mockRestore();
  }
});

describe('the lint CLI', () => {
  const bin = join(__dirname, '..', 'bin', 'cdk8s-mesh.js');
  const run = (args: string[]) => {
    const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: join(__dirname, '..') });
    return { status: r.status, out: r.stdout, err: r.stderr };
  };
  const dir = mkdtempSync(join(tmpdir(), 'lint-cli-'));

  test('--help on every subcommand prints its usage, exit 0', () => {
    for (const cmd of ['charts', 'synth', 'lint']) {
      const r = run([cmd, '--help']);
      expect(r.status).toBe(0);
      expect(r.out).toMatch(new RegExp(`^usage: cdk8s-mesh ${cmd}`));
    }
    expect(run(['help', 'lint']).out).toMatch(/^usage: cdk8s-mesh lint/);
  });

  test('a chart name lints that chart; an unknown name lists the charts (exit 2)', () => {
    const ok = run(['lint', 'web-weighted', 'demo-gateway-node-sidecar']);
    expect(ok.status).toBe(0);
    expect(ok.out).toMatch(/mesh lint: 0 error\(s\), 0 warning\(s\)/);
    const bad = run(['lint', 'shop']);
    expect(bad.status).toBe(2);
    expect(bad.err).toMatch(/shop: no such file or chart; the charts are: web-basic, .*bookinfo-node-sidecar/);
    expect(run(['lint', '--bogus']).err).toMatch(/unknown option --bogus/);
  });

  test('a file that is not YAML is refused (exit 1, which document, why), not linted as nothing', () => {
    const file = join(dir, 'broken.yaml');
    writeFileSync(file, 'apiVersion: v1\nkind: Service\nmetadata: {name: web\n');
    const r = run(['lint', file]);
    expect(r.status).toBe(1);
    expect(r.err).toMatch(/broken\.yaml#1: Flow map .*expected YAML that parses \(the file was not linted\)/);
    expect(r.out).not.toMatch(/mesh lint: 0 error/);
  });

  test('files are linted one by one; --one-cluster reads them as one cluster', () => {
    // One chart on both data planes: fine on its own, conflicting when read as one cluster.
    const out = join(dir, 'dist');
    const synth = run(['synth', '--out', out, 'web-weighted', 'web-weighted-node-sidecar']);
    expect(synth.status).toBe(0);
    const files = ['web-weighted.k8s.yaml', 'web-weighted-node-sidecar.k8s.yaml'].map((f) => join(out, f));
    const each = run(['lint', ...files]);
    expect(each.status).toBe(0);
    expect(each.out).toMatch(/mesh lint: 0 error\(s\), 0 warning\(s\), 0 info/);
    const together = run(['lint', '--one-cluster', ...files]);
    expect(together.status).toBe(1);
    expect(together.out).toMatch(/ERROR {3}MESH024 Deployment client \(.*web-weighted-node-sidecar.k8s.yaml#\d+\): Deployment default\/client is defined twice: by .*web-weighted.k8s.yaml#\d+/);
  }, 30_000);
});

describe('the CLI on an app of your own (--app)', () => {
  const bin = join(__dirname, '..', 'bin', 'cdk8s-mesh.js');
  const dir = mkdtempSync(join(tmpdir(), 'user-app-'));
  // A project with its dependencies installed (cdk8s, ts-node): this repository's.
  symlinkSync(join(__dirname, '..', 'node_modules'), join(dir, 'node_modules'));
  const constructs = JSON.stringify(join(__dirname, '..', 'constructs'));
  const run = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', cwd: dir });
  test('a program that calls app.synth(): synth writes its charts after lint; lint and charts see them', () => {
    writeFileSync(join(dir, 'main.ts'), `import { App } from 'cdk8s';
import { MeshChart, MeshWorkload, TrafficRoute } from ${constructs};
const app = new App();
const shop = new MeshChart(app, 'shop', { namespace: 'shop' });
const web = new MeshWorkload(shop, 'web', { app: 'web', image: 'web:1', port: 8080 });
new TrafficRoute(shop, 'edge', { name: 'edge', hosts: ['shop.example.com'], gateways: ['missing'], http: [{ route: [{ to: web }] }] });
const ok = new MeshChart(app, 'ok');
new MeshWorkload(ok, 'api', { app: 'api', image: 'api:1', port: 8080 });
app.synth();
`);
    expect(run(['charts', '--app', 'main.ts']).stdout).toMatch(/^shop +\(istio\)\nok +\(istio\)\n$/);
    const lint = run(['lint', '--app', 'main.ts', 'shop']);
    expect(lint.status).toBe(1);
    expect(lint.stdout).toMatch(/ERROR {3}MESH023 VirtualService shop\/edge \(shop\/edge\/Resource\)/);
    const refused = run(['synth', '--app', 'main.ts', '--out', 'out']);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/cdk8s-mesh: mesh lint found 1 error\(s\); nothing was written/);
    const one = run(['synth', '--app', 'main.ts', '--out', 'out', 'ok']);
    expect([one.status, one.stdout]).toEqual([0, 'wrote 1 chart(s) to out/\n']);
    expect(readdirSync(join(dir, 'out'))).toEqual(['ok.k8s.yaml']);
    // cdk8s.yaml's entry is the app when --app is not given.
    writeFileSync(join(dir, 'cdk8s.yaml'), 'language: typescript\napp: npx ts-node main.ts\noutput: dist\n');
    expect(run(['lint', 'ok']).stdout).toMatch(/mesh lint: 0 error\(s\)/);
    expect(run(['lint', 'nope']).stderr).toMatch(/nope: no such file or chart; the charts are: shop, ok/);
  }, 60_000);
});
