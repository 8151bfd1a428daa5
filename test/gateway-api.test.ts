// The Gateway API data plane: the same charts as HTTPRoute (GAMMA), Gateway and per-version
// Services, checked against Gateway API's CRD schemas and its routing semantics (weights,
// matches, filters, rule precedence); what HTTPRoute cannot express is refused at synth.
import { App, Testing } from 'cdk8s';
import { CHART_VARIANTS, CHARTS, GATEWAY_API_INEXPRESSIBLE } from '../charts';
import {
  CanaryRelease, DataPlane, DestinationPolicy, GatewayApiOptions, MeshChart, MeshGateway, MeshNamespace, MeshWorkload, TrafficRoute,
} from '../constructs';
import { ServiceRef } from '../model';
import { crdError } from './support/schemas';
import { find, K8sObject, meshSynth, ofKind, refusalsOf, synthVariant } from './support/synth';

const gwChart = (gatewayApi: GatewayApiOptions = {}, namespace = 'shop') =>
  new MeshChart(Testing.app(), 'c', { dataPlane: DataPlane.GATEWAY_API, namespace, gatewayApi });
const synth = (chart: MeshChart) => meshSynth(chart);
const reviews: ServiceRef = { serviceName: 'reviews', subsetNames: ['v1', 'v2'], servicePorts: [9080] };

/** A chart with reviews v1/v2 behind one Service and their subsets, plus whatever `add` builds. */
function shop(add: (c: MeshChart) => void, gatewayApi: GatewayApiOptions = {}): K8sObject[] {
  const c = gwChart(gatewayApi);
  new MeshWorkload(c, 'v1', { app: 'reviews', version: 'v1', image: 'reviews:1', port: 9080, deploymentName: 'reviews-v1' });
  new MeshWorkload(c, 'v2', { app: 'reviews', version: 'v2', image: 'reviews:2', port: 9080, deploymentName: 'reviews-v2', service: false });
  new DestinationPolicy(c, 'dr', { name: 'reviews', service: reviews, subsets: [{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }] });
  add(c);
  const objs = synth(c);
  for (const o of objs.filter((x) => x.apiVersion.startsWith('gateway.networking.k8s.io/'))) {
    expect([o.kind, o.metadata.name, crdError(o, gatewayApi.channel ?? 'standard')]).toEqual([o.kind, o.metadata.name, undefined]);
  }
  return objs;
}
const route = (objs: K8sObject[], name: string) => find(objs, 'HTTPRoute', name, 'shop').spec;
const refusal = refusalsOf;

