// Bookinfo against the facts of Istio's sample (samples/bookinfo/platform/kube/bookinfo.yaml
// and samples/bookinfo/networking/*.yaml), object by object.
import { Chart, Testing } from 'cdk8s';
import { BookinfoApp, BookinfoScenario, MeshChart } from '../constructs';
import { find, K8sObject, ofKind, synthVariant, variant } from './support/synth';

const chart = (id: string) => synthVariant(variant(id));
const NS = 'bookinfo';
const SERVICES = ['details', 'ratings', 'reviews', 'productpage'];
const DEPLOYMENTS: Array<[string, string, string]> = [
  ['details-v1', 'details', 'v1'], ['ratings-v1', 'ratings', 'v1'], ['reviews-v1', 'reviews', 'v1'],
  ['reviews-v2', 'reviews', 'v2'], ['reviews-v3', 'reviews', 'v3'], ['productpage-v1', 'productpage', 'v1'],
];
const pod = (d: K8sObject) => d.spec.template;
const app = (d: K8sObject) => pod(d).spec.containers.find((c: { name: string }) => c.name !== 'mesh-proxy');

describe('bookinfo: the sample\'s workloads', () => {
  const objs = chart('bookinfo');

  test.each(SERVICES)('Service %s: port 9080 named http, labels app and service, selects app', (name) => {
    const s = find(objs, 'Service', name, NS);
    expect(s.metadata.labels).toEqual({ app: name, service: name });
    expect(s.spec.selector).toEqual({ app: name });
    expect(s.spec.ports).toEqual([expect.objectContaining({ port: 9080, name: 'http', targetPort: 9080, protocol: 'TCP' })]);
  });

  test.each(SERVICES)('ServiceAccount bookinfo-%s with its account label', (name) => {
    expect(find(objs, 'ServiceAccount', `bookinfo-${name}`, NS).metadata.labels).toEqual({ account: name });
  });

  test.each(DEPLOYMENTS)('Deployment %s: labels, selector, account, image, port', (name, svc, version) => {
    const d = find(objs, 'Deployment', name, NS);
    expect(d.metadata.labels).toEqual({ app: svc, version });
    expect(d.spec.selector.matchLabels).toEqual({ app: svc, version });
    expect(pod(d).metadata.labels).toEqual({ app: svc, version });
    expect(pod(d).spec.serviceAccountName).toBe(`bookinfo-${svc}`);
    expect(app(d).image).toBe(`docker.io/istio/examples-bookinfo-${svc}-${version}:1.20.3`);
    expect(app(d).imagePullPolicy).toBe('IfNotPresent');
    expect(app(d).ports).toEqual([{ containerPort: 9080, name: 'http' }]);
    expect(d.spec.replicas).toBe(1);
  });

  test.each(['reviews-v1', 'reviews-v2', 'reviews-v3'])('%s: LOG_DIR and the tmp and wlp-output emptyDirs', (name) => {
    const d = find(objs, 'Deployment', name, NS);
    expect(app(d).env).toEqual([{ name: 'LOG_DIR', value: '/tmp/logs' }]);
    expect(app(d).volumeMounts).toEqual([{ name: 'tmp', mountPath: '/tmp' }, { name: 'wlp-output', mountPath: '/opt/ibm/wlp/output' }]);
    expect(pod(d).spec.volumes).toEqual(expect.arrayContaining([{ name: 'wlp-output', emptyDir: {} }, { name: 'tmp', emptyDir: {} }]));
  });

  test("the call graph is recorded on the pods: productpage calls details and reviews, reviews v2/v3 call ratings, nobody else calls", () => {
    const calls = Object.fromEntries(objs.filter((o) => o.kind === 'Deployment')
      .map((d) => [d.metadata.name, pod(d).metadata.annotations?.['mesh.cdk8s.io/calls'] ?? null]));
    expect(calls).toEqual({
      'details-v1': null, 'ratings-v1': null, 'reviews-v1': null, 'reviews-v2': 'ratings', 'reviews-v3': 'ratings', 'productpage-v1': 'details,reviews',
    });
  });

  test('productpage: Prometheus annotations and a tmp emptyDir', () => {
    const d = find(objs, 'Deployment', 'productpage-v1', NS);
    expect(pod(d).metadata.annotations).toEqual({
      'prometheus.io/scrape': 'true', 'prometheus.io/port': '9080', 'prometheus.io/path': '/metrics', 'mesh.cdk8s.io/calls': 'details,reviews',
    });
    expect(app(d).volumeMounts).toEqual([{ name: 'tmp', mountPath: '/tmp' }]);
  });

  test('injection by the namespace label, as Istio\'s tasks label theirs', () => {
    expect(find(objs, 'Namespace', NS).metadata.labels).toEqual({ 'istio-injection': 'enabled' });
    expect(ofKind(objs, 'Deployment').map(pod).every((p) => !JSON.stringify(p.metadata).includes('sidecar.istio.io'))).toBe(true);
  });
});

