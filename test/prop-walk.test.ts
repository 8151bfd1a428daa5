// Every public prop of every construct, walked with bad values: undefined, null, a value
// of the wrong type and an empty one. The props come from the TypeScript declarations
// (test/support/prop-paths.ts), the bad values are generated from a valid example per
// construct, so a new prop is covered without editing a list here. A construct may
// accept a value (an optional prop left out) or refuse it with a MeshValidationError
// naming its construct path; any other error (a TypeError, a cdk8s error) fails, and so
// does accepting a value of the wrong type or leaving out a required prop.
import { readFileSync } from 'node:fs';
import { Chart, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import {
  BookinfoApp, CanaryRelease, DataPlane, DestinationPolicy, IngressGateway, JaegerAddon, KialiAddon, PrometheusAddon, MeshChart, MeshGateway, MeshNamespace, MeshTracing, MeshWorkload, ProgressiveDelivery, ServiceEntry, TrafficRoute, WebTier,
} from '../constructs';
import { Duration, MeshValidationError } from '../model';
import { PropPath, propPaths } from './support/prop-paths';
import { GENERATED, propPathsModule } from '../scripts/prop-paths';
import { PROP_PATHS } from '../constructs/prop-paths.generated';

/** Everything a valid example may refer to, made fresh in each chart. */
interface World { chart: Chart; ns: MeshNamespace; api: MeshWorkload; reviews: MeshWorkload; sa: kplus.ServiceAccount; ratings: CanaryRelease }
interface Example {
  readonly construct: string;
  readonly props: string;
  /** Several examples of one construct together cover its props (alternatives exclude each other). */
  readonly variants: ReadonlyArray<(w: World) => Record<string, unknown>>;
  readonly build: (scope: Construct, id: string, props: unknown) => unknown;
  /** The chart itself is the construct: no world around it. */
  readonly standalone?: boolean;
}

const CHART_ID = 'c';
const ID = 'x';

function world(dataPlane = DataPlane.ISTIO): World {
  const chart = new MeshChart(Testing.app(), CHART_ID, { dataPlane });
  const ns = new MeshNamespace(chart, 'ns', { name: 'shop' });
  const api = new MeshWorkload(chart, 'api', { app: 'api', image: 'api:1', port: 9090, namespace: ns });
  const reviews = new MeshWorkload(chart, 'reviews', { app: 'reviews', image: 'reviews:1', port: 9080, namespace: ns });
  const sa = new kplus.ServiceAccount(chart, 'sa', { metadata: { name: 'web', namespace: 'shop' } });
  const ratings = new CanaryRelease(chart, 'ratings', { app: 'ratings', port: 9080, namespace: ns, stable: { version: 'v1', image: 'ratings:1' }, canary: { version: 'v2', image: 'ratings:2' }, canaryWeight: 10 });
  return { chart, ns, api, reviews, sa, ratings };
}

const workload = (w: World) => ({
  app: 'web', version: 'v1', image: 'web:1', command: ['node'], args: ['server.js'], env: { MODE: 'prod' },
  port: 8080, portName: 'http-web', servicePort: 80, appProtocol: 'http', targetPortByName: true, service: true,
  serviceName: 'web-svc', serviceSelector: { app: 'web' }, deploymentName: 'web-v1', namespace: w.ns, replicas: 2, mesh: true,
  podLabels: { team: 'a' }, podAnnotations: { note: 'x' }, security: { user: 1000, group: 1000, readOnlyRootFilesystem: true },
  resources: { cpuMillis: { request: 100, limit: 200 }, memoryMiB: { request: 64, limit: 128 } }, writablePaths: ['/tmp'],
  emptyDirs: [{ name: 'cache', mountPath: '/cache' }], serviceAccount: w.sa,
  serviceLabels: { team: 'a' }, calls: [w.api], startupSeconds: 30, imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
});
const version = (w: World, v: string) => {
  const { app: _a, namespace: _n, mesh: _m, port: _p, service: _s, serviceName: _sn, portName: _pn, version: _v, servicePort: _sp, appProtocol: _ap, ...rest } = workload(w);
  return { ...rest, version: v, deploymentName: `web-${v}`, appProtocol: 'http' };
};
const trafficPolicy = {
  loadBalancer: 'LEAST_REQUEST', tls: 'ISTIO_MUTUAL',
  connectionPool: { tcp: { maxConnections: 100, connectTimeout: '1s', tcpKeepalive: { probes: 3, time: '60s', interval: '10s' } }, http: { http1MaxPendingRequests: 10, http2MaxRequests: 100, idleTimeout: '60s', maxRequestsPerConnection: 5, maxRetries: 3 } },
  outlierDetection: { consecutive5xxErrors: 5, consecutiveGatewayErrors: 3, interval: '10s', baseEjectionTime: '30s', maxEjectionPercent: 50, minHealthPercent: 0 },
};
/** The other load balancers: a consistent hash (not beside loadBalancer), one per key and structure. */
const hashPolicies = [
  { consistentHash: { httpHeaderName: 'x-user', ringHash: { minimumRingSize: 1024 } } },
  { consistentHash: { httpCookie: { name: 'session', path: '/', ttl: '0s' }, maglev: { tableSize: 65537 } } },
  { consistentHash: { useSourceIp: true } },
  { consistentHash: { httpQueryParameterName: 'user' } },
];
/** HTTP rules that, together, use every field of the rule model. */
const rules = (w: World) => [
  {
    name: 'jason',
    match: [
      { name: 'by-header', headers: { 'end-user': { exact: 'jason' }, 'x-a': { prefix: 'a' }, 'x-r': { regex: 'r+' }, 'x-p': { present: true } }, withoutHeaders: { 'x-no': { exact: 'n' }, 'x-np': { prefix: 'p' }, 'x-nr': { regex: 'q+' }, 'x-npr': { present: true } } },
      { uri: { exact: '/a' }, method: 'GET', queryParams: { q: { exact: '1' }, r: { regex: '[0-9]+' } }, port: 9080, ignoreUriCase: true },
      { uri: { prefix: '/b' }, method: { exact: 'POST' } },
      { uri: { regex: '/c/[0-9]+' }, method: { regex: 'P.*' } },
      { method: { prefix: 'DEL' } },
    ],
    route: [{ to: w.reviews, port: 9080, weight: 100 }],
    rewrite: { uri: '/v2', authority: 'reviews.internal' },
    timeout: '2s',
    retries: { attempts: 3, perTryTimeout: Duration.parse('500ms'), retryOn: ['5xx', 'reset'] },
    fault: { delay: { fixedDelay: '7s', percentage: 10 }, abort: { httpStatus: 503, percentage: 5 } },
    mirror: { to: w.ratings, subset: 'v2', port: 9080, percentage: 20 },
    headers: { request: { set: { 'x-a': '1' }, add: { 'x-b': '2' }, remove: ['x-c'] }, response: { set: { 'x-d': '4' }, add: { 'x-e': '5' }, remove: ['x-f'] } },
  },
  { match: [{ uri: { prefix: '/old' } }], redirect: { uri: '/new', authority: 'shop.example.com', port: 8443, scheme: 'https', redirectCode: 301 } },
  { timeout: Duration.parse('3s'), route: [{ to: w.ratings, subset: 'v1', weight: 90 }, { to: w.ratings, subset: 'v2', weight: 10 }] },
];

const EXAMPLES: Example[] = [
  {
    construct: 'MeshChart', props: 'MeshChartProps', standalone: true,
    variants: [
      () => ({ dataPlane: DataPlane.NODE_SIDECAR, namespace: 'shop', labels: { team: 'a' }, disableResourceNameHashes: true, sidecar: { image: 'proxy:1', outboundTrafficPolicy: 'REGISTRY_ONLY', pick: 'random', gatewayServiceType: 'NodePort', clusterDomain: 'example.local' }, dropUnsupported: ['policy.outlierDetection', 'route.fault'] }),
      () => ({ dataPlane: DataPlane.GATEWAY_API, namespace: 'shop', gatewayApi: { gatewayClassName: 'cilium', channel: 'experimental', mesh: 'istio-ambient', trafficPolicies: 'istio' } }),
    ],
    build: (scope, id, props) => new MeshChart(scope, id, props as never),
  },
  {
    construct: 'MeshNamespace', props: 'MeshNamespaceProps',
    variants: [() => ({ name: 'store', injection: true, labels: { team: 'a' } })],
    build: (s, id, p) => new MeshNamespace(s, id, p as never),
  },
  {
    construct: 'MeshWorkload', props: 'MeshWorkloadProps',
    variants: [workload],
    build: (s, id, p) => new MeshWorkload(s, id, p as never),
  },
  {
    construct: 'TrafficRoute', props: 'TrafficRouteProps',
    variants: [
      (w) => ({ name: 'reviews', namespace: 'shop', hosts: [w.reviews], http: rules(w) }),
      (w) => ({ name: 'edge', namespace: 'shop', hosts: ['shop.example.com'], gateways: ['shop-gateway'], http: [{ route: [{ to: w.reviews, port: 9080 }] }] }),
    ],
    build: (s, id, p) => new TrafficRoute(s, id, p as never),
  },
  {
    construct: 'DestinationPolicy', props: 'DestinationPolicyProps',
    variants: [(w) => ({ name: 'reviews', namespace: 'shop', service: w.reviews, trafficPolicy, subsets: [{ name: 'v1', labels: { version: 'v1' }, trafficPolicy }, ...hashPolicies.map((p, i) => ({ name: `h${i}`, trafficPolicy: p }))] }),
      ...hashPolicies.map((trafficPolicy) => (w: World) => ({ name: 'reviews', service: w.reviews, trafficPolicy }))],
    build: (s, id, p) => new DestinationPolicy(s, id, p as never),
  },
  {
    construct: 'MeshGateway', props: 'MeshGatewayProps',
    variants: [() => ({
      name: 'shop-gateway', namespace: 'shop', selector: { istio: 'ingressgateway' },
      servers: [{ name: 'http', port: 80, protocol: 'HTTP', hosts: ['shop.example.com'], httpsRedirect: true }, { name: 'https', port: 443, protocol: 'HTTPS', hosts: ['shop.example.com'], tls: { mode: 'SIMPLE', credentialName: 'shop-cert' } }],
    })],
    build: (s, id, p) => new MeshGateway(s, id, p as never),
  },
  {
    construct: 'ServiceEntry', props: 'ServiceEntryProps',
    variants: [
      () => ({
        name: 'orders-db', namespace: 'shop', hosts: ['db.example.com'], addresses: ['10.20.0.0/16'], location: 'MESH_INTERNAL', resolution: 'STATIC',
        ports: [{ number: 5432, protocol: 'TCP', name: 'tcp-db', targetPort: 15432 }],
        endpoints: [{ address: '10.20.0.5', ports: { 'tcp-db': 25432 }, labels: { version: 'v1' }, weight: 3 }], exportTo: ['.'],
      }),
      () => ({ name: 'httpbin', hosts: ['httpbin.org'], ports: [{ number: 443, protocol: 'HTTPS' }], resolution: 'DNS' }),
    ],
    build: (s, id, p) => new ServiceEntry(s, id, p as never),
  },
  {
    construct: 'IngressGateway', props: 'IngressGatewayProps',
    variants: [(w) => ({
      name: 'shop-gateway', routeName: 'shop-ingress', namespace: 'shop', selector: { istio: 'ingressgateway' }, hosts: ['shop.example.com'],
      http: { port: 8080, httpsRedirect: true }, https: { port: 8443, credentialName: 'shop-cert' }, routes: rules(w),
    })],
    build: (s, id, p) => new IngressGateway(s, id, p as never),
  },
  {
    construct: 'WebTier', props: 'WebTierProps',
    variants: [(w) => {
      const { namespace: _n, mesh: _m, ...backend } = workload(w);
      return {
        namespace: w.ns, mesh: true, tierLabel: { key: 'tier', value: 'web' },
        front: { serviceName: 'front', port: 80, routeName: 'front-vs' },
        backends: [{ ...backend, weight: 80 }, { app: 'tomcat', image: 'tomcat:1', port: 8080, weight: 20 }],
        client: { ...backend, app: 'client', deploymentName: 'client', serviceName: 'client', port: 8081 },
      };
    }],
    build: (s, id, p) => new WebTier(s, id, p as never),
  },
  {
    construct: 'CanaryRelease', props: 'CanaryReleaseProps',
    variants: [
      (w) => ({
        app: 'web', serviceName: 'web', port: 8080, portName: 'http', servicePort: 80, namespace: w.ns, routeName: 'web-vs', policyName: 'web-dr',
        stable: version(w, 'v1'), canary: version(w, 'v2'), canaryWeight: 30, canaryHeader: { name: 'x-canary', match: { exact: 'yes' } },
        timeout: '2s', retries: { attempts: 2, perTryTimeout: '500ms', retryOn: ['5xx'] }, trafficPolicy,
      }),
      (w) => ({ app: 'web', port: 8080, namespace: 'shop', stable: { version: 'v1', image: 'web:1' }, canary: { version: 'v2', image: 'web:2' }, steps: [10, 50, 100], currentStep: 1, canaryHeader: { name: 'x-canary', match: { prefix: 'y' } } }),
      (w) => ({ app: 'web', port: 8080, stable: { version: 'v1', image: 'web:1' }, canary: { version: 'v2', image: 'web:2' }, canaryWeight: 10, canaryHeader: { name: 'x-canary', match: { regex: 'y.*' } }, timeout: Duration.parse('1s') }),
      (w) => ({ app: 'web', port: 8080, stable: { version: 'v1', image: 'web:1' }, canary: { version: 'v2', image: 'web:2' }, canaryWeight: 10, canaryHeader: { name: 'x-canary', match: { present: true } } }),
      ...hashPolicies.map((trafficPolicy) => () => ({ app: 'web', port: 8080, stable: { version: 'v1', image: 'web:1' }, canary: { version: 'v2', image: 'web:2' }, canaryWeight: 10, trafficPolicy })),
      (w) => ({ app: 'web', port: 8080, namespace: w.ns, canary: { version: 'v2', image: 'web:2' }, steps: [10, 50], progressiveDelivery: ProgressiveDelivery.argoRollouts({ stepDuration: '5m' }) }),
    ],
    build: (s, id, p) => new CanaryRelease(s, id, p as never),
  },
  {
    construct: 'BookinfoApp', props: 'BookinfoAppProps',
    variants: [
      () => ({ namespace: 'bookinfo', images: { registry: 'docker.io/istio', tag: '1.20.3' }, scenario: 'reviews-80-20', destinationRules: true, upstreamSubsets: true, mutualTls: true,
        gateway: { selector: { istio: 'ingressgateway' }, hosts: ['bookinfo.example.com'], port: 8080, httpsRedirect: true, https: { port: 8443, credentialName: 'bookinfo-cert' } } }),
    ],
    build: (s, id, p) => new BookinfoApp(s, id, p as never),
  },
  {
    construct: 'JaegerAddon', props: 'JaegerAddonProps',
    variants: [
      () => ({ namespace: 'tracing', image: 'jaeger:2', storage: { type: 'memory', maxTraces: 5000 }, ui: { serviceType: 'NodePort', nodePort: 30686, basePath: '/jaeger' },
        resources: { cpuMillis: { request: 100, limit: 200 }, memoryMiB: { request: 64, limit: 128 } }, createNamespace: true }),
      () => ({ storage: { type: 'badger', size: '5Gi', storageClassName: 'standard', retention: '24h' }, ui: { serviceType: 'LoadBalancer' } }),
    ],
    build: (s, id, p) => new JaegerAddon(s, id, p as never),
  },
  {
    construct: 'PrometheusAddon', props: 'PrometheusAddonProps',
    variants: [
      () => ({ namespace: 'monitoring', image: 'prometheus:2', configReloader: true, configReloaderImage: 'reloader:1', retention: '6h', scrapeInterval: '5s',
        ui: { serviceType: 'NodePort', nodePort: 30090 }, resources: { cpuMillis: { request: 100, limit: 200 }, memoryMiB: { request: 64, limit: 128 } }, createNamespace: true }),
    ],
    build: (s, id, p) => new PrometheusAddon(s, id, p as never),
  },
  {
    construct: 'KialiAddon', props: 'KialiAddonProps',
    variants: [
      (w) => ({ namespace: 'monitoring', image: 'kiali:2', prometheus: new PrometheusAddon(w.chart, 'prometheus', { namespace: 'monitoring' }), jaeger: new JaegerAddon(w.chart, 'jaeger', { namespace: 'monitoring' }),
        istioRootNamespace: 'istio-system', viewOnly: false, ui: { serviceType: 'NodePort', nodePort: 30201 },
        resources: { cpuMillis: { request: 10, limit: 200 }, memoryMiB: { request: 64, limit: 256 } }, createNamespace: true }),
    ],
    build: (s, id, p) => new KialiAddon(s, id, p as never),
  },
  {
    construct: 'MeshTracing', props: 'MeshTracingProps',
    variants: [
      (w) => ({ collector: new JaegerAddon(w.chart, 'jaeger'), protocol: 'zipkin', samplingPercentage: 10, providerName: 'jaeger', rootNamespace: 'istio-system' }),
      () => ({ collector: { zipkinHost: 'zipkin.obs.svc.cluster.local', zipkinPort: 9411, otlpHost: 'otel.obs.svc.cluster.local', otlpGrpcPort: 4317, otlpHttpPort: 4318 }, protocol: 'opentelemetry' }),
    ],
    build: (s, id, p) => new MeshTracing(s, id, p as never),
  },
];

// ---------------------------------------------------------------- the walk

type Path = Array<string | number>;
const isPlain = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype;

/** Every path into plain objects and arrays of a value (constructs and Durations are leaves). */
function leaves(v: unknown, at: Path = []): Path[] {
  const here = at.length ? [at] : [];
  if (Array.isArray(v)) return [...here, ...v.flatMap((x, i) => leaves(x, [...at, i]))];
  if (isPlain(v)) return [...here, ...Object.entries(v).flatMap(([k, x]) => leaves(x, [...at, k]))];
  return here;
}

/** `http.0.match.1.headers.end-user.exact` -> `http[].match[].headers{}.exact`, guided by the declared paths. */
function normalize(at: Path, declared: ReadonlySet<string>): string {
  let out = '';
  for (const seg of at) {
    if (typeof seg === 'number') { out += '[]'; continue; }
    const named = out ? `${out}.${seg}` : seg;
    const known = [...declared].some((d) => d === named || d.startsWith(`${named}.`) || d.startsWith(`${named}[]`) || d.startsWith(`${named}{}`));
    out = known ? named : `${out}{}`;
  }
  return out;
}

const get = (root: unknown, at: Path) => at.reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], root);
function set(root: Record<string, unknown>, at: Path, value: unknown): Record<string, unknown> {
  const copy = (o: unknown): unknown => (Array.isArray(o) ? [...o] : isPlain(o) ? { ...o } : o);
  const top = copy(root) as Record<string, unknown>;
  let cur: Record<string | number, unknown> = top;
  at.forEach((k, i) => {
    if (i === at.length - 1) {
      // An array entry cannot be left out, only be undefined (a hole would be skipped by map).
      if (value === DELETE && typeof k === 'string') delete cur[k];
      else if (value === DELETE) cur[k] = undefined;
      else cur[k] = value;
    } else {
      cur[k] = copy(cur[k]);
      cur = cur[k] as Record<string | number, unknown>;
    }
  });
  return top;
}
const DELETE = Symbol('delete');