describe('every chart on the Gateway API data plane', () => {
  const variants = CHART_VARIANTS.filter((v) => v.dataPlane === DataPlane.GATEWAY_API);

  test('is synthesized, except the charts listed as inexpressible', () => {
    expect(variants.map((v) => v.entry.name).sort()).toEqual(CHARTS.map((c) => c.name).filter((n) => !(n in GATEWAY_API_INEXPRESSIBLE)).sort());
  });

  test.each(variants.map((v) => [v.id, v]))('%s: no VirtualService, DestinationRule or Istio Gateway; every backendRef is a Service of the chart on one of its ports', (_id, v) => {
    const objs = synthVariant(v);
    expect(objs.filter((o) => o.apiVersion.startsWith('networking.istio.io/'))).toEqual([]);
    const services = new Map(ofKind(objs, 'Service').map((s) => [`${s.metadata.namespace ?? ''}/${s.metadata.name}`, s.spec.ports.map((p: { port: number }) => p.port)]));
    for (const r of ofKind(objs, 'HTTPRoute')) {
      for (const rule of r.spec.rules) {
        for (const b of rule.backendRefs ?? []) {
          expect([b.name, services.get(`${b.namespace ?? r.metadata.namespace ?? ''}/${b.name}`)]).toEqual([b.name, expect.arrayContaining([b.port])]);
        }
      }
    }
  });

  test.each(Object.entries(GATEWAY_API_INEXPRESSIBLE))('%s is refused at synth, naming the construct and the feature (%s)', (name) => {
    const entry = CHARTS.find((c) => c.name === name)!;
    const e = refusal(() => entry.create(new App(), `${name}-gateway-api`, { dataPlane: DataPlane.GATEWAY_API }));
    const why = name.includes('-canary-')
      ? 'progressiveDelivery is "Flagger"; expected no CanaryRelease handed to Flagger \\(ProgressiveDelivery\\.flagger\\) on the gateway-api data plane \\(Flagger\'s Gateway API provider writes its own HTTPRoute'
      : 'http\\[0\\]\\.fault is "(delay|abort)"; expected no fault injection \\(delay, abort\\) on the gateway-api data plane \\(HTTPRoute has no fault filter\\)';
    expect(e.message).toMatch(new RegExp(`^${name}-gateway-api/\\S+: ${why}`));
  });

  test('a Bookinfo scenario routes as on Istio: jason to reviews-v2 by header (outranks the catch-all), everyone else to reviews-v1', () => {
    const objs = synthVariant(variants.find((v) => v.id === 'bookinfo-jason-v2-gateway-api')!);
    const r = find(objs, 'HTTPRoute', 'reviews', 'bookinfo').spec;
    expect(r.parentRefs).toEqual([{ group: '', kind: 'Service', name: 'reviews' }]);
    expect(r.rules).toEqual([
      { matches: [{ headers: [{ type: 'Exact', name: 'end-user', value: 'jason' }] }], backendRefs: [{ name: 'reviews-v2', port: 9080 }] },
      { backendRefs: [{ name: 'reviews-v1', port: 9080 }] },
    ]);
    const v2 = find(objs, 'Service', 'reviews-v2', 'bookinfo');
    expect(v2.spec.selector).toEqual({ app: 'reviews', version: 'v2' });
    // The gateway's five paths, on the listener the Istio server described.
    const gw = find(objs, 'Gateway', 'bookinfo-gateway', 'bookinfo').spec;
    expect(gw).toEqual({ gatewayClassName: 'istio', listeners: [{ name: 'http', port: 8080, protocol: 'HTTP' }] });
    const page = find(objs, 'HTTPRoute', 'bookinfo', 'bookinfo').spec;
    expect(page.parentRefs).toEqual([{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'bookinfo-gateway', sectionName: 'http' }]);
    expect(page.rules[0].matches.map((m: { path: { type: string; value: string } }) => `${m.path.type} ${m.path.value}`))
      .toEqual(['Exact /productpage', 'PathPrefix /static', 'Exact /login', 'Exact /logout', 'PathPrefix /api/v1/products']);
  });

  test('the 70/30 canary keeps its weights and its 2 ms timeout', () => {
    const objs = synthVariant(variants.find((v) => v.id === 'springboot-canary-timeout-gateway-api')!);
    const r = find(objs, 'HTTPRoute', 'springbootapp-svc-vs', 'springistiodemo').spec;
    expect(r.rules).toEqual([{
      backendRefs: [{ name: 'springbootapp-svc-v1', port: 8080, weight: 70 }, { name: 'springbootapp-svc-v2', port: 8080, weight: 30 }],
      timeouts: { request: '2ms' },
    }]);
  });
});

