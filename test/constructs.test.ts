import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { App, Chart, Testing } from 'cdk8s';
import { runSynth } from '../apps/run';
import { lintApp } from '../lint/sources';
import {
  CanaryRelease, DataPlane, DestinationPolicy, IngressGateway, MeshChart, MeshGateway, MeshNamespace, MeshWorkload, TrafficRoute, WebTier,
} from '../constructs';
import { Duration, externalHost } from '../model';
import { find, K8sObject, ofKind } from './support/synth';
import { crdError } from './support/schemas';

const synth = (c: Chart) => Testing.synth(c) as K8sObject[];
const podMeta = (d: K8sObject) => d.spec.template.metadata;
const web = { app: 'web', image: 'busybox:1.36', port: 8080 };

describe('MeshWorkload', () => {
  test('Deployment and Service with app/version labels, explicit names and a protocol-named port', () => {
    const c = new Chart(Testing.app(), 't');
    const w = new MeshWorkload(c, 'w', { ...web, version: 'v2', serviceName: 'web-svc', deploymentName: 'web-v2', servicePort: 80 });
    const objs = synth(c);
    const d = find(objs, 'Deployment', 'web-v2');
    expect(d.spec.selector.matchLabels).toEqual({ app: 'web', version: 'v2' });
    expect(podMeta(d).labels).toMatchObject({ app: 'web', version: 'v2' });
    expect(podMeta(d).labels['cdk8s.io/metadata.addr']).toBeUndefined();
    const s = find(objs, 'Service', 'web-svc');
    expect(s.spec.ports).toEqual([{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }]);
    expect(w.servicePorts).toEqual([80]);
  });

  test('appProtocol allows a port name without a protocol prefix', () => {
    const c = new Chart(Testing.app(), 't');
    new MeshWorkload(c, 'w', { ...web, portName: 'web', appProtocol: 'http' });
    expect(find(synth(c), 'Service', 'web').spec.ports[0]).toMatchObject({ name: 'web', appProtocol: 'http' });
  });

  test('a client without a port has no Service', () => {
    const c = new Chart(Testing.app(), 't');
    new MeshWorkload(c, 'w', { app: 'client', image: 'busybox:1.36', command: ['sleep', '3600'] });
    expect(ofKind(synth(c), 'Service')).toEqual([]);
  });

  test('istio: opt-in pod label and annotation when the namespace is not the chart\'s', () => {
    const c = new Chart(Testing.app(), 't');
    new MeshWorkload(c, 'w', { ...web, namespace: 'shop' });
    const meta = podMeta(find(synth(c), 'Deployment', 'web'));
    expect(meta.labels['sidecar.istio.io/inject']).toBe('true');
    expect(meta.annotations['sidecar.istio.io/inject']).toBe('true');
  });

  test('istio: no pod marker in an injecting namespace the chart owns (never injected twice)', () => {
    const c = new Chart(Testing.app(), 't');
    const ns = new MeshNamespace(c, 'ns', { name: 'shop' });
    new MeshWorkload(c, 'w', { ...web, namespace: ns });
    const objs = synth(c);
    expect(find(objs, 'Namespace', 'shop').metadata.labels).toEqual({ 'istio-injection': 'enabled' });
    const meta = podMeta(find(objs, 'Deployment', 'web', 'shop'));
    expect(meta.labels['sidecar.istio.io/inject']).toBeUndefined();
    expect(meta.annotations?.['sidecar.istio.io/inject']).toBeUndefined();
  });

  test('istio: a workload kept out of an injecting namespace says so', () => {
    const c = new Chart(Testing.app(), 't');
    const ns = new MeshNamespace(c, 'ns', { name: 'shop' });
    new MeshWorkload(c, 'w', { ...web, namespace: ns, mesh: false });
    expect(podMeta(find(synth(c), 'Deployment', 'web')).labels['sidecar.istio.io/inject']).toBe('false');
  });

  test('istio: out of the mesh in a namespace without injection: nothing', () => {
    const c = new Chart(Testing.app(), 't');
    const ns = new MeshNamespace(c, 'ns', { name: 'legacy', injection: false });
    new MeshWorkload(c, 'w', { ...web, namespace: ns, mesh: false });
    const objs = synth(c);
    expect(find(objs, 'Namespace', 'legacy').metadata.labels).toEqual({ 'istio-injection': 'disabled' });
    expect(podMeta(find(objs, 'Deployment', 'web')).labels['sidecar.istio.io/inject']).toBeUndefined();
  });

  test('security overrides and writable paths', () => {
    const c = new Chart(Testing.app(), 't');
    new MeshWorkload(c, 'w', { ...web, security: { user: 101, group: 101, readOnlyRootFilesystem: false }, writablePaths: ['/tmp', '/cache'] });
    const pod = find(synth(c), 'Deployment', 'web').spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsUser: 101, runAsGroup: 101, fsGroup: 101, runAsNonRoot: true });
    expect(pod.containers[0].securityContext).toMatchObject({ runAsUser: 101, readOnlyRootFilesystem: false, allowPrivilegeEscalation: false });
    expect(pod.containers[0].volumeMounts.map((m: any) => m.mountPath)).toEqual(['/tmp', '/cache']);
    expect(pod.volumes).toEqual([{ name: 'writable-0', emptyDir: {} }, { name: 'writable-1', emptyDir: {} }]);
  });

  test('resources default and override', () => {
    const c = new Chart(Testing.app(), 't');
    new MeshWorkload(c, 'a', { ...web });
    new MeshWorkload(c, 'b', { ...web, app: 'big', resources: { cpuMillis: { request: 200, limit: 2000 }, memoryMiB: { request: 512, limit: 1024 } } });
    const objs = synth(c);
    expect(find(objs, 'Deployment', 'web').spec.template.spec.containers[0].resources).toEqual({
      requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' },
    });
    expect(find(objs, 'Deployment', 'big').spec.template.spec.containers[0].resources).toEqual({
      requests: { cpu: '200m', memory: '512Mi' }, limits: { cpu: '2', memory: '1Gi' }, // as the API server writes them
    });
  });
});