/** The bad values for a given good one: [label, value, must the construct refuse it?]. */
function badValues(good: unknown, optional: boolean): Array<[string, unknown, boolean]> {
  const wrong: unknown = typeof good === 'string' ? 42 : typeof good === 'number' ? '42' : typeof good === 'boolean' ? 'yes'
    : Array.isArray(good) ? 'not-a-list' : isPlain(good) ? 7 : 42;
  const empty: unknown = typeof good === 'string' ? '' : Array.isArray(good) ? [] : isPlain(good) ? {} : undefined;
  return [
    ['undefined', DELETE, !optional],
    ['null', null, !optional],
    ['wrong type', wrong, true],
    ...(empty !== undefined ? [['empty', empty, false] as [string, unknown, boolean]] : []),
  ];
}

test('constructs/prop-paths.generated.ts, the known keys refused at run time, is current (npm run docs:props)', () => {
  expect(readFileSync(GENERATED, 'utf8')).toBe(propPathsModule());
  expect(Object.keys(PROP_PATHS).sort()).toEqual(EXAMPLES.map((e) => e.props).sort());
});

test('from JavaScript: a TCP route beside http is refused, not dropped; a misspelt key names the one meant; every unknown key in one run', () => {
  const refused = (props: object) => {
    const c = new MeshChart(Testing.app(), 'c');
    try { new TrafficRoute(c, 'r', props as never); } catch (e) { return (e as Error).message; }
    return 'accepted';
  };
  const http = [{ route: [{ to: { serviceName: 'web' } }] }];
  expect(refused({ name: 'web', hosts: ['web'], http, tcp: [{ route: [] }] }))
    .toBe('c/r: tcp is [{"route":[]}]; expected no tcp routes: the model routes HTTP only, so no data plane gets them. The node sidecar could not carry them either: it sees only the clients that use it as a proxy (HTTP_PROXY, HTTPS_PROXY), with no transparent interception, and a TCP connection names no host to route on. Instead: a ServiceEntry with the port and its addresses (clients that use HTTPS_PROXY reach it through a CONNECT tunnel, under the outbound policy), a Kubernetes Service (kube-proxy balances the connections), or DataPlane.ISTIO with the VirtualService\'s tcp section written as an ApiObject');
  expect(refused({ name: 'web', hosts: ['web'], http, tls: [{ match: [{ sniHosts: ['web'] }], route: [] }] }))
    .toMatch(/^c\/r: tls is .*; expected no tls routes: .*a TLS connection names its host only in the SNI of a handshake the proxy does not terminate\. Instead: /);
  expect(refused({ name: 'web', hosts: ['web'], http: [{ ...http[0], timout: '1s' }] }))
    .toBe('c/r: http[0].timout is "1s"; expected a prop that TrafficRouteProps (at http[]) declares: did you mean "timeout"? (fault, headers, match, mirror, name, redirect, retries, rewrite, route, timeout)');
  expect(refused({ name: 'web', hosts: ['web'], htpp: http, gateway: ['g'] }))
    .toMatch(/^2 problem\(s\) in c\/r, refused at synth \(nothing is written\):\n {2}- c\/r: htpp is .*did you mean "http"\?.*\n {2}- c\/r: gateway is \["g"\]; .*did you mean "gateways"\?/);
});