describe('routes', () => {
  test('matches: paths, headers (prefix and presence as RE2), query parameters, method', () => {
    const objs = shop((c) => new TrafficRoute(c, 'r', {
      name: 'reviews', hosts: [reviews], http: [
        { match: [{ uri: { exact: '/a' }, method: 'POST', headers: { 'x-team': { prefix: 'blue.' }, 'x-debug': { present: true } }, queryParams: { v: { regex: '[0-9]+' } } }], route: [{ to: reviews, subset: 'v2' }] },
        { match: [{ uri: { prefix: '/api' } }, { uri: { regex: '/r/[a-z]+' } }], route: [{ to: reviews, subset: 'v1', weight: 90 }, { to: reviews, subset: 'v2', weight: 10 }] },
      ],
    }));
    const r = route(objs, 'reviews');
    expect(r.rules[0].matches).toEqual([{
      path: { type: 'Exact', value: '/a' },
      headers: [{ type: 'RegularExpression', name: 'x-team', value: 'blue\\..*' }, { type: 'RegularExpression', name: 'x-debug', value: '.*' }],
      queryParams: [{ type: 'RegularExpression', name: 'v', value: '[0-9]+' }],
      method: 'POST',
    }]);
    expect(r.rules[1]).toEqual({
      matches: [{ path: { type: 'PathPrefix', value: '/api' } }, { path: { type: 'RegularExpression', value: '/r/[a-z]+' } }],
      backendRefs: [{ name: 'reviews-v1', port: 9080, weight: 90 }, { name: 'reviews-v2', port: 9080, weight: 10 }],
    });
    // A catch-all after a regex rule would win over it (Istio ranks PathPrefix "/" above regexes): refused.
    expect(() => shop((c) => new TrafficRoute(c, 'r', {
      name: 'reviews', hosts: [reviews], http: [{ match: [{ uri: { regex: '/r/[a-z]+' } }], route: [{ to: reviews, subset: 'v2' }] }, { route: [{ to: reviews, subset: 'v1' }] }],
    }))).toThrow(/http\[1\]\.match is "any request"; expected a rule that does not outrank the earlier http\[0\] \(uri regex/);
  });

  test('Host set or added in request headers becomes URLRewrite hostname (merged with a path rewrite), never a header modifier', () => {
    const objs = shop((c) => new TrafficRoute(c, 'r', {
      name: 'reviews', hosts: [reviews], http: [
        { match: [{ uri: { prefix: '/a/' } }], rewrite: { uri: '/' }, headers: { request: { set: { Host: 'reviews.internal' } } }, route: [{ to: reviews, subset: 'v1' }] },
        { headers: { request: { add: { host: 'reviews.internal', 'x-mesh': 'gw' } } }, route: [{ to: reviews, subset: 'v1' }] },
      ],
    }));
    const r = route(objs, 'reviews');
    expect(r.rules[0].filters).toEqual([{ type: 'URLRewrite', urlRewrite: { hostname: 'reviews.internal', path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } } }]);
    expect(r.rules[1].filters).toEqual([
      { type: 'RequestHeaderModifier', requestHeaderModifier: { add: [{ name: 'x-mesh', value: 'gw' }] } },
      { type: 'URLRewrite', urlRewrite: { hostname: 'reviews.internal' } },
    ]);
    // URLRewrite hostname is a PreciseHostname: no port.
    expect(() => shop((c) => new TrafficRoute(c, 'r', {
      name: 'reviews', hosts: [reviews], http: [{ headers: { request: { set: { Host: 'reviews.internal:9080' } } }, route: [{ to: reviews, subset: 'v1' }] }],
    }))).toThrow(/http\[0\]\.headers\.request Host is "reviews\.internal:9080"; expected a host name without port or wildcard/);
  });

  test('filters: header changes, mirror with its percent, redirect, and rewrites (one PathPrefix match per ReplacePrefixMatch rule)', () => {
    const objs = shop((c) => new TrafficRoute(c, 'r', {
      name: 'reviews', hosts: [reviews], http: [
        { match: [{ uri: { exact: '/old' } }], redirect: { uri: '/new', authority: 'shop.example.com', redirectCode: 308 } },
        { match: [{ uri: { prefix: '/v1/' } }, { uri: { prefix: '/legacy/' } }], rewrite: { uri: '/' }, route: [{ to: reviews, subset: 'v1' }] },
        { match: [{ uri: { exact: '/health' } }], rewrite: { uri: '/healthz' }, route: [{ to: reviews, subset: 'v1' }] },
        {
          route: [{ to: reviews, subset: 'v1' }], mirror: { to: reviews, subset: 'v2', percentage: 25 },
          headers: { request: { set: { 'x-mesh': 'gw' }, remove: ['x-debug'] }, response: { add: { 'x-served-by': 'reviews' } } },
        },
      ],
    }));
    const r = route(objs, 'reviews');
    expect(r.rules[0]).toEqual({
      matches: [{ path: { type: 'Exact', value: '/old' } }],
      filters: [{ type: 'RequestRedirect', requestRedirect: { hostname: 'shop.example.com', path: { type: 'ReplaceFullPath', replaceFullPath: '/new' }, statusCode: 308 } }],
    });
    // Two prefix blocks with a rewrite: two rules, each with its own PathPrefix (Gateway API's CEL rule).
    const rewrite = { type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } } };
    expect(r.rules.slice(1, 3)).toEqual([
      { matches: [{ path: { type: 'PathPrefix', value: '/v1/' } }], filters: [rewrite], backendRefs: [{ name: 'reviews-v1', port: 9080 }] },
      { matches: [{ path: { type: 'PathPrefix', value: '/legacy/' } }], filters: [rewrite], backendRefs: [{ name: 'reviews-v1', port: 9080 }] },
    ]);
    expect(r.rules[3].filters).toEqual([{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplaceFullPath', replaceFullPath: '/healthz' } } }]);
    for (const rule of r.rules) {
      if (rule.filters?.some((f: { urlRewrite?: { path?: { type: string } } }) => f.urlRewrite?.path?.type === 'ReplacePrefixMatch')) {
        expect(rule.matches.filter((m: { path?: { type: string } }) => m.path?.type === 'PathPrefix')).toHaveLength(1);
      }
    }
    expect(r.rules[4].filters).toEqual([
      { type: 'RequestHeaderModifier', requestHeaderModifier: { set: [{ name: 'x-mesh', value: 'gw' }], remove: ['x-debug'] } },
      { type: 'ResponseHeaderModifier', responseHeaderModifier: { add: [{ name: 'x-served-by', value: 'reviews' }] } },
      { type: 'RequestMirror', requestMirror: { backendRef: { name: 'reviews-v2', port: 9080 }, percent: 25 } },
    ]);
  });

  test('retries: on the experimental channel as the retry field (codes, attempts), perTryTimeout as backendRequest', () => {
    const objs = shop((c) => new TrafficRoute(c, 'r', {
      name: 'reviews', hosts: [reviews], http: [{ route: [{ to: reviews, subset: 'v1' }], timeout: '10s', retries: { attempts: 3, perTryTimeout: '2.5s', retryOn: ['gateway-error', '500'] } }],
    }), { channel: 'experimental' });
    expect(route(objs, 'reviews').rules[0]).toEqual({
      backendRefs: [{ name: 'reviews-v1', port: 9080 }], timeouts: { request: '10s', backendRequest: '2500ms' }, retry: { attempts: 3, codes: [500, 502, 503, 504] },
    });
  });

  test('a consumer in another namespace: backendRefs there get a ReferenceGrant; the Service parentRef names its namespace', () => {
    const objs = shop((c) => new TrafficRoute(c, 'r', {
      name: 'to-ratings', namespace: 'client', hosts: ['ratings.shop'], http: [{ route: [{ to: { serviceName: 'ratings', serviceNamespace: 'shop', servicePorts: [9080] } }] }],
    }));
    const r = find(objs, 'HTTPRoute', 'to-ratings', 'client').spec;
    expect(r.parentRefs).toEqual([{ group: '', kind: 'Service', name: 'ratings', namespace: 'shop' }]);
    expect(r.rules[0].backendRefs).toEqual([{ name: 'ratings', namespace: 'shop', port: 9080 }]);
    expect(find(objs, 'ReferenceGrant', 'httproutes-from-client', 'shop').spec).toEqual({
      from: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'client' }], to: [{ group: '', kind: 'Service' }],
    });
  });
});