describe('TrafficRoute (Istio)', () => {
  test('renders every rule feature under Istio\'s field names', () => {
    const c = new Chart(Testing.app(), 't');
    const ratings = new MeshWorkload(c, 'r', { app: 'ratings', image: 'r:1', port: 9080, namespace: 'bookinfo' });
    const mirror = new MeshWorkload(c, 'm', { app: 'shadow', image: 's:1', port: 9080, namespace: 'bookinfo' });
    new TrafficRoute(c, 'route', {
      name: 'ratings',
      namespace: 'bookinfo',
      hosts: [ratings],
      http: [
        { match: [{ uri: { exact: '/old' } }], redirect: { uri: '/new', redirectCode: 308 } },
        {
          name: 'jason',
          match: [{ headers: { 'end-user': { exact: 'jason' }, 'x-debug': { present: true } } }, { queryParams: { u: { regex: '^j' } }, method: 'POST' }],
          route: [{ to: ratings }],
          fault: { delay: { fixedDelay: Duration.seconds(7), percentage: 100 }, abort: { httpStatus: 500, percentage: 50 } },
        },
        {
          route: [{ to: ratings, port: 9080 }],
          timeout: '10s',
          retries: { attempts: 3, perTryTimeout: '2s', retryOn: ['gateway-error', 'connect-failure'] },
          mirror: { to: mirror, percentage: 5 },
          rewrite: { uri: '/v1' },
          headers: { request: { set: { 'x-env': 'prod' }, remove: ['x-internal'] }, response: { add: { 'x-served-by': 'mesh' } } },
        },
      ],
    });
    const vs = find(synth(c), 'VirtualService', 'ratings');
    expect(vs.metadata.namespace).toBe('bookinfo');
    expect(vs.spec).toEqual({
      hosts: ['ratings'],
      http: [
        { match: [{ uri: { exact: '/old' } }], redirect: { uri: '/new', redirectCode: 308 } },
        {
          name: 'jason',
          match: [{ headers: { 'end-user': { exact: 'jason' }, 'x-debug': {} } }, { queryParams: { u: { regex: '^j' } }, method: { exact: 'POST' } }],
          route: [{ destination: { host: 'ratings' } }],
          fault: { delay: { fixedDelay: '7s', percentage: { value: 100 } }, abort: { httpStatus: 500, percentage: { value: 50 } } },
        },
        {
          route: [{ destination: { host: 'ratings', port: { number: 9080 } } }],
          timeout: '10s',
          retries: { attempts: 3, perTryTimeout: '2s', retryOn: 'gateway-error,connect-failure' },
          mirror: { host: 'shadow' },
          mirrorPercentage: { value: 5 },
          rewrite: { uri: '/v1' },
          headers: { request: { set: { 'x-env': 'prod' }, remove: ['x-internal'] }, response: { add: { 'x-served-by': 'mesh' } } },
        },
      ],
    });
  });

  test('destinations in another namespace get their fully qualified name; external hosts stay as given', () => {
    const c = new Chart(Testing.app(), 't');
    const api = new MeshWorkload(c, 'api', { app: 'api', image: 'a:1', port: 8080, namespace: 'backend' });
    new TrafficRoute(c, 'route', {
      name: 'front', namespace: 'frontend', hosts: [api, 'api.example.com'],
      http: [{ route: [{ to: api, weight: 90 }, { to: externalHost('api.example.com'), weight: 10 }] }],
    });
    const vs = find(synth(c), 'VirtualService', 'front');
    expect(vs.spec.hosts).toEqual(['api.backend.svc.cluster.local', 'api.example.com']);
    expect(vs.spec.http[0].route.map((r: any) => r.destination.host)).toEqual(['api.backend.svc.cluster.local', 'api.example.com']);
  });
});

