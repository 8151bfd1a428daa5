import { Chart, JsonPatch, Testing, Yaml } from 'cdk8s';
import {
  CanaryRelease, CanaryReleaseProps, DataPlane, DestinationPolicy, MeshChart, MeshGateway, MeshWorkload, ProgressiveDelivery, ServiceEntry, TrafficRoute,
} from '../constructs';
import { CALLS_ANNOTATION, MeshValidationError } from '../model';
import { lintChart } from '../lint/sources';
import { find, K8sObject, meshSynth, refusalsOf } from './support/synth';

// Constructs render when their chart synthesizes: what is added after construction, from
// anywhere in the app, lands in the same YAML as the same thing given as props, and is
// checked as props are (construct path, value given, what was expected).

const PLANES = [DataPlane.ISTIO, DataPlane.NODE_SIDECAR, DataPlane.GATEWAY_API];
const yaml = (c: Chart) => Yaml.stringify(...meshSynth(c));
const errorOf = (f: () => unknown): MeshValidationError => {
  try {
    f();
  } catch (e) {
    if (e instanceof MeshValidationError) return e;
    throw e;
  }
  throw new Error('nothing was refused');
};

/** The reviews service in two versions, a client, a policy and a route: the parts the tests grow. */
function reviews(c: Chart) {
  const v1 = new MeshWorkload(c, 'reviews-v1', { app: 'reviews', version: 'v1', image: 'reviews:1', port: 9080, deploymentName: 'reviews-v1' });
  const v2 = new MeshWorkload(c, 'reviews-v2', { app: 'reviews', version: 'v2', image: 'reviews:2', port: 9080, deploymentName: 'reviews-v2', service: false });
  return { v1, v2 };
}

describe('a chart composed in steps is the chart written with props', () => {
  test.each(PLANES)('%s: addHost, addRule, addSubset, addServer and calls() write the same YAML', (dataPlane) => {
    // Written at once.
    const whole = new MeshChart(Testing.app(), 'shop', { dataPlane, namespace: 'shop' });
    const a = reviews(whole);
    new MeshWorkload(whole, 'client', { app: 'client', image: 'client:1', calls: [a.v1] });
    const legacyA = new MeshWorkload(whole, 'legacy', { app: 'legacy', image: 'legacy:1', port: 9080 });
    const pa = new DestinationPolicy(whole, 'policy', { name: 'reviews', service: a.v1, subsets: [{ name: 'v1' }, { name: 'v2' }] });
    new MeshGateway(whole, 'gw', { name: 'edge', servers: [{ port: 80, hosts: ['shop.example.com'] }, { port: 8081, hosts: ['admin.example.com'] }] });
    new TrafficRoute(whole, 'route', {
      name: 'reviews', hosts: [a.v1, legacyA],
      http: [
        { match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ to: pa, subset: 'v2' }] },
        { route: [{ to: pa, subset: 'v1' }] },
      ],
    });

    // Built in pieces, as files of an app would: a route first, then what it needs.
    const parts = new MeshChart(Testing.app(), 'shop', { dataPlane, namespace: 'shop' });
    const b = reviews(parts);
    const client = new MeshWorkload(parts, 'client', { app: 'client', image: 'client:1' });
    const legacyB = new MeshWorkload(parts, 'legacy', { app: 'legacy', image: 'legacy:1', port: 9080 });
    const pb = new DestinationPolicy(parts, 'policy', { name: 'reviews', service: b.v1, subsets: [{ name: 'v1' }] });
    const gw = new MeshGateway(parts, 'gw', { name: 'edge', servers: [{ port: 80, hosts: ['shop.example.com'] }] });
    const route = new TrafficRoute(parts, 'route', { name: 'reviews', hosts: [b.v1], http: [{ route: [{ to: pb, subset: 'v1' }] }] });
    // A rule naming a subset that another file adds later.
    route.addRule({ match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ to: pb, subset: 'v2' }] }, { index: 0 });
    route.addHost(legacyB);
    pb.addSubset({ name: 'v2' });
    gw.addServer({ port: 8081, hosts: ['admin.example.com'] });
    client.calls(b.v1);

    expect(yaml(parts)).toEqual(yaml(whole));
  });

  test('goToStep renders the stage currentStep would', () => {
    const props: CanaryReleaseProps = {
      app: 'shop', port: 8080, stable: { version: 'v1', image: 'shop:1' }, canary: { version: 'v2', image: 'shop:2' }, steps: [10, 50, 100],
      canaryHeader: { name: 'x-canary', match: { exact: 'yes' } },
    };
    const byProp = new MeshChart(Testing.app(), 'c');
    new CanaryRelease(byProp, 'shop', { ...props, currentStep: 1 });
    const bySet = new MeshChart(Testing.app(), 'c');
    const release = new CanaryRelease(bySet, 'shop', props);
    expect(release.canaryWeight).toBe(10);
    release.goToStep(1);
    expect(release.canaryWeight).toBe(50);
    expect(yaml(bySet)).toEqual(yaml(byProp));
    const split = find(meshSynth(bySet), 'VirtualService', 'shop-vs').spec.http[1].route.map((d: { weight: number }) => d.weight);
    expect(split).toEqual([50, 50]);
  });
});

