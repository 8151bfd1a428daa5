// The capability table (model/capabilities.ts) against the three renderers: every feature a
// data plane cannot carry is refused there, naming the construct, field, value and plane,
// or dropped when the chart accepts it, and then said in lint (MESH034) and the plan. Every
// refusal of a chart is reported in one run. Lint reads a chart on any plane through its
// Istio twin, at the user's construct paths.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Testing } from 'cdk8s';
import { lintBeforeWrite } from '../apps/run';
import { CHARTS } from '../charts';
import {
  CanaryRelease, DataPlane, DestinationPolicy, IngressGateway, JaegerAddon, MeshChart, MeshChartProps, MeshGateway, MeshWorkload, ProgressiveDelivery, TrafficRoute,
} from '../constructs';
import { lintChart } from '../lint/sources';
import { CAPABILITIES, DATA_PLANE_NAMES, DataPlaneName, externalHost, ServiceRef } from '../model';
import { chartPlan, planOfChart } from '../plan/sources';
import { withCapabilityTable } from '../scripts/capabilities';
import { find, meshSynth, ofKind, refusalsOf } from './support/synth';

const chart = (dataPlane: DataPlaneName, props: MeshChartProps = {}) =>
  new MeshChart(Testing.app(), 'c', { dataPlane: dataPlane as DataPlane, namespace: 'shop', ...props });

/** reviews v1 and v2 behind one Service, their subsets, and what `add` builds. */
function shop(c: MeshChart, add: (c: MeshChart, reviews: ServiceRef) => void): MeshChart {
  new MeshWorkload(c, 'v1', { app: 'reviews', version: 'v1', image: 'reviews:1', port: 9080, deploymentName: 'reviews-v1' });
  new MeshWorkload(c, 'v2', { app: 'reviews', version: 'v2', image: 'reviews:2', port: 9080, deploymentName: 'reviews-v2', service: false });
  const reviews: ServiceRef = { serviceName: 'reviews', subsetNames: ['v1', 'v2'], servicePorts: [9080] };
  add(c, reviews);
  return c;
}
const route = (http: object) => (c: MeshChart, reviews: ServiceRef) => new TrafficRoute(c, 'r', { name: 'reviews', hosts: [reviews], http: [{ route: [{ to: reviews }], ...http }] as never });
const policy = (trafficPolicy: object) => (c: MeshChart, reviews: ServiceRef) => new DestinationPolicy(c, 'dr', { name: 'reviews', service: reviews, trafficPolicy: trafficPolicy as never });
const server = (s: object) => (c: MeshChart) => new MeshGateway(c, 'gw', { name: 'gw', servers: [{ port: 443, hosts: ['shop.example.com'], ...s }] as never });

const release = (pd: ProgressiveDelivery, header = false) => (c: MeshChart) => new CanaryRelease(c, 'r', {
  app: 'cart', port: 8080, canary: { version: 'v2', image: 'cart:2' }, steps: [10, 50], progressiveDelivery: pd,
  ...(header ? { canaryHeader: { name: 'x-canary', match: { exact: 'yes' } } } : {}),
});