describe('gateways', () => {
  test('listeners per host, HTTPS with certificateRefs, httpsRedirect as a redirect route; routes bind by sectionName; a route from another namespace opens the listeners', () => {
    const objs = shop((c) => {
      new MeshGateway(c, 'gw', {
        name: 'shop-gw', servers: [
          { port: 80, protocol: 'HTTP', name: 'http', hosts: ['shop.example.com'], httpsRedirect: true },
          { port: 443, protocol: 'HTTPS', name: 'https', hosts: ['shop.example.com', 'api.example.com'], tls: { mode: 'SIMPLE', credentialName: 'shop-cert' } },
        ],
      });
      new TrafficRoute(c, 'api', { name: 'api', namespace: 'apis', hosts: ['api.example.com'], gateways: ['shop/shop-gw'], http: [{ route: [{ to: { ...reviews, serviceNamespace: 'shop' }, subset: 'v1' }] }] });
    }, { gatewayClassName: 'eg' });
    const gw = find(objs, 'Gateway', 'shop-gw', 'shop').spec;
    const open = { allowedRoutes: { namespaces: { from: 'All' } } };
    expect(gw).toEqual({
      gatewayClassName: 'eg',
      listeners: [
        { name: 'http', hostname: 'shop.example.com', port: 80, protocol: 'HTTP', ...open },
        { name: 'https-0', hostname: 'shop.example.com', port: 443, protocol: 'HTTPS', tls: { mode: 'Terminate', certificateRefs: [{ kind: 'Secret', name: 'shop-cert' }] }, ...open },
        { name: 'https-1', hostname: 'api.example.com', port: 443, protocol: 'HTTPS', tls: { mode: 'Terminate', certificateRefs: [{ kind: 'Secret', name: 'shop-cert' }] }, ...open },
      ],
    });
    expect(find(objs, 'HTTPRoute', 'shop-gw-https-redirect', 'shop').spec).toEqual({
      parentRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'shop-gw', sectionName: 'http' }],
      rules: [{ filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https', statusCode: 301 } }] }],
    });
    const api = find(objs, 'HTTPRoute', 'api', 'apis').spec;
    expect(api.parentRefs).toEqual([{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'shop-gw', namespace: 'shop', sectionName: 'https-1' }]);
    expect(api.hostnames).toEqual(['api.example.com']);
  });
});