describe('rendering waits for synth', () => {
  test('a route, policy and gateway have no objects until the chart synthesizes', () => {
    const c = new MeshChart(Testing.app(), 'c');
    const { v1 } = reviews(c);
    const route = new TrafficRoute(c, 'route', { name: 'reviews', hosts: [v1], http: [{ route: [{ to: v1 }] }] });
    const policy = new DestinationPolicy(c, 'policy', { name: 'reviews', service: v1, subsets: [{ name: 'v1' }] });
    const gw = new MeshGateway(c, 'gw', { name: 'edge', servers: [{ port: 80, hosts: ['*'] }] });
    for (const x of [route, policy, gw]) expect(x.node.tryFindChild('Resource')).toBeUndefined();
    meshSynth(c);
    for (const x of [route, policy, gw]) expect(x.node.tryFindChild('Resource')).toBeDefined();
    // Synthesizing twice renders once.
    expect(meshSynth(c).filter((o) => o.kind === 'VirtualService')).toHaveLength(1);
  });

  test('in a plain cdk8s Chart too (Istio)', () => {
    const c = new Chart(Testing.app(), 'c');
    const { v1 } = reviews(c);
    const route = new TrafficRoute(c, 'route', { name: 'reviews', hosts: [v1], http: [{ route: [{ to: v1 }] }] });
    route.addRule({ match: [{ uri: { prefix: '/v2' } }], route: [{ to: v1 }] }, { index: 0 });
    const vs = find(Testing.synth(c) as K8sObject[], 'VirtualService', 'reviews');
    expect(vs.spec.http.map((r: { match?: unknown[] }) => r.match?.length ?? 0)).toEqual([1, 0]);
  });

  test('Argo Rollouts objects are written at synth; controllerObjects lists them then', () => {
    const c = new MeshChart(Testing.app(), 'c');
    const r = new CanaryRelease(c, 'shop', { app: 'shop', port: 8080, canary: { version: 'v2', image: 'shop:2' }, steps: [20, 50], progressiveDelivery: ProgressiveDelivery.argoRollouts() });
    expect(r.controllerObjects).toEqual([]);
    meshSynth(c);
    expect(r.controllerObjects.map((o) => o.kind)).toEqual(['Rollout', 'AnalysisTemplate']);
  });
});