/** One use of each feature that some data plane cannot carry, and the field it is refused at. */
const EXAMPLES: Record<string, { add: (c: MeshChart, reviews: ServiceRef) => unknown; field: string }> = {
  'route.fault': { add: route({ fault: { abort: { httpStatus: 500, percentage: 100 } } }), field: 'http[0].fault' },
  'route.externalHost': { add: (c) => new TrafficRoute(c, 'r', { name: 'ext', hosts: ['api.example.com'], http: [{ route: [{ to: externalHost('api.example.com', [443]) }] }] }), field: 'hosts[0]' },
  'match.withoutHeaders': { add: route({ match: [{ withoutHeaders: { 'end-user': { exact: 'jason' } } }] }), field: 'http[0].match[0].withoutHeaders' },
  'match.ignoreUriCase': { add: route({ match: [{ uri: { prefix: '/api' }, ignoreUriCase: true }] }), field: 'http[0].match[0].ignoreUriCase' },
  'match.port': { add: route({ match: [{ port: 9080 }] }), field: 'http[0].match[0].port' },
  'policy.loadBalancer': { add: policy({ loadBalancer: 'LEAST_REQUEST' }), field: 'trafficPolicy.loadBalancer' },
  'policy.consistentHash': { add: policy({ consistentHash: { httpHeaderName: 'x-user' } }), field: 'trafficPolicy.consistentHash' },
  'policy.connectionPool': { add: policy({ connectionPool: { tcp: { maxConnections: 1 } } }), field: 'trafficPolicy.connectionPool' },
  'policy.outlierDetection': { add: policy({ outlierDetection: { consecutive5xxErrors: 1 } }), field: 'trafficPolicy.outlierDetection' },
  'policy.tls': { add: policy({ tls: 'ISTIO_MUTUAL' }), field: 'trafficPolicy.tls' },
  'gateway.protocol.HTTP2': { add: server({ protocol: 'HTTP2' }), field: 'servers[0].protocol' },
  'gateway.protocol.GRPC': { add: server({ protocol: 'GRPC' }), field: 'servers[0].protocol' },
  'gateway.protocol.TCP': { add: server({ protocol: 'TCP' }), field: 'servers[0].protocol' },
  'gateway.protocol.TLS': { add: server({ protocol: 'TLS', tls: { mode: 'PASSTHROUGH' } }), field: 'servers[0].protocol' },
  'gateway.tls.MUTUAL': { add: server({ protocol: 'HTTPS', tls: { mode: 'MUTUAL', credentialName: 'c' } }), field: 'servers[0].tls.mode' },
  'gateway.tls.PASSTHROUGH': { add: server({ protocol: 'HTTPS', tls: { mode: 'PASSTHROUGH' } }), field: 'servers[0].tls.mode' },
  'gateway.tls.ISTIO_MUTUAL': { add: server({ protocol: 'HTTPS', tls: { mode: 'ISTIO_MUTUAL' } }), field: 'servers[0].tls.mode' },
  'gateway.hostNamespace': { add: server({ port: 80, hosts: ['shop/shop.example.com'] }), field: 'servers[0].hosts[0]' },
  'release.argoRollouts.headerRoute': { add: release(ProgressiveDelivery.argoRollouts(), true), field: 'canaryHeader' },
  'release.flagger': { add: release(ProgressiveDelivery.flagger()), field: 'progressiveDelivery' },
};

test('the README\'s table "What each data plane carries" is the capability table (npm run docs:capabilities)', () => {
  const readme = readFileSync(join(__dirname, '..', 'docs', 'data-planes.md'), 'utf8');
  expect(withCapabilityTable(readme)).toBe(readme);
});

test('every feature some data plane cannot carry has an example here, and ids are unique', () => {
  const unsupported = CAPABILITIES.filter((f) => DATA_PLANE_NAMES.some((p) => f.planes[p].level === 'unsupported')).map((f) => f.id);
  expect(Object.keys(EXAMPLES).sort()).toEqual(unsupported.sort());
  expect(new Set(CAPABILITIES.map((f) => f.id)).size).toBe(CAPABILITIES.length);
  // Istio is the reference: it carries everything the model has.
  expect(CAPABILITIES.filter((f) => f.planes.istio.level !== 'supported')).toEqual([]);
});

describe.each(DATA_PLANE_NAMES)('on the %s data plane', (plane) => {
  test.each(Object.keys(EXAMPLES))('%s: refused at synth with path, field, value, plane, why and instead, as the table says; else synthesized', (id) => {
    const ex = EXAMPLES[id];
    const support = CAPABILITIES.find((f) => f.id === id)!.planes[plane];
    const build = () => shop(chart(plane), ex.add);
    if (support.level !== 'unsupported') {
      expect(() => meshSynth(build())).not.toThrow();
      return;
    }
    const { problems } = refusalsOf(build);
    const mine = problems.filter((p) => p.includes(`: ${ex.field} is `));
    expect(mine).toHaveLength(1);
    expect(mine[0]).toMatch(/^c\/(r|dr|gw): /);
    expect(mine[0]).toContain(`on the ${plane} data plane (${support.why}); instead: ${support.instead}`);
  });
});

