import * as fs from 'node:fs';
import * as path from 'node:path';
import { App } from 'cdk8s';
import { CHART_VARIANTS, createVariant } from '../charts';
import { DataPlane } from '../constructs';
import { manifestsOf } from '../lint/sources';
import { matchInWords, mermaid, planOf, planOfChart } from '../plan';
import { shopChart } from './fixtures/shop-chart';

const PLANS_DIR = path.join(__dirname, '..', 'docs', 'plans');

// The plans of every chart are committed (docs/plans/<chart>.plan.md), so that a pull
// request shows how a change moves traffic, in words, beside the YAML snapshots.
describe.each(CHART_VARIANTS.map((v) => [v.id, v]))('plan of %s', (id, v) => {
  test('is docs/plans/<chart>.plan.md (update: npx cdk8s-mesh plan --no-svg --out docs/plans, then review the diff)', () => {
    const text = planOfChart(createVariant(new App(), v));
    const file = path.join(PLANS_DIR, `${id}.plan.md`);
    const committed = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '(missing)';
    expect(text).toBe(committed);
  });
});

// A node-sidecar chart records what its constructs gave the renderer; the plan has the
// Istio renderer draw that model again. Each of our node-sidecar charts must come out
// as its Istio twin's plan, line for line (the object counts differ only where a chart
// creates what Istio would own, such as istio-system for the tracing addon).
// Where a controller drives the split, the planes differ in what the chart writes: Argo
// Rollouts has no traffic router on the node sidecar (replica-ratio steps, no VirtualService).
const PLANE_SPECIFIC: Readonly<Record<string, string>> = {
  'springboot-canary-argo-rollouts-node-sidecar': 'Argo Rollouts without a traffic router: no VirtualService or subsets',
};
describe.each(CHART_VARIANTS.filter((v) => v.id.endsWith('-node-sidecar') && !(v.id in PLANE_SPECIFIC)).map((v) => [v.id, v]))('plan of %s', (id, v) => {
  test("is its Istio twin's plan under its own header", () => {
    const twin = CHART_VARIANTS.find((x) => x.id === id.replace(/-node-sidecar$/, ''))!;
    const istio = planOfChart(createVariant(new App(), twin));
    const node = planOfChart(createVariant(new App(), v));
    const body = (t: string) => t.slice(t.indexOf('## Routes'));
    expect(body(node)).toBe(body(istio));
    expect(node).toContain('Data plane: node-sidecar: its proxies load these rules from ConfigMap mesh-routes');
  });
});

test.each(Object.entries(PLANE_SPECIFIC))('plan of %s: %s', (id) => {
  const node = planOfChart(createVariant(new App(), CHART_VARIANTS.find((x) => x.id === id)!));
  const istio = planOfChart(createVariant(new App(), CHART_VARIANTS.find((x) => x.id === id.replace(/-node-sidecar$/, ''))!));
  expect(node).toContain('No VirtualService: requests go to Services as Kubernetes balances them.');
  expect(istio).toContain('VirtualService springistiodemo/springbootapp-svc-vs');
});

test("a user's chart on the node-sidecar data plane: the same plan as on Istio, not an empty one", () => {
  const istio = planOfChart(shopChart());
  const node = planOfChart(shopChart(DataPlane.NODE_SIDECAR));
  expect(node).toContain('| 4 | every request | cart.shop v1 90%, cart.shop v2 10% | timeout 2s');
  // The same routes and policies; the node sidecar's objects add the proxies' endpoint access (ServiceAccount, Role, RoleBinding).
  expect(node.slice(node.indexOf('## Routes'))).toBe(istio.slice(istio.indexOf('## Routes')));
  expect(node).toMatch(/\. Objects: 3 Deployment, 1 DestinationRule, 1 Gateway, 2 Namespace, 2 Role, 2 RoleBinding, 1 Service, 1 ServiceAccount, 1 VirtualService\./);
});