describe('TrafficRoute.addRule / addHost', () => {
  const setup = () => {
    const c = new MeshChart(Testing.app(), 'c');
    const { v1 } = reviews(c);
    const policy = new DestinationPolicy(c, 'policy', { name: 'reviews', service: v1, subsets: [{ name: 'v1' }, { name: 'v2' }] });
    const route = new TrafficRoute(c, 'route', { name: 'reviews', hosts: [v1], http: [{ route: [{ to: policy, subset: 'v1' }] }] });
    return { c, v1, policy, route };
  };

  test('appends by default, or goes where index says', () => {
    const { policy, route } = setup();
    route.addRule({ match: [{ uri: { prefix: '/a' } }], route: [{ to: policy, subset: 'v2' }] }, { index: 0 });
    route.addRule({ match: [{ uri: { prefix: '/b' } }], route: [{ to: policy, subset: 'v2' }] }, { index: 1 });
    expect(route.model.http.map((r) => r.match[0]?.uri?.value ?? '*')).toEqual(['/a', '/b', '*']);
  });

  test('a bad rule is refused with its place, the value and the expectation, and nothing changes', () => {
    const { policy, route } = setup();
    const e = errorOf(() => route.addRule({ match: [{ uri: { prefix: '/x' } }], route: [{ to: policy, subset: 'v1', weight: 70 }, { to: policy, subset: 'v2', weight: 20 }] }, { index: 0 }));
    expect(e.message).toMatch(/^c\/route: http\[0\]\.route is \[70,20\]|^c\/route: http\[0\].* is .*; expected .*adding up to 100/);
    expect(e.message).toContain('adding up to 100');
    expect(route.model.http).toHaveLength(1);
  });

  test('a rule after the catch-all is refused, naming the fix', () => {
    const { policy, route } = setup();
    const e = errorOf(() => route.addRule({ match: [{ uri: { prefix: '/late' } }], route: [{ to: policy, subset: 'v2' }] }));
    expect(e.message).toMatch(/^c\/route: http\[0\]\.match is "none \(matches every request\)"; expected a match condition, or this rule moved last/);
  });

  test('an index out of range is refused', () => {
    const { policy, route } = setup();
    expect(() => route.addRule({ route: [{ to: policy, subset: 'v1' }] }, { index: 5 })).toThrow(/^c\/route: addRule\(options\)\.index is 5; expected an integer from 0 to 1/);
    expect(() => route.addRule({ route: [{ to: policy, subset: 'v1' }] }, { index: -1 })).toThrow(/^c\/route: addRule\(options\)\.index is -1; expected an integer from 0 to 1/);
    expect(route.model.http).toHaveLength(1);
  });

  test('addHost checks the host as the hosts prop does', () => {
    const { route, c } = setup();
    expect(() => route.addHost('Not A Host')).toThrow(/^c\/route: hosts\[1\] is "Not A Host"; expected /);
    expect(() => route.addHost('*')).toThrow(/^c\/route: hosts is .*; expected a host other than "\*" for mesh rules/);
    expect(() => route.addHost(42 as never)).toThrow(/^c\/route: hosts\[1\] is 42; expected a host name/);
    route.addHost('reviews.example.com');
    expect(find(meshSynth(c), 'VirtualService', 'reviews').spec.hosts).toEqual(['reviews', 'reviews.example.com']);
  });
});