describe('dropUnsupported: what a chart accepts losing is dropped, then said in lint and in the plan', () => {
  const withPolicy = (plane: DataPlaneName, dropUnsupported?: string[]) => shop(chart(plane, { dropUnsupported }), (c, reviews) => {
    new DestinationPolicy(c, 'dr', {
      name: 'reviews', service: reviews,
      trafficPolicy: { loadBalancer: 'RANDOM', outlierDetection: { consecutive5xxErrors: 3 }, tls: 'SIMPLE' },
      subsets: [{ name: 'v1' }, { name: 'v2', trafficPolicy: { connectionPool: { tcp: { maxConnections: 10 } }, tls: 'ISTIO_MUTUAL' } }],
    });
    new TrafficRoute(c, 'r', { name: 'reviews', hosts: [reviews], http: [{ route: [{ to: reviews, subset: 'v1', weight: 80 }, { to: reviews, subset: 'v2', weight: 20 }] }] });
  });

  test('node-sidecar: upstream TLS refused without it, both uses in one run (the endpoint policies are carried)', () => {
    expect(refusalsOf(() => withPolicy('node-sidecar')).problems.map((p) => p.split(' is ')[0])).toEqual([
      'c/dr: trafficPolicy.tls', 'c/dr: subsets[1].trafficPolicy.tls',
    ]);
  });

  test('node-sidecar with ["*"]: synthesized; MESH034 warnings at the construct path; the plan lists them and shows only what is applied', () => {
    const c = withPolicy('node-sidecar', ['*']);
    expect(() => meshSynth(c)).not.toThrow();
    const warnings = lintChart(c).filter((f) => f.code === 'MESH034');
    expect(warnings.map((w) => [w.severity, w.path, w.message.split(' (')[0]])).toEqual([
      ['warning', 'c/dr', 'trafficPolicy.tls'],
      ['warning', 'c/dr', 'subsets[1].trafficPolicy.tls'],
    ]);
    expect(warnings[0].message).toMatch(/is not applied on the node-sidecar data plane: the node sidecar does not originate TLS/);
    const plan = chartPlan(c).plan;
    expect(plan.notApplied?.map((n) => `${n.path} ${n.field} ${n.feature}`)).toEqual([
      'c/dr trafficPolicy.tls policy.tls', 'c/dr subsets[1].trafficPolicy.tls policy.tls',
    ]);
    const applied = plan.policies.flatMap((p) => [...p.policies, ...p.subsets.flatMap((s) => s.policies)]);
    expect(applied.some((x) => /TLS/.test(x))).toBe(false);
    expect(applied.some((x) => /load balancer RANDOM/.test(x))).toBe(true);
    const md = planOfChart(c);
    expect(md).toContain('## Not applied on this data plane');
    expect(md).toMatch(/\| c\/dr \| trafficPolicy\.tls \| "SIMPLE" \| policy\.tls \| the node sidecar does not originate TLS/);
    // The Istio plane carries them: nothing dropped, nothing to say.
    const istio = withPolicy('istio', ['*']);
    expect(lintChart(istio).filter((f) => f.code === 'MESH034')).toEqual([]);
    expect(planOfChart(istio)).not.toContain('Not applied');
  });

  test('gateway-api: a fault dropped by id is not rendered, and only that id is dropped', () => {
    const c = shop(chart('gateway-api', { dropUnsupported: ['route.fault'] }), route({ fault: { delay: { fixedDelay: '7s', percentage: 100 } } }));
    const objs = meshSynth(c);
    expect(find(objs, 'HTTPRoute', 'reviews', 'shop').spec.rules).toEqual([{ backendRefs: [{ name: 'reviews', port: 9080 }] }]);
    expect(lintChart(c).map((f) => `${f.code} ${f.path} ${f.message.split(' (')[0]}`)).toEqual(['MESH034 c/r http[0].fault']);
    // The Bookinfo fault scenario on Gateway API: synthesized once the chart accepts losing the fault.
    const delay = CHARTS.find((x) => x.name === 'bookinfo-ratings-delay-jason')!;
    const bk = delay.create(new App(), 'delay', { dataPlane: DataPlane.GATEWAY_API, dropUnsupported: ['route.fault'] });
    expect(() => meshSynth(bk)).not.toThrow();
    expect(chartPlan(bk).plan.notApplied?.map((n) => n.value)).toEqual(['"delay"']);
    const other = shop(chart('gateway-api', { dropUnsupported: ['route.fault'] }), policy({ loadBalancer: 'RANDOM' }));
    expect(refusalsOf(() => other).message).toMatch(/trafficPolicy\.loadBalancer is "RANDOM"; expected no trafficPolicy\.loadBalancer on the gateway-api data plane/);
  });

  test('what may not be dropped, and unknown ids, are refused on the chart', () => {
    expect(refusalsOf(() => chart('gateway-api', { dropUnsupported: ['match.port'] })).message)
      .toMatch(/^c: dropUnsupported\[0\] is "match.port"; expected a feature that may be dropped \(route\.fault, policy\.loadBalancer, .*requests would go elsewhere/);
    expect(refusalsOf(() => chart('node-sidecar', { dropUnsupported: ['policy.outlier'] })).message)
      .toMatch(/^c: dropUnsupported\[0\] is "policy.outlier"; expected "\*" or a droppable feature id: route\.fault/);
    expect(refusalsOf(() => chart('node-sidecar', { dropUnsupported: 'policy.tls' as never })).message).toMatch(/^c: dropUnsupported is "policy.tls"; expected an array of feature ids/);
  });
});

test('every refusal of a chart in one run: four problems on the Gateway API plane, one MeshRefusals with the count and each path', () => {
  const app = new App();
  const c = new MeshChart(app, 'c', { dataPlane: DataPlane.GATEWAY_API, namespace: 'shop' });
  shop(c, (cc, reviews) => {
    new TrafficRoute(cc, 'r', {
      name: 'reviews', hosts: [reviews], http: [
        { match: [{ withoutHeaders: { 'end-user': { exact: 'jason' } } }], route: [{ to: reviews, subset: 'v2' }] },
        { route: [{ to: reviews, subset: 'v1' }], timeout: '1.5ms', fault: { abort: { httpStatus: 500, percentage: 10 } } },
      ],
    });
    new DestinationPolicy(cc, 'lb', { name: 'reviews-lb', service: reviews, trafficPolicy: { loadBalancer: 'RANDOM' } });
  });
  expect(() => lintBeforeWrite(app)).toThrow(/^4 problem\(s\) in chart c, refused at synth \(nothing is written\):\n {2}- c\/r: http\[0\]\.match\[0\]\.withoutHeaders .*\n {2}- c\/r: http\[1\]\.fault .*\n {2}- c\/r: http\[1\]\.timeout is "0\.0015s".*\n {2}- c\/lb: trafficPolicy\.loadBalancer .*$/);
});

describe('lint reads every data plane through the Istio twin, at the user\'s construct paths', () => {
  test.each(DATA_PLANE_NAMES)('%s: a destination host the chart does not have (MESH003) and two gateways claiming one host (MESH010)', (plane) => {
    const c = shop(chart(plane), (cc, reviews) => {
      new TrafficRoute(cc, 'r', { name: 'reviews', hosts: [reviews], http: [{ route: [{ to: { serviceName: 'ratings', servicePorts: [9080] } }] }] });
      const web = new MeshWorkload(cc, 'web', { app: 'web', image: 'web:1', port: 8080 });
      new IngressGateway(cc, 'a', { name: 'a-gateway', hosts: ['shop.example.com'], routes: [{ route: [{ to: web }] }] });
      new IngressGateway(cc, 'b', { name: 'b-gateway', hosts: ['shop.example.com'], routes: [{ route: [{ to: web }] }] });
    });
    const found = lintChart(c).filter((f) => f.severity === 'error').map((f) => `${f.code} ${f.path}`);
    expect(found).toEqual(expect.arrayContaining([expect.stringMatching(/^MESH003 c\/r\//), expect.stringMatching(/^MESH010 c\/b\//)]));
  });
});

test('JaegerAddon writes its namespace where no Istio installation does (node-sidecar, Gateway API on Linkerd), not on Istio', () => {
  const namespaces = (plane: DataPlaneName, props: MeshChartProps = {}) => {
    const c = chart(plane, props);
    new JaegerAddon(c, 'jaeger');
    return ofKind(meshSynth(c), 'Namespace').map((n) => n.metadata.name);
  };
  expect(namespaces('istio')).toEqual([]);
  expect(namespaces('gateway-api')).toEqual([]);
  expect(namespaces('node-sidecar')).toEqual(['istio-system']);
  expect(namespaces('gateway-api', { gatewayApi: { mesh: 'linkerd' } })).toEqual(['istio-system']);
});