describe('bookinfo: networking', () => {
  const objs = chart('bookinfo');

  test('destination-rule-all: a subset per deployed version; upstreamSubsets adds the sample\'s others', () => {
    const subsets = (o: K8sObject[], name: string) => find(o, 'DestinationRule', name, NS).spec;
    expect(subsets(objs, 'productpage')).toEqual({ host: 'productpage', subsets: [{ name: 'v1', labels: { version: 'v1' } }] });
    expect(subsets(objs, 'reviews').subsets.map((s: { name: string }) => s.name)).toEqual(['v1', 'v2', 'v3']);
    expect(subsets(objs, 'ratings').subsets.map((s: { name: string }) => s.name)).toEqual(['v1']);
    expect(subsets(objs, 'details').subsets.map((s: { name: string }) => s.name)).toEqual(['v1']);
    const chart = new Chart(Testing.app(), 'b');
    new BookinfoApp(chart, 'bookinfo', { namespace: NS, upstreamSubsets: true });
    const upstream = Testing.synth(chart) as K8sObject[];
    expect(subsets(upstream, 'ratings').subsets).toEqual(['v1', 'v2', 'v2-mysql', 'v2-mysql-vm'].map((v) => ({ name: v, labels: { version: v } })));
    expect(subsets(upstream, 'details').subsets.map((s: { name: string }) => s.name)).toEqual(['v1', 'v2']);
  });

  test('bookinfo-gateway and the bookinfo VirtualService with the five productpage matches', () => {
    expect(find(objs, 'Gateway', 'bookinfo-gateway', NS).spec).toEqual({
      selector: { istio: 'ingressgateway' },
      servers: [{ port: { number: 8080, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }],
    });
    expect(find(objs, 'VirtualService', 'bookinfo', NS).spec).toEqual({
      hosts: ['*'],
      gateways: ['bookinfo-gateway'],
      http: [{
        match: [{ uri: { exact: '/productpage' } }, { uri: { prefix: '/static' } }, { uri: { exact: '/login' } }, { uri: { exact: '/logout' } }, { uri: { prefix: '/api/v1/products' } }],
        route: [{ destination: { host: 'productpage', port: { number: 9080 } } }],
      }],
    });
  });

  test('virtual-service-all-v1', () => {
    for (const s of SERVICES) {
      expect(find(objs, 'VirtualService', s, NS).spec).toEqual({ hosts: [s], http: [{ route: [{ destination: { host: s, subset: 'v1' } }] }] });
    }
  });

  const dest = (subset: string, weight?: number) => ({ destination: { host: 'reviews', subset }, ...(weight === undefined ? {} : { weight }) });
  const jason = [{ headers: { 'end-user': { exact: 'jason' } } }];
  test.each<[string, object[]]>([
    ['bookinfo-reviews-80-20', [{ route: [dest('v1', 80), dest('v2', 20)] }]],
    ['bookinfo-reviews-50-v3', [{ route: [dest('v1', 50), dest('v3', 50)] }]],
    ['bookinfo-reviews-v3', [{ route: [dest('v3')] }]],
    ['bookinfo-jason-v2', [{ match: jason, route: [dest('v2')] }, { route: [dest('v1')] }]],
    ['bookinfo-jason-v2-else-v3', [{ match: jason, route: [dest('v2')] }, { route: [dest('v3')] }]],
  ])('%s: the reviews rules', (id, http) => {
    const o = chart(id);
    expect(find(o, 'VirtualService', 'reviews', NS).spec).toEqual({ hosts: ['reviews'], http });
    expect(find(o, 'VirtualService', 'ratings', NS).spec.http).toEqual([{ route: [{ destination: { host: 'ratings', subset: 'v1' } }] }]);
  });

  test.each<[string, object]>([
    ['bookinfo-ratings-delay-jason', { delay: { fixedDelay: '7s', percentage: { value: 100 } } }],
    ['bookinfo-ratings-abort-jason', { abort: { httpStatus: 500, percentage: { value: 100 } } }],
  ])('%s: the ratings fault for jason, after reviews-test-v2', (id, fault) => {
    const o = chart(id);
    const v1 = { destination: { host: 'ratings', subset: 'v1' } };
    expect(find(o, 'VirtualService', 'ratings', NS).spec.http).toEqual([{ match: jason, fault, route: [v1] }, { route: [v1] }]);
    expect(find(o, 'VirtualService', 'reviews', NS).spec.http).toEqual([{ match: jason, route: [dest('v2')] }, { route: [dest('v1')] }]);
  });
});

describe('BookinfoApp options', () => {
  const synth = (props: ConstructorParameters<typeof BookinfoApp>[2]) => {
    const c = new MeshChart(Testing.app(), 'c');
    new BookinfoApp(c, 'bookinfo', props);
    return Testing.synth(c) as K8sObject[];
  };

  test('registry and tag, Helm\'s gateway selector, HTTPS with httpsRedirect, mutual TLS', () => {
    const objs = synth({
      images: { registry: 'registry.example.com/mirror', tag: '1.20.1' },
      gateway: { selector: { istio: 'ingress' }, port: 80, httpsRedirect: true, hosts: ['bookinfo.example.com'], https: { credentialName: 'bookinfo-cert' } },
      mutualTls: true,
    });
    expect(find(objs, 'Deployment', 'reviews-v3').spec.template.spec.containers[0].image).toBe('registry.example.com/mirror/examples-bookinfo-reviews-v3:1.20.1');
    expect(find(objs, 'Gateway', 'bookinfo-gateway').spec).toEqual({
      selector: { istio: 'ingress' },
      servers: [
        { port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['bookinfo.example.com'], tls: { httpsRedirect: true } },
        { port: { number: 443, name: 'https', protocol: 'HTTPS' }, hosts: ['bookinfo.example.com'], tls: { mode: 'SIMPLE', credentialName: 'bookinfo-cert' } },
      ],
    });
    expect(find(objs, 'VirtualService', 'bookinfo').spec.hosts).toEqual(['bookinfo.example.com']);
    for (const s of SERVICES) expect(find(objs, 'DestinationRule', s).spec.trafficPolicy).toEqual({ tls: { mode: 'ISTIO_MUTUAL' } });
  });

  test('scenario none and no gateway: only the workloads and the rules', () => {
    const objs = synth({ scenario: 'none', gateway: false });
    expect(ofKind(objs, 'VirtualService')).toEqual([]);
    expect(ofKind(objs, 'Gateway')).toEqual([]);
    expect(ofKind(objs, 'DestinationRule')).toHaveLength(4);
  });

  test('bad input names the construct', () => {
    expect(() => synth({ scenario: 'reviews-90-10' as BookinfoScenario })).toThrow(/^c\/bookinfo: scenario is "reviews-90-10"; expected one of/);
    expect(() => synth({ destinationRules: false })).toThrow(/^c\/bookinfo: destinationRules is false; expected true for scenario "all-v1"/);
    expect(() => synth({ images: { tag: '' } })).toThrow(/^c\/bookinfo: images.tag is ""/);
  });
});

describe('bookinfo on the node sidecar', () => {
  test('the ratings delay for jason is in the route table, as 7000 ms', () => {
    const objs = chart('bookinfo-ratings-delay-jason-node-sidecar');
    const table = JSON.parse(find(objs, 'ConfigMap', 'mesh-routes', NS).data['routes.json']);
    const ratings = table.virtualHosts.find((v: { name: string }) => v.name === 'bookinfo/ratings');
    expect(ratings.routes[0]).toEqual({
      match: [{ headers: { 'end-user': { kind: 'exact', value: 'jason' } } }],
      destinations: [{ host: 'ratings-v1.bookinfo.svc.cluster.local', port: 9080, weight: 100 }],
      fault: { delay: { fixedDelayMs: 7000, percentage: 100 } },
    });
    expect(find(objs, 'Deployment', 'bookinfo-gateway').spec.template.spec.containers[0].ports).toContainEqual({ containerPort: 8080, name: 'http' });
  });
});