describe('DestinationPolicy (Istio)', () => {
  test('subsets by version and a full traffic policy', () => {
    const c = new Chart(Testing.app(), 't');
    const reviews = new MeshWorkload(c, 'r', { app: 'reviews', image: 'r:1', port: 9080, namespace: 'bookinfo' });
    new DestinationPolicy(c, 'dr', {
      name: 'reviews',
      service: reviews,
      subsets: [{ name: 'v1' }, { name: 'v2', trafficPolicy: { loadBalancer: 'RANDOM' } }],
      trafficPolicy: {
        loadBalancer: 'LEAST_REQUEST',
        connectionPool: { tcp: { maxConnections: 100, connectTimeout: '30ms' }, http: { http1MaxPendingRequests: 1, maxRequestsPerConnection: 1 } },
        outlierDetection: { consecutive5xxErrors: 1, interval: '1s', baseEjectionTime: '3m', maxEjectionPercent: 100 },
        tls: 'ISTIO_MUTUAL',
      },
    });
    const dr = find(synth(c), 'DestinationRule', 'reviews');
    expect(dr.metadata.namespace).toBe('bookinfo');
    expect(dr.spec).toEqual({
      host: 'reviews',
      trafficPolicy: {
        loadBalancer: { simple: 'LEAST_REQUEST' },
        connectionPool: { tcp: { maxConnections: 100, connectTimeout: '0.03s' }, http: { http1MaxPendingRequests: 1, maxRequestsPerConnection: 1 } },
        outlierDetection: { consecutive5xxErrors: 1, interval: '1s', baseEjectionTime: '3m', maxEjectionPercent: 100 },
        tls: { mode: 'ISTIO_MUTUAL' },
      },
      subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' }, trafficPolicy: { loadBalancer: { simple: 'RANDOM' } } }],
    });
  });
});