describe.each(EXAMPLES)('$construct', (ex) => {
  const declared = propPaths(ex.props);
  const declaredSet = new Set(declared.map((p) => p.path));
  const make = (variant: number, mutate?: (props: Record<string, unknown>) => Record<string, unknown>) => {
    if (ex.standalone) {
      const props = ex.variants[variant]({} as World);
      return () => ex.build(Testing.app(), CHART_ID, mutate ? mutate(props) : props);
    }
    const w = world();
    const props = ex.variants[variant](w);
    return () => ex.build(w.chart, ID, mutate ? mutate(props) : props);
  };
  const where = ex.standalone ? CHART_ID : `${CHART_ID}/${ID}`;

  test('a key the props interface does not declare is refused, at any depth, with the nearest valid name', () => {
    // Each object the examples pass (not records: those keys are the user's), with one of its keys misspelt.
    const props = ex.standalone ? ex.variants[0]({} as World) : ex.variants[0](world());
    const objects = [[] as string[], ...leaves(props).map((at) => at.slice(0, -1))]
      .filter((at, i, all) => all.findIndex((x) => x.join('.') === at.join('.')) === i)
      .filter((at) => {
        const v = at.length ? get(props, at) : props;
        const decl = normalize(at, declaredSet);
        return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === Object.prototype
          && Object.keys(v).length > 0 && declared.some((d) => d.path.startsWith(decl ? `${decl}.` : ''))
          && !declared.some((d) => d.path.startsWith(`${decl}{}`));
      });
    expect(objects.length).toBeGreaterThan(0);
    const failures: string[] = [];
    for (const at of objects) {
      const obj = (at.length ? get(props, at) : props) as Record<string, unknown>;
      const key = Object.keys(obj).sort((a, b) => b.length - a.length)[0];
      const typo = `${key.slice(0, -1)}${key.slice(-1) === 'x' ? 'y' : 'x'}`;
      const field = [...at, typo].join('.').replace(/\.(\d+)(?=\.|$)/g, '[$1]');
      let error: unknown;
      try {
        make(0, (p) => (at.length ? set(p, at, { ...obj, [typo]: obj[key] }) : { ...p, [typo]: p[key] }))();
      } catch (e) { error = e; }
      if (!(error instanceof MeshValidationError)) failures.push(`${field}: ${error === undefined ? 'accepted' : (error as Error).message}`);
      else if (error.where !== where || error.field !== field || !error.expected.includes(`did you mean "${key}"?`)) failures.push(`${field}: ${error.message}`);
    }
    expect(failures).toEqual([]);
  });

  test('the examples are valid and use every declared prop', () => {
    const used = new Set<string>();
    ex.variants.forEach((v, i) => {
      expect(make(i)).not.toThrow();
      const props = ex.standalone ? v({} as World) : v(world());
      for (const at of leaves(props)) used.add(normalize(at, declaredSet));
    });
    expect(declared.map((p) => p.path).filter((p) => !used.has(p))).toEqual([]);
  });

  const cases = ex.variants.flatMap((v, variant) => {
    const props = ex.standalone ? v({} as World) : v(world());
    return leaves(props).flatMap((at) => {
      const decl: PropPath | undefined = declared.find((d) => d.path === normalize(at, declaredSet));
      // Record entries (env, labels, headers) are the user's keys: any key may be left out.
      const optional = decl ? decl.optional : true;
      return badValues(get(props, at), optional).map(([label, value, refuse]) => ({ variant, at, label, value, refuse, name: `${at.join('.')} ${label}` }));
    });
  });

  // One test per construct: the list of every bad value it mishandled, so a failure shows them all.
  test(`refuses bad values of every prop with a MeshValidationError naming ${where} (${cases.length} values)`, () => {
    const failures: string[] = [];
    for (const { variant, at, value, refuse, name } of cases) {
      let error: unknown;
      try { make(variant, (p) => set(p, at, value))(); } catch (e) { error = e; }
      if (error === undefined) {
        if (refuse) failures.push(`${name}: accepted; expected a MeshValidationError`);
      } else if (!(error instanceof MeshValidationError)) {
        failures.push(`${name}: ${(error as Error).stack?.split('\n').slice(0, 2).join(' ')}`);
      } else if (!error.where.startsWith(where)) {
        failures.push(`${name}: names ${error.where}, not the construct path ${where}`);
      }
    }
    expect(failures).toEqual([]);
  });
});