describe('DestinationPolicy.addSubset', () => {
  test('adds a subset (labels default to the version), checked as the subsets prop', () => {
    const c = new MeshChart(Testing.app(), 'c');
    const { v1 } = reviews(c);
    const policy = new DestinationPolicy(c, 'policy', { name: 'reviews', service: v1, subsets: [{ name: 'v1' }] });
    policy.addSubset({ name: 'v2' });
    policy.addSubset({ name: 'canary', labels: { track: 'canary' } });
    expect(policy.subsetNames).toEqual(['v1', 'v2', 'canary']);
    expect(() => policy.addSubset({ name: 'v2' })).toThrow(/^c\/policy: subsets\[3\]\.name is "v2"; expected a subset name not used twice/);
    expect(() => policy.addSubset({ name: 'V_3' })).toThrow(/^c\/policy: subsets\[3\]\.name is "V_3"; expected /);
    expect(() => policy.addSubset({ name: 'v3', labels: {} })).toThrow(/^c\/policy: subsets\[3\]\.labels is \{\}; expected at least one label/);
    expect(policy.subsetNames).toEqual(['v1', 'v2', 'canary']);
    const dr = find(meshSynth(c), 'DestinationRule', 'reviews');
    expect(dr.spec.subsets).toEqual([
      { name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }, { name: 'canary', labels: { track: 'canary' } },
    ]);
  });

  test.each(PLANES)('%s: a route to a subset never added is refused at synth, naming the route', (dataPlane) => {
    const { problems } = refusalsOf(() => {
      const c = new MeshChart(Testing.app(), 'c', { dataPlane });
      const { v1 } = reviews(c);
      const policy = new DestinationPolicy(c, 'policy', { name: 'reviews', service: v1, subsets: [{ name: 'v1' }] });
      new TrafficRoute(c, 'route', { name: 'reviews', hosts: [v1], http: [{ route: [{ to: policy, subset: 'v1', weight: 50 }, { to: policy, subset: 'v3', weight: 50 }] }] });
      return c;
    });
    expect(problems).toEqual([expect.stringMatching(/^c\/route: http\[0\]\.route\[1\]\.subset is "v3"; expected a subset defined for reviews \(v1\)/)]);
  });

  test('lint reading the chart first does not lose the refusal: synth still refuses it', () => {
    const c = new MeshChart(Testing.app(), 'c');
    const { v1 } = reviews(c);
    const policy = new DestinationPolicy(c, 'policy', { name: 'reviews', service: v1, subsets: [{ name: 'v1' }] });
    new TrafficRoute(c, 'route', { name: 'reviews', hosts: [v1], http: [{ route: [{ to: policy, subset: 'v3' }] }] });
    lintChart(c);
    expect(() => Testing.synth(c)).toThrow(/c\/route: http\[0\]\.route\[0\]\.subset is "v3"; expected a subset defined for reviews \(v1\)/);
  });

  test('node sidecar: an added subset gets its per-subset Service', () => {
    const c = new MeshChart(Testing.app(), 'c', { dataPlane: DataPlane.NODE_SIDECAR });
    const { v1 } = reviews(c);
    const policy = new DestinationPolicy(c, 'policy', { name: 'reviews', service: v1, subsets: [{ name: 'v1' }] });
    policy.addSubset({ name: 'v2' });
    expect(meshSynth(c).filter((o) => o.kind === 'Service').map((s) => s.metadata.name).sort()).toEqual(['reviews', 'reviews-v1', 'reviews-v2']);
  });
});

describe('ServiceEntry.addHost / addPort / addEndpoint', () => {
  const entry = (c: Chart, more: boolean) => new ServiceEntry(c, 'api', {
    name: 'api', resolution: 'STATIC',
    hosts: more ? ['api.example.com', 'api2.example.com'] : ['api.example.com'],
    ports: more ? [{ number: 443, protocol: 'TLS' }, { number: 80, protocol: 'HTTP', name: 'http' }] : [{ number: 443, protocol: 'TLS' }],
    endpoints: more ? [{ address: '10.0.0.11' }, { address: '10.0.0.12', labels: { zone: 'b' }, weight: 2 }] : [{ address: '10.0.0.11' }],
  });

  test.each(PLANES)('%s: an entry grown in steps writes the entry given whole; a policy made before addPort sees the port', (dataPlane) => {
    // Subsets of an external service are Istio's alone (the other planes make per-subset Services).
    const policyOf = (c: Chart, e: ServiceEntry) => (dataPlane === DataPlane.ISTIO
      ? new DestinationPolicy(c, 'policy', { name: 'api', service: e, subsets: [{ name: 'b', labels: { zone: 'b' } }] })
      : undefined);
    const whole = new MeshChart(Testing.app(), 'c', { dataPlane, namespace: 'shop' });
    const a = entry(whole, true);
    policyOf(whole, a);
    new TrafficRoute(whole, 'route', { name: 'api', hosts: [a], http: [{ timeout: '3s', route: [{ to: a, port: 80 }] }] });

    const parts = new MeshChart(Testing.app(), 'c', { dataPlane, namespace: 'shop' });
    const b = entry(parts, false);
    const policy = policyOf(parts, b);
    b.addHost('api2.example.com');
    b.addPort({ number: 80, protocol: 'HTTP', name: 'http' });
    b.addEndpoint({ address: '10.0.0.12', labels: { zone: 'b' }, weight: 2 });
    expect(b.servicePorts).toEqual([443, 80]);
    if (policy) expect(policy.servicePorts).toEqual([443, 80]);
    new TrafficRoute(parts, 'route', { name: 'api', hosts: [b], http: [{ timeout: '3s', route: [{ to: b, port: 80 }] }] });

    expect(yaml(parts)).toEqual(yaml(whole));
  });

  test('a route to another host of the entry sees ports added after host() was called', () => {
    const c = new MeshChart(Testing.app(), 'c');
    const e = entry(c, false);
    e.addHost('api2.example.com');
    const second = e.host('api2.example.com');
    e.addPort({ number: 80, protocol: 'HTTP' });
    expect(second.servicePorts).toEqual([443, 80]);
    new TrafficRoute(c, 'route', { name: 'api2', hosts: [second], http: [{ route: [{ to: second, port: 80 }] }] });
    expect(find(meshSynth(c), 'VirtualService', 'api2').spec.http[0].route).toEqual([{ destination: { host: 'api2.example.com', port: { number: 80 } } }]);
  });

  test('each is checked as the props are, naming the place; a refused addition changes nothing', () => {
    const c = new MeshChart(Testing.app(), 'c');
    const e = entry(c, false);
    expect(() => e.addHost('api.example.com')).toThrow(/^c\/api: hosts is \["api.example.com","api.example.com"\]; expected each host once/);
    expect(() => e.addHost('*')).toThrow(/^c\/api: hosts\[1\] is "\*"; expected a host name or "\*.domain" wildcard/);
    expect(() => e.addPort({ number: 443, protocol: 'HTTP' })).toThrow(/^c\/api: ports\[1\]\.number is 443; expected a port number not used by another port of this entry/);
    expect(() => e.addPort({ number: 8080, protocol: 'SMTP' as never })).toThrow(/^c\/api: ports\[1\]\.protocol is "SMTP"; expected one of /);
    expect(() => e.addEndpoint({ address: 'db.example.com' })).toThrow(/^c\/api: endpoints\[1\]\.address is "db.example.com"; expected an IP address \(resolution STATIC\)/);
    expect(() => e.addEndpoint({ address: '10.0.0.12', ports: { grpc: 9090 } })).toThrow(/^c\/api: endpoints\[1\]\.ports\.grpc is 9090; expected a port name of this entry \(tls-443\)/);
    expect(e.model).toMatchObject({ hosts: ['api.example.com'], ports: [{ number: 443, name: 'tls-443' }], endpoints: [{ address: '10.0.0.11' }] });
    const se = find(meshSynth(c), 'ServiceEntry', 'api');
    expect([se.spec.hosts, se.spec.ports.length, se.spec.endpoints.length]).toEqual([['api.example.com'], 1, 1]);
  });
});