describe('DestinationPolicy consistentHash (Istio)', () => {
  test('sticky sessions by cookie become loadBalancer.consistentHash, valid for Istio\'s CRD', () => {
    const c = new Chart(Testing.app(), 't');
    const web = new MeshWorkload(c, 'w', { app: 'web', image: 'w:1', port: 8080 });
    new DestinationPolicy(c, 'dr', {
      name: 'web',
      service: web,
      trafficPolicy: {
        consistentHash: { httpCookie: { name: 'session', path: '/', ttl: '1h' }, ringHash: { minimumRingSize: 2048 } },
        connectionPool: { tcp: { tcpKeepalive: { time: '2m' } } },
        outlierDetection: { consecutive5xxErrors: 3, minHealthPercent: 50 },
      },
    });
    const dr = find(synth(c), 'DestinationRule', 'web');
    expect(dr.spec.trafficPolicy).toEqual({
      loadBalancer: { consistentHash: { httpCookie: { name: 'session', path: '/', ttl: '1h' }, ringHash: { minimumRingSize: 2048 } } },
      connectionPool: { tcp: { tcpKeepalive: { time: '2m' } } },
      outlierDetection: { consecutive5xxErrors: 3, minHealthPercent: 50 },
    });
    expect(crdError(dr)).toBeUndefined();
  });
});

describe('MeshGateway (Istio)', () => {
  test('HTTP with httpsRedirect, HTTPS SIMPLE with credentialName, configurable selector', () => {
    const c = new Chart(Testing.app(), 't');
    const gw = new MeshGateway(c, 'gw', {
      name: 'bookinfo-gateway', namespace: 'istio-ingress', selector: { istio: 'ingress' },
      servers: [
        { port: 80, hosts: ['bookinfo.example.com'], httpsRedirect: true },
        { port: 443, protocol: 'HTTPS', hosts: ['bookinfo.example.com'], tls: { mode: 'SIMPLE', credentialName: 'bookinfo-cert' } },
      ],
    });
    expect(find(synth(c), 'Gateway', 'bookinfo-gateway').spec).toEqual({
      selector: { istio: 'ingress' },
      servers: [
        { port: { number: 80, name: 'http-80', protocol: 'HTTP' }, hosts: ['bookinfo.example.com'], tls: { httpsRedirect: true } },
        { port: { number: 443, name: 'https-443', protocol: 'HTTPS' }, hosts: ['bookinfo.example.com'], tls: { mode: 'SIMPLE', credentialName: 'bookinfo-cert' } },
      ],
    });
    expect(gw.refFrom('istio-ingress')).toBe('bookinfo-gateway');
    expect(gw.refFrom('bookinfo')).toBe('istio-ingress/bookinfo-gateway');
  });
});

describe('WebTier', () => {
  const backends = [
    { app: 'a', image: 'a:1', port: 8080, serviceName: 'a-svc', weight: 25 },
    { app: 'b', image: 'b:1', port: 9090, serviceName: 'b-svc', weight: 75 },
  ];
  test('front Service selects every backend (by port name when their ports differ) and the split follows the weights', () => {
    const c = new Chart(Testing.app(), 't');
    new WebTier(c, 'tier', { backends, front: { serviceName: 'front', port: 80 }, client: { app: 'client', image: 'busybox:1.36' } });
    const objs = synth(c);
    const front = find(objs, 'Service', 'front');
    expect(front.spec.selector).toEqual({ tier: 'web' });
    expect(front.spec.ports).toEqual([{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }]);
    for (const d of ['a', 'b']) expect(podMeta(find(objs, 'Deployment', d)).labels.tier).toBe('web');
    expect(podMeta(find(objs, 'Deployment', 'client')).labels.tier).toBeUndefined();
    const vs = find(objs, 'VirtualService', 'front-vs');
    expect(vs.spec.hosts).toEqual(['front']);
    expect(vs.spec.http[0].route).toEqual([
      { destination: { host: 'a-svc' }, weight: 25 },
      { destination: { host: 'b-svc' }, weight: 75 },
    ]);
  });
  test('no weights: round robin only, no route', () => {
    const c = new Chart(Testing.app(), 't');
    new WebTier(c, 'tier', { backends: backends.map(({ weight: _w, ...b }) => b), front: { serviceName: 'front' }, mesh: false });
    expect(ofKind(synth(c), 'VirtualService')).toEqual([]);
  });
});