describe('matches in words', () => {
  test.each([
    [{ uri: { exact: '/productpage' } }, 'uri = /productpage'],
    [{ uri: { prefix: '/api' }, method: { exact: 'GET' } }, 'uri prefix /api and method = GET'],
    [{ headers: { 'end-user': { exact: 'jason' } } }, 'header end-user = jason'],
    [{ headers: { cookie: { regex: '^(.*?;)?(user=jason)(;.*)?$' } } }, 'header cookie regex ^(.*?;)?(user=jason)(;.*)?$'],
    [{ headers: { 'x-canary': {} } }, 'header x-canary present'],
    [{ queryParams: { v: { exact: '2' } }, port: 8080 }, 'query v = 2 and port 8080'],
    [{ withoutHeaders: { 'x-debug': { exact: '1' } }, ignoreUriCase: true }, 'no header x-debug = 1 and uri case ignored'],
    [{}, 'every request'],
  ])('%j -> %s', (m, words) => expect(matchInWords(m)).toBe(words));
});

describe('a chart with every kind of rule', () => {
  const c = shopChart();
  const plan = planOf(manifestsOf(c));

  test('rules in order, matches in words, destinations in percent, everything a rule does in words', () => {
    const [h] = plan.hosts;
    expect([h.host, h.bindings, h.virtualService]).toEqual(['cart.shop.svc.cluster.local', ['mesh'], 'shop/cart']);
    expect(h.rules.map((r) => [r.match, r.destinations.map((d) => `${d.subset} ${d.percent}%`), r.policies])).toEqual([
      [['header x-canary = yes', 'query canary = 1'], ['v2 100%'], ['request header x-via set to canary', 'response header server removed']],
      [['uri prefix /old'], [], ['redirect to /new (301)']],
      [['uri prefix /api/v1'], ['v1 100%'], ['rewrite uri to /v1']],
      [[], ['v1 90%', 'v2 10%'], ['timeout 2s', 'retries 3, 0.5s per try on 5xx,reset', 'fault: abort HTTP 503 for 1%', 'mirror to shadow.example.com (5%)']],
    ]);
  });

  test("destination policies: the chart's policy in words and each subset with the workloads it selects", () => {
    expect(plan.policies).toEqual([{
      host: 'cart.shop.svc.cluster.local', destinationRule: 'shop/cart',
      policies: ['load balancer LEAST_REQUEST', 'connection pool: max 100 connections, max 10 pending', 'outlier detection: eject after 5 consecutive 5xx per 10s for 30s, at most 50%', 'TLS ISTIO_MUTUAL'],
      subsets: [
        { name: 'v1', labels: { version: 'v1' }, workloads: ['shop/cart'], policies: [] },
        { name: 'v2', labels: { version: 'v2' }, workloads: ['shop/cart-v2'], policies: ['load balancer RANDOM'] },
      ],
    }]);
  });

  test('gateways with their listeners and TLS; callers and whether they are in the mesh', () => {
    expect(plan.gateways).toEqual([{
      name: 'shop/shop-gateway', selector: { istio: 'ingressgateway' },
      servers: [
        { port: '80/HTTP', hosts: ['shop.example.com'], tls: 'HTTP answered with a redirect to HTTPS' },
        { port: '443/HTTPS', hosts: ['shop.example.com'], tls: 'SIMPLE (secret shop-cert)' },
      ],
    }]);
    expect(plan.calls).toEqual([{ from: 'ops/cron', to: 'cart.shop.svc.cluster.local', inMesh: false }]);
  });

  test('the Mermaid graph: host -> subsets (labelled with rule, match and weight) -> workloads; callers dotted', () => {
    const graph = mermaid(plan).join('\n');
    expect(graph).toMatch(/^flowchart LR/);
    expect(graph).toContain('-->|"1. header x-canary = yes or query canary = 1: 100%"|');
    expect(graph).toContain('-->|"4. otherwise: 90%"|');
    expect(graph).toContain('-->|"4. otherwise: 10%"|');
    expect(graph).toContain('-.->|"calls, outside the mesh"|');
    expect(graph).toContain('["shop/cart-v2"]');
  });
});

test("YAML written elsewhere with Istio's deprecated mirrorPercent: the mirror's share is read from it", () => {
  const vs = {
    apiVersion: 'networking.istio.io/v1beta1', kind: 'VirtualService', metadata: { name: 'a', namespace: 'shop' },
    spec: { hosts: ['a'], http: [{ route: [{ destination: { host: 'a' } }], mirror: { host: 'a-shadow' }, mirrorPercent: 30 }] },
  };
  expect(planOf([{ obj: vs }]).hosts[0].rules[0].policies).toEqual(['mirror to a-shadow (30%)']);
});