describe('the mesh that injects', () => {
  const pods = (mesh: GatewayApiOptions['mesh']) => {
    const c = gwChart({ mesh }, 'plain');
    const ns = new MeshNamespace(c, 'ns', { name: 'store' });
    new MeshWorkload(c, 'in', { app: 'a', image: 'a:1', port: 8080 });
    new MeshWorkload(c, 'out', { app: 'b', image: 'b:1', port: 8080, namespace: ns, mesh: false });
    const objs = synth(c);
    return { ns: find(objs, 'Namespace', 'store').metadata, a: find(objs, 'Deployment', 'a', 'plain').spec.template.metadata, b: find(objs, 'Deployment', 'b', 'store').spec.template.metadata };
  };
  test('Istio sidecars (the default) as on DataPlane.ISTIO; ambient by label; Linkerd by annotation; none leaves pods alone', () => {
    const istio = pods(undefined);
    expect([istio.ns.labels?.['istio-injection'], istio.a.labels['sidecar.istio.io/inject'], istio.b.labels['sidecar.istio.io/inject']]).toEqual(['enabled', 'true', 'false']);
    const ambient = pods('istio-ambient');
    expect([ambient.ns.labels?.['istio.io/dataplane-mode'], ambient.a.labels['istio.io/dataplane-mode'], ambient.b.labels['istio.io/dataplane-mode']]).toEqual(['ambient', 'ambient', 'none']);
    const linkerd = pods('linkerd');
    expect([linkerd.ns.annotations?.['linkerd.io/inject'], linkerd.a.annotations?.['linkerd.io/inject'], linkerd.b.annotations?.['linkerd.io/inject']]).toEqual(['enabled', 'enabled', 'disabled']);
    const none = pods('none');
    expect(JSON.stringify(none)).not.toMatch(/istio|linkerd/);
  });
});