describe('CanaryRelease', () => {
  const base = { app: 'shop', port: 8080, stable: { version: 'v1', image: 'shop:1' }, canary: { version: 'v2', image: 'shop:2' } };

  test('progressive steps: each stage synthesizes its own weights deterministically', () => {
    const weights = [0, 1, 2, 3].map((step) => {
      const c = new Chart(Testing.app(), 't');
      new CanaryRelease(c, 'shop', { ...base, steps: [10, 30, 50, 100], currentStep: step });
      return find(synth(c), 'VirtualService', 'shop-vs').spec.http[0].route.map((r: any) => r.weight);
    });
    expect(weights).toEqual([[90, 10], [70, 30], [50, 50], [0, 100]]);
  });

  test('the same stage twice gives the same YAML', () => {
    const once = () => {
      const c = new Chart(Testing.app(), 't');
      new CanaryRelease(c, 'shop', { ...base, steps: [10, 30], currentStep: 1 });
      return JSON.stringify(synth(c));
    };
    expect(once()).toBe(once());
  });

  test('a header match always goes to the canary, before the split; timeout and retries on both', () => {
    const c = new Chart(Testing.app(), 't');
    const r = new CanaryRelease(c, 'shop', {
      ...base, canaryWeight: 5, canaryHeader: { name: 'x-canary', match: { exact: 'always' } },
      timeout: '3s', retries: { attempts: 2, perTryTimeout: '1s', retryOn: ['5xx'] },
    });
    const vs = find(synth(c), 'VirtualService', 'shop-vs');
    expect(vs.spec.http).toEqual([
      {
        name: 'canary-by-header', match: [{ headers: { 'x-canary': { exact: 'always' } } }],
        route: [{ destination: { host: 'shop', subset: 'v2' } }],
        timeout: '3s', retries: { attempts: 2, perTryTimeout: '1s', retryOn: '5xx' },
      },
      {
        route: [{ destination: { host: 'shop', subset: 'v1' }, weight: 95 }, { destination: { host: 'shop', subset: 'v2' }, weight: 5 }],
        timeout: '3s', retries: { attempts: 2, perTryTimeout: '1s', retryOn: '5xx' },
      },
    ]);
    expect(r.canaryWeight).toBe(5);
    expect(r.subsetNames).toEqual(['v1', 'v2']);
  });

  test('one Service for both versions; each Deployment selects only its own version', () => {
    const c = new Chart(Testing.app(), 't');
    new CanaryRelease(c, 'shop', { ...base, canaryWeight: 50 });
    const objs = synth(c);
    expect(ofKind(objs, 'Service')).toHaveLength(1);
    expect(find(objs, 'Service', 'shop').spec.selector).toEqual({ app: 'shop' });
    expect(find(objs, 'Deployment', 'shop-v1').spec.selector.matchLabels).toEqual({ app: 'shop', version: 'v1' });
    expect(find(objs, 'Deployment', 'shop-v2').spec.selector.matchLabels).toEqual({ app: 'shop', version: 'v2' });
  });
});

describe('MeshChart', () => {
  test('defaults to Istio, and an unknown data plane is refused with the chart path', () => {
    expect(new MeshChart(Testing.app(), 'c').dataPlane).toBe(DataPlane.ISTIO);
    expect(() => new MeshChart(Testing.app(), 'c', { dataPlane: 'linkerd' as DataPlane })).toThrow(/^c: dataPlane is "linkerd"; expected one of the registered data planes \(istio, node-sidecar, gateway-api\)/);
  });
});