describe('addJsonPatch: the escape hatch to the rendered object', () => {
  /** A route, a policy, a gateway and an entry, each given one patch. */
  function patched(dataPlane: DataPlane, patchPolicy = true) {
    const c = new MeshChart(Testing.app(), 'c', { dataPlane, namespace: 'shop' });
    const { v1 } = reviews(c);
    const policy = new DestinationPolicy(c, 'policy', { name: 'reviews', service: v1, subsets: [{ name: 'v1' }] });
    const route = new TrafficRoute(c, 'route', { name: 'reviews', hosts: [v1], http: [{ route: [{ to: policy, subset: 'v1' }] }] });
    const gw = new MeshGateway(c, 'gw', { name: 'edge', servers: [{ port: 80, hosts: ['shop.example.com'] }] });
    const entry = new ServiceEntry(c, 'entry', { name: 'api', hosts: ['api.example.com'], ports: [{ number: 443, protocol: 'TLS' }] });
    // Patches added after construction, from anywhere, as the other add-methods.
    route.addJsonPatch(JsonPatch.add('/spec/exportTo', ['.']));
    if (patchPolicy) policy.addJsonPatch(JsonPatch.add('/spec/exportTo', ['.']));
    gw.addJsonPatch(JsonPatch.add('/metadata/annotations', { 'external-dns.alpha.kubernetes.io/hostname': 'shop.example.com' }));
    entry.addJsonPatch(JsonPatch.add('/spec/subjectAltNames', ['spiffe://partner.example.com/api']));
    return c;
  }

  test('istio: each patch lands in its object, the rest of it as without the patch', () => {
    const objs = meshSynth(patched(DataPlane.ISTIO));
    expect(find(objs, 'VirtualService', 'reviews').spec).toEqual({ hosts: ['reviews'], exportTo: ['.'], http: [{ route: [{ destination: { host: 'reviews', subset: 'v1' } }] }] });
    expect(find(objs, 'DestinationRule', 'reviews').spec.exportTo).toEqual(['.']);
    expect(find(objs, 'Gateway', 'edge').metadata.annotations).toEqual({ 'external-dns.alpha.kubernetes.io/hostname': 'shop.example.com' });
    expect(find(objs, 'ServiceEntry', 'api').spec.subjectAltNames).toEqual(['spiffe://partner.example.com/api']);
  });

  test('gateway-api: the HTTPRoute, Gateway and ServiceEntry take theirs; the policy has no object of its own, so its patch is refused', () => {
    const { problems } = refusalsOf(() => patched(DataPlane.GATEWAY_API));
    expect(problems).toEqual([
      'c/policy: addJsonPatch() is [{"op":"add","path":"/spec/exportTo","value":["."]}]; expected an object to patch: the gateway-api data plane renders no object of its own for a DestinationPolicy (patch the objects it renders for other constructs, or leave the patches out)',
    ]);
    const objs = meshSynth(patched(DataPlane.GATEWAY_API, false));
    expect(objs.find((o) => o.kind === 'HTTPRoute')!.spec.exportTo).toEqual(['.']);
    expect(objs.find((o) => o.kind === 'Gateway')!.metadata.annotations).toEqual({ 'external-dns.alpha.kubernetes.io/hostname': 'shop.example.com' });
  });

  test('node sidecar: nothing of its own is rendered for any of the four: every patch is refused at synth, naming its construct', () => {
    const { problems } = refusalsOf(() => patched(DataPlane.NODE_SIDECAR));
    expect(problems.map((p) => p.split(':')[0]).sort()).toEqual(['c/entry', 'c/gw', 'c/policy', 'c/route']);
    expect(problems.every((p) => p.includes('the node-sidecar data plane renders no object of its own'))).toBe(true);
  });

  test('a render that is refused is reported once, not again for its patches; a value that is not a JsonPatch is refused at once', () => {
    // Subsets of a ServiceEntry: the node sidecar refuses the policy, and renders nothing for it.
    const { problems } = refusalsOf(() => {
      const c = new MeshChart(Testing.app(), 'c', { dataPlane: DataPlane.NODE_SIDECAR });
      const entry = new ServiceEntry(c, 'entry', { name: 'api', hosts: ['api.example.com'], ports: [{ number: 443, protocol: 'TLS' }] });
      const policy = new DestinationPolicy(c, 'policy', { name: 'api', service: entry, subsets: [{ name: 'b', labels: { zone: 'b' } }] });
      policy.addJsonPatch(JsonPatch.add('/spec/exportTo', ['.']));
      return c;
    });
    expect(problems).toEqual([expect.stringMatching(/^c\/policy: service is "api.example.com"; expected a Service of this chart for subsets/)]);
    const c = new MeshChart(Testing.app(), 'c');
    const { v1 } = reviews(c);
    const route = new TrafficRoute(c, 'route', { name: 'r', hosts: [v1], http: [{ route: [{ to: v1 }] }] });
    expect(() => route.addJsonPatch({ op: 'add', path: '/spec/exportTo', value: ['.'] } as never))
      .toThrow(/^c\/route: addJsonPatch\(\)\[0\] is \{"op":"add","path":"\/spec\/exportTo","value":\["\."\]\}; expected a cdk8s JsonPatch/);
  });
});