describe('what HTTPRoute cannot express is refused at synth, with the construct path, the value and why', () => {
  const r1 = { to: reviews, subset: 'v1' };
  const bad = (rule: object, gatewayApi: GatewayApiOptions = {}) => refusal(() => shop((c) => new TrafficRoute(c, 'r', { name: 'reviews', hosts: [reviews], http: [rule] as never }), gatewayApi)).message;
  test.each([
    ['fault delay', { route: [r1], fault: { delay: { fixedDelay: '7s', percentage: 100 } } }, /^c\/r: http\[0\]\.fault is "delay"; expected no fault injection/],
    ['withoutHeaders', { match: [{ withoutHeaders: { 'end-user': { exact: 'jason' } } }], route: [r1] }, /^c\/r: http\[0\]\.match\[0\]\.withoutHeaders is \["end-user"\]; expected no withoutHeaders/],
    ['ignoreUriCase', { match: [{ uri: { prefix: '/a' }, ignoreUriCase: true }], route: [r1] }, /ignoreUriCase is true; expected no ignoreUriCase on the gateway-api data plane \(HTTPRouteMatch has no case-insensitive path\)/],
    ['port match', { match: [{ port: 9080 }], route: [r1] }, /match\[0\]\.port is 9080; expected no port match on the gateway-api data plane/],
    ['method by regex', { match: [{ method: { regex: 'GET|HEAD' } }], route: [r1] }, /method is "GET\|HEAD"; expected an exact method/],
    ['retries on the standard channel', { route: [r1], retries: { attempts: 2 } }, /http\[0\]\.retries is "2 attempts"; expected no retries on the Gateway API standard channel .*gatewayApi\.channel to "experimental"/],
    ['a sub-millisecond timeout', { route: [r1], timeout: '1.5ms' }, /http\[0\]\.timeout is "0\.0015s"; expected a whole number of milliseconds/],
  ])('%s', (_name, rule, message) => {
    expect(bad(rule)).toMatch(message);
  });

  test('retry conditions other than status codes, even on the experimental channel', () => {
    expect(bad({ route: [r1], retries: { attempts: 2, retryOn: ['connect-failure', '503'] } }, { channel: 'experimental' }))
      .toMatch(/http\[0\]\.retries\.retryOn is "connect-failure"; expected status codes only/);
  });

  test('a rule order Gateway API would change: a later exact path inside an earlier prefix', () => {
    const e = refusal(() => shop((c) => new TrafficRoute(c, 'r', {
      name: 'reviews', hosts: [reviews], http: [
        { match: [{ uri: { prefix: '/api' } }], route: [r1] },
        { match: [{ uri: { exact: '/api/x' } }], route: [{ to: reviews, subset: 'v2' }] },
      ],
    })));
    expect(e.message).toMatch(/^c\/r: http\[1\]\.match is "uri exact \/api\/x"; expected a rule that does not outrank the earlier http\[0\] \(uri prefix \/api\)/);
    // Exclusive matches may come in any order.
    expect(() => shop((c) => new TrafficRoute(c, 'r', {
      name: 'reviews', hosts: [reviews], http: [
        { match: [{ uri: { prefix: '/api' } }], route: [r1] },
        { match: [{ uri: { exact: '/shop' } }], route: [{ to: reviews, subset: 'v2' }] },
      ],
    }))).not.toThrow();
  });

  test('an external host as a mesh route host (GAMMA attaches to Services)', () => {
    const e = refusal(() => shop((c) => new TrafficRoute(c, 'r', { name: 'ext', hosts: ['api.example.com'], http: [{ route: [r1] }] })));
    expect(e.message).toMatch(/^c\/r: hosts\[0\] is "api\.example\.com"; expected no host or destination outside the cluster .* \(GAMMA routes attach to Services/);
  });

  test('traffic policies: refused by default; with trafficPolicies "istio" emitted as DestinationRules for the Service hosts', () => {
    const withPolicy = (opts: GatewayApiOptions) => shop((c) => new DestinationPolicy(c, 'lb', {
      name: 'details', service: { serviceName: 'details', servicePorts: [9080] }, trafficPolicy: { loadBalancer: 'LEAST_REQUEST' } as never,
    }), opts);
    expect(refusal(() => withPolicy({})).message).toMatch(/^c\/lb: trafficPolicy\.loadBalancer is "LEAST_REQUEST"; expected no trafficPolicy\.loadBalancer on the gateway-api data plane \(HTTPRoute has no traffic policy\); instead: gatewayApi\.trafficPolicies "istio"/);
    const objs = withPolicy({ trafficPolicies: 'istio' });
    expect(find(objs, 'DestinationRule', 'details', 'shop').spec).toEqual({ host: 'details', trafficPolicy: { loadBalancer: { simple: 'LEAST_REQUEST' } } });
  });

  test('a per-version Service never collides with a user Service: the duplicate is refused, naming both constructs', () => {
    const c = gwChart();
    new CanaryRelease(c, 'cart', { app: 'cart', port: 8080, stable: { version: 'v1', image: 'cart:1' }, canary: { version: 'v2', image: 'cart:2' }, canaryWeight: 10 });
    new MeshWorkload(c, 'user', { app: 'other', image: 'o:1', port: 8080, serviceName: 'cart-v1' });
    expect(() => Testing.synth(c)).toThrow(/Service shop\/cart-v1 is defined twice: by c\/cart\/\S+ and by c\/user\/\S+/);
  });

  test('bad options name the chart and the option', () => {
    expect(() => gwChart({ channel: 'beta' as never })).toThrow(/^c: gatewayApi\.channel is "beta"; expected one of standard, experimental/);
    expect(() => gwChart({ gatewayClassName: 'Not A Name' })).toThrow(/^c: gatewayApi\.gatewayClassName is "Not A Name"; expected a GatewayClass name/);
    expect(() => gwChart({ mesh: 'consul' as never })).toThrow(/gatewayApi\.mesh is "consul"; expected one of istio, istio-ambient, linkerd, none/);
  });

  test('the strict schema check can fail: an unknown HTTPRoute field and a bad path type are caught', () => {
    const objs = synthVariant(CHART_VARIANTS.find((v) => v.id === 'bookinfo-gateway-api')!);
    const r = JSON.parse(JSON.stringify(find(objs, 'HTTPRoute', 'bookinfo', 'bookinfo')));
    r.spec.rules[0].retryPolicy = { attempts: 3 };
    r.spec.rules[0].matches[0].path.type = 'Prefix';
    expect(crdError(r)).toMatch(/retryPolicy/);
    expect(crdError(r)).toMatch(/must be equal to one of the allowed values/);
    // The retry field exists only in the experimental channel's schema.
    const withRetry = JSON.parse(JSON.stringify(find(objs, 'HTTPRoute', 'bookinfo', 'bookinfo')));
    withRetry.spec.rules[0].retry = { attempts: 2 };
    expect(crdError(withRetry, 'standard')).toMatch(/retry/);
    expect(crdError(withRetry, 'experimental')).toBeUndefined();
  });
});