describe('duplicate objects are refused at synth, naming both constructs', () => {
  const synthError = (c: Chart) => {
    try { Testing.synth(c); } catch (e) { return (e as Error).message; }
    return 'synthesized';
  };
  const charts = (dataPlane: DataPlane) => new MeshChart(Testing.app(), 'shop', { namespace: 'shop', dataPlane });

  test.each([DataPlane.ISTIO, DataPlane.NODE_SIDECAR])('two workloads with one serviceName (%s)', (dp) => {
    const c = charts(dp);
    new MeshWorkload(c, 'a', { ...web, app: 'cart', serviceName: 'cart' });
    new MeshWorkload(c, 'b', { ...web, app: 'basket', serviceName: 'cart' });
    expect(synthError(c)).toMatch(/Service shop\/cart is defined twice: by shop\/a\/Service and by shop\/b\/Service/);
  });

  test('a deploymentName equal to another workload\'s', () => {
    const c = charts(DataPlane.ISTIO);
    new MeshWorkload(c, 'a', { ...web, app: 'cart' });
    new MeshWorkload(c, 'b', { ...web, app: 'basket', serviceName: 'basket', deploymentName: 'cart' });
    expect(synthError(c)).toMatch(/Deployment shop\/cart is defined twice: by shop\/a\/Deployment\/Resource and by shop\/b\/Deployment\/Resource/);
  });

  test('two TrafficRoutes with one name', () => {
    const c = charts(DataPlane.ISTIO);
    const w = new MeshWorkload(c, 'a', { ...web, app: 'cart' });
    new TrafficRoute(c, 'r1', { name: 'cart', hosts: [w], http: [{ route: [{ to: w }] }] });
    new TrafficRoute(c, 'r2', { name: 'cart', hosts: ['cart.example.com'], http: [{ route: [{ to: w }] }] });
    expect(synthError(c)).toMatch(/VirtualService shop\/cart is defined twice: by shop\/r1\/.* and by shop\/r2\//);
  });

  test('a user Service named like a node-sidecar per-subset Service', () => {
    const c = charts(DataPlane.NODE_SIDECAR);
    new CanaryRelease(c, 'frontend', { app: 'frontend', port: 8080, stable: { version: 'v1', image: 'f:1' }, canary: { version: 'v2', image: 'f:2' }, canaryWeight: 10 });
    new MeshWorkload(c, 'legacy', { ...web, app: 'legacy', serviceName: 'frontend-v1' });
    expect(synthError(c)).toMatch(/Service shop\/frontend-v1 is defined twice: by shop\/frontend\/.*Subset-v1 and by shop\/legacy\/Service/);
  });

  test('the synth entry point prints the message and exits 1, nothing written, no stack trace', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'dup-'));
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const status = runSynth(() => {
        const app = new App({ outdir: out });
        const c = new MeshChart(app, 'shop', { namespace: 'shop' });
        new MeshWorkload(c, 'a', { ...web, app: 'cart' });
        new MeshWorkload(c, 'b', { ...web, app: 'cart', deploymentName: 'cart-2' });
        app.synth();
      });
      expect(status).toBe(1);
      const text = stderr.mock.calls.map((x) => String(x[0])).join('');
      expect(text).toMatch(/^cdk8s-mesh: Validation failed with the following errors:\n {2}\[shop\] Service shop\/cart is defined twice/);
      expect(text).not.toMatch(/ {4}at /);
      expect(fs.readdirSync(out)).toEqual([]);
    } finally {
      stderr.mockRestore();
    }
  });

  test('one name in two namespaces, or for two kinds, is fine', () => {
    const c = charts(DataPlane.ISTIO);
    new MeshWorkload(c, 'a', { ...web, app: 'cart' });
    new MeshWorkload(c, 'b', { ...web, app: 'cart', namespace: 'other' });
    expect(synthError(c)).toBe('synthesized');
  });
});