describe('MeshGateway.addServer', () => {
  test('adds a listener, checked as the servers prop', () => {
    const c = new MeshChart(Testing.app(), 'c');
    const gw = new MeshGateway(c, 'gw', { name: 'edge', servers: [{ port: 80, hosts: ['shop.example.com'] }] });
    expect(() => gw.addServer({ port: 0, hosts: ['a.example.com'] })).toThrow(/^c\/gw: servers\[1\]\.port is 0; expected an integer from 1 to 65535/);
    expect(() => gw.addServer({ port: 443, protocol: 'SMTP' as never, hosts: ['a.example.com'] })).toThrow(/^c\/gw: servers\[1\]\.protocol is "SMTP"; expected one of /);
    gw.addServer({ port: 443, protocol: 'HTTPS', hosts: ['shop.example.com'], tls: { mode: 'SIMPLE', credentialName: 'shop-cert' } });
    expect(gw.servers.map((s) => s.port)).toEqual([80, 443]);
    expect(find(meshSynth(c), 'Gateway', 'edge').spec.servers.map((s: { port: { number: number } }) => s.port.number)).toEqual([80, 443]);
  });

  test('node sidecar: the gateway pods listen on the added port, and a clash with another gateway on them is refused at synth', () => {
    const c = new MeshChart(Testing.app(), 'c', { dataPlane: DataPlane.NODE_SIDECAR });
    const gw = new MeshGateway(c, 'gw', { name: 'edge', servers: [{ port: 80, hosts: ['shop.example.com'] }] });
    gw.addServer({ port: 8081, hosts: ['admin.example.com'] });
    const objs = meshSynth(c);
    expect(find(objs, 'Service', 'edge').spec.ports.map((p: { port: number }) => p.port)).toEqual([80, 8081]);
    const c2 = new MeshChart(Testing.app(), 'c2', { dataPlane: DataPlane.NODE_SIDECAR });
    new MeshGateway(c2, 'a', { name: 'a', servers: [{ port: 80, hosts: ['a.example.com'] }] });
    const b = new MeshGateway(c2, 'b', { name: 'b', servers: [{ port: 81, hosts: ['b.example.com'] }] });
    b.addServer({ port: 8080, protocol: 'HTTPS', hosts: ['b.example.com'], tls: { mode: 'SIMPLE', credentialName: 'b' } });
    const { problems } = refusalsOf(() => c2);
    expect(problems).toEqual([expect.stringMatching(/^c2\/b: servers\[1\]\.port is 8080; expected a port that does not clash with gateway default\/a's HTTP server on port 80/)]);
  });
});

describe('MeshWorkload.calls', () => {
  test('records more callees on the pods, from anywhere, checked as the calls prop', () => {
    const c = new MeshChart(Testing.app(), 'c', { namespace: 'shop' });
    const { v1 } = reviews(c);
    const ratings = new MeshWorkload(c, 'ratings', { app: 'ratings', image: 'ratings:1', port: 9080, namespace: 'data' });
    const client = new MeshWorkload(c, 'client', { app: 'client', image: 'client:1', calls: [v1] });
    client.calls(ratings);
    expect(() => client.calls('reviews' as never)).toThrow(/^c\/client: calls\(\)\[0\] is "reviews"; expected a service object/);
    const d = find(meshSynth(c), 'Deployment', 'client');
    expect(d.spec.template.metadata.annotations[CALLS_ANNOTATION]).toBe('reviews,ratings.data.svc.cluster.local');
  });
});

describe('CanaryRelease.goToStep', () => {
  const base: CanaryReleaseProps = { app: 'shop', port: 8080, stable: { version: 'v1', image: 'shop:1' }, canary: { version: 'v2', image: 'shop:2' } };

  test('refuses what has no stage to set, naming why', () => {
    const c = new MeshChart(Testing.app(), 'c');
    const single = new CanaryRelease(c, 'single', { ...base, app: 'one', canaryWeight: 10 });
    expect(() => single.goToStep(0)).toThrow(/^c\/single: goToStep\(\) is 0; expected a release with steps/);
    const staged = new CanaryRelease(c, 'staged', { ...base, app: 'two', steps: [10, 50] });
    expect(() => staged.goToStep(2)).toThrow(/^c\/staged: goToStep\(\) is 2; expected an integer from 0 to 1/);
    expect(() => staged.goToStep(0.5)).toThrow(/goToStep\(\) is 0.5/);
    staged.rulesFor();
    expect(() => staged.goToStep(1)).toThrow(/^c\/staged: goToStep\(\) is 1; expected goToStep\(\) before rulesFor\(\)/);
    expect(staged.canaryWeight).toBe(10);
    const argo = new CanaryRelease(c, 'argo', { app: 'three', port: 8080, canary: { version: 'v2', image: 'x:2' }, steps: [10, 50], progressiveDelivery: ProgressiveDelivery.argoRollouts() });
    expect(() => argo.goToStep(1)).toThrow(/^c\/argo: goToStep\(\) is 1; expected no goToStep\(\) with progressiveDelivery: Argo Rollouts moves the weight/);
  });
});