describe('a short host in another namespace', () => {
  test('is refused at synth when the chart has that Service elsewhere, naming the route and the Service', () => {
    const c = new MeshChart(Testing.app(), 'shop', { namespace: 'shop' });
    const inventory = new MeshWorkload(c, 'inventory', { ...web, app: 'inventory', namespace: 'warehouse' });
    new TrafficRoute(c, 'route', { name: 'inventory', hosts: ['inventory'], http: [{ route: [{ to: inventory }] }] });
    expect(() => Testing.synth(c)).toThrow(/shop\/route: hosts\[0\] is "inventory"; expected the Service object \(hosts: \[workload\]\) or "inventory.warehouse.svc.cluster.local": a short name resolves in the route's namespace shop, and Service inventory is in warehouse \(shop\/inventory\/Service\)/);
  });
  test('is fine when the route lives with the Service, or names it fully, or passes the object', () => {
    for (const hosts of [['inventory.warehouse.svc.cluster.local'], 'object'] as const) {
      const c = new MeshChart(Testing.app(), 'shop', { namespace: 'shop' });
      const inventory = new MeshWorkload(c, 'inventory', { ...web, app: 'inventory', namespace: 'warehouse' });
      new TrafficRoute(c, 'route', { name: 'inventory', hosts: hosts === 'object' ? [inventory] : [...hosts], http: [{ route: [{ to: inventory }] }] });
      expect(() => Testing.synth(c)).not.toThrow();
    }
    const c = new MeshChart(Testing.app(), 'shop');
    const inventory = new MeshWorkload(c, 'inventory', { ...web, app: 'inventory', namespace: 'warehouse' });
    new TrafficRoute(c, 'route', { name: 'inventory', namespace: 'warehouse', hosts: ['inventory'], http: [{ route: [{ to: inventory }] }] });
    expect(() => Testing.synth(c)).not.toThrow();
  });
});

describe('a canary behind an ingress gateway', () => {
  const release = (c: Chart) => new CanaryRelease(c, 'shop', {
    app: 'shop', port: 8080, stable: { version: 'v1', image: 'shop:1' }, canary: { version: 'v2', image: 'shop:2' },
    canaryWeight: 20, canaryHeader: { name: 'x-canary', match: { exact: 'yes' } }, timeout: '2s',
  });
  test('rulesFor gives the gateway route the same header rule and split, narrowed by its match', () => {
    const c = new MeshChart(Testing.app(), 'c', { namespace: 'shop' });
    const r = release(c);
    new IngressGateway(c, 'edge', { name: 'shop-gateway', hosts: ['shop.example.com'], routes: r.rulesFor({ match: [{ uri: { prefix: '/shop' } }], port: 8080 }) });
    const vs = find(synth(c), 'VirtualService', 'shop-gateway-vs');
    expect(vs.spec.http).toEqual([
      {
        name: 'canary-by-header', match: [{ uri: { prefix: '/shop' }, headers: { 'x-canary': { exact: 'yes' } } }], timeout: '2s',
        route: [{ destination: { host: 'shop', subset: 'v2', port: { number: 8080 } } }],
      },
      {
        match: [{ uri: { prefix: '/shop' } }], timeout: '2s',
        route: [{ destination: { host: 'shop', subset: 'v1', port: { number: 8080 } }, weight: 80 }, { destination: { host: 'shop', subset: 'v2', port: { number: 8080 } }, weight: 20 }],
      },
    ]);
    const app = Testing.app();
    const clean = new MeshChart(app, 'clean', { namespace: 'shop' });
    const r2 = release(clean);
    new IngressGateway(clean, 'edge', { name: 'shop-gateway', hosts: ['shop.example.com'], routes: r2.rulesFor() });
    expect(lintApp(app).filter((f) => f.severity !== 'info')).toEqual([]);
  });
  test('a gateway route to the canary\'s Service without the split is a lint warning (MESH030)', () => {
    const app = Testing.app();
    const c = new MeshChart(app, 'c', { namespace: 'shop' });
    const r = release(c);
    new IngressGateway(c, 'edge', { name: 'shop-gateway', hosts: ['shop.example.com'], routes: [{ route: [{ to: r }] }] });
    expect(lintApp(app).map((f) => `${f.code} ${f.object.name}`)).toContain('MESH030 shop-gateway-vs');
  });
  test('bad options name the release', () => {
    const r = release(new MeshChart(Testing.app(), 'c'));
    expect(() => r.rulesFor({ port: 0 })).toThrow(/^c\/shop: rulesFor\(options\)\.port is 0; expected an integer from 1 to 65535/);
    expect(() => r.rulesFor({ match: 'all' as never })).toThrow(/^c\/shop: rulesFor\(options\)\.match is "all"; expected an array/);
  });
});
