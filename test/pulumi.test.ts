// The Pulumi program under pulumi.runtime.setMocks: what it registers equals what `cdk8s synth` writes.
import * as pulumi from '@pulumi/pulumi';
import { App } from 'cdk8s';
import { DestinationPolicy, MeshChart, MeshWorkload, TrafficRoute } from '../constructs';
import { CHART_VARIANTS, CHARTS } from '../charts';
import { explicitServiceProtocol, KubeObject, MeshChartResource, phaseOf } from '../apps/pulumi/mesh-chart-resource';
import { checkConfig, deploy, outputs } from '../apps/pulumi/program';
import { synthVariant } from './support/synth';

interface Registered { type: string; name: string; inputs: Record<string, any>; provider?: string }
let registered: Registered[] = [];
pulumi.runtime.setMocks({
  newResource: (args) => {
    registered.push({ type: args.type, name: args.name, inputs: args.inputs, provider: args.provider });
    return { id: `${args.name}-id`, state: args.inputs };
  },
  call: (args) => args.inputs,
}, 'cdk8s-mesh', 'test', true);
beforeEach(() => { registered = []; });

const value = <T>(o: pulumi.Output<T>) => new Promise<T>((resolve) => o.apply(resolve));
/** Wait until every object of the chart is registered. */
async function settled(r: MeshChartResource): Promise<void> {
  for (const g of [r.namespaceGroup, r.workloadGroup, r.meshGroup]) {
    if (!g) continue;
    const children = await value(g.resources);
    await Promise.all(Object.values(children).map((c) => value(c.urn)));
  }
}
const typeToken = (o: KubeObject) => {
  const [group, version] = o.apiVersion.includes('/') ? o.apiVersion.split('/') : ['core', o.apiVersion];
  return `kubernetes:${group}/${version}:${o.kind}`;
};
const k8sResources = () => registered.filter((r) => r.type.startsWith('kubernetes:') && r.type !== 'kubernetes:yaml:ConfigGroup' && !r.type.startsWith('pulumi:'));
const key = (type: string, ns: string | undefined, name: string) => `${type} ${ns ?? ''}/${name}`;

describe.each(CHART_VARIANTS.map((v) => [v.id, v]))('%s', (_id, v) => {
  test('registers exactly the synthesized objects: types, names, namespaces, specs', async () => {
    const r = new MeshChartResource(v.id, { chart: (app) => v.entry.create(app, v.id, { dataPlane: v.dataPlane }) });
    await settled(r);
    const expected = synthVariant(v) as unknown as KubeObject[];
    const got = k8sResources();
    expect(got.map((x) => key(x.type, x.inputs.metadata.namespace, x.inputs.metadata.name)).sort())
      .toEqual(expected.map((o) => key(typeToken(o), o.metadata.namespace, o.metadata.name)).sort());
    for (const o of expected) {
      const g = got.find((x) => x.type === typeToken(o) && x.inputs.metadata.name === o.metadata.name && x.inputs.metadata.namespace === o.metadata.namespace)!;
      // Pulumi-style names: the chart's name, then namespace/name.
      expect(g.name).toBe(`${v.id}-${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`);
      const { apiVersion, kind, ...body } = o;
      expect(g.inputs).toEqual(expect.objectContaining({ apiVersion, kind, ...JSON.parse(JSON.stringify(body)) }));
    }
  });
});

describe('MeshChartResource', () => {
  test('orders the groups: Namespaces, then workloads, then Istio objects', async () => {
    const raw = new Map<string, pulumi.Resource[]>();
    const entry = CHARTS.find((c) => c.name === 'springboot-canary')!;
    const r = new MeshChartResource('canary', { chart: (app) => entry.create(app, 'canary') }, {
      transformations: [(args) => {
        raw.set(`${args.type} ${args.name}`, ([] as unknown[]).concat(args.opts.dependsOn ?? []) as pulumi.Resource[]);
        return undefined;
      }],
    });
    await settled(r);
    const deps = new Map([...raw].map(([k, on]) => [k, on.map((d) => (d === r.namespaceGroup ? 'namespaces' : d === r.workloadGroup ? 'workloads' : '?'))]));
    expect(deps.get('kubernetes:yaml:ConfigGroup canary-workloads')).toEqual(['namespaces']);
    expect(deps.get('kubernetes:yaml:ConfigGroup canary-mesh')).toEqual(['namespaces', 'workloads']);
    // Every object carries its group's dependencies.
    expect(deps.get('kubernetes:networking.istio.io/v1beta1:VirtualService canary-springistiodemo/springbootapp-svc-vs')).toEqual(['namespaces', 'workloads']);
    expect(deps.get('kubernetes:apps/v1:Deployment canary-springistiodemo/springbootapp-v1')).toEqual(['namespaces']);
    expect(deps.get('kubernetes:core/v1:Namespace canary-springistiodemo')).toEqual([]);
    expect(await value(r.virtualServices)).toEqual(['springistiodemo/springbootapp-svc-vs']);
    expect(await value(r.services)).toEqual(['springistiodemo/springbootapp-svc']);
  });

  test('phases and the Service protocol fix for charts of your own', () => {
    expect(phaseOf({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a' } })).toBe('namespaces');
    expect(phaseOf({ apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: { name: 'a' } })).toBe('mesh');
    expect(phaseOf({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a' } })).toBe('workloads');
    const svc: KubeObject = { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { ports: [{ port: 80 }, { port: 53, protocol: 'UDP' }] } };
    explicitServiceProtocol(svc);
    expect((svc.spec as { ports: unknown[] }).ports).toEqual([{ port: 80, protocol: 'TCP' }, { port: 53, protocol: 'UDP' }]);
  });
});

describe('the program: stack config', () => {
  test('charts and data plane are chosen by config; namespaces override the chart\'s default', async () => {
    const d = deploy({ charts: ['demo-gateway', 'web-weighted'], dataPlane: 'node-sidecar', namespaces: { 'demo-gateway': 'edge' } });
    await Promise.all(d.charts.map(settled));
    const types = new Set(k8sResources().map((x) => x.type));
    expect(types.has('kubernetes:networking.istio.io/v1beta1:VirtualService')).toBe(false);
    expect(types.has('kubernetes:core/v1:ConfigMap')).toBe(true);
    expect(d.charts.map((c) => c.objects.length)).toEqual(['demo-gateway', 'web-weighted'].map((n) => synthVariant(CHART_VARIANTS.find((v) => v.id === `${n}-node-sidecar`)!).length));
    const gw = k8sResources().find((x) => x.name === 'demo-gateway-node-sidecar-edge/demo-gateway' && x.type === 'kubernetes:apps/v1:Deployment');
    expect(gw?.inputs.metadata.namespace).toBe('edge');
    const o = outputs(d);
    expect(await value(o.services)).toContain('edge/demo-svc');
  });

  test('renderYamlTo makes a provider that writes YAML instead of talking to a cluster', async () => {
    const d = deploy({ charts: ['demo-gateway'], renderYamlTo: 'rendered' });
    await Promise.all(d.charts.map(settled));
    const provider = registered.find((r) => r.type === 'pulumi:providers:kubernetes');
    expect(provider?.inputs.renderYamlToDirectory).toBe('rendered');
    expect(k8sResources().every((r) => r.provider?.includes('render-yaml'))).toBe(true);
  });

  test('bad config is named with its key', () => {
    expect(() => checkConfig({ charts: ['nope'] })).toThrow(/^cdk8s-mesh:charts has "nope"; expected chart names from: web-basic/);
    expect(() => checkConfig({ dataPlane: 'linkerd' })).toThrow('cdk8s-mesh:dataPlane is "linkerd"; expected one of istio, node-sidecar');
    expect(() => checkConfig({ charts: ['bookinfo'], namespaces: { 'web-basic': 'x' } })).toThrow(/namespaces has "web-basic"; expected one of the deployed charts/);
    expect(() => checkConfig({ charts: ['bookinfo'], namespaces: { bookinfo: 'Bad_NS' } })).toThrow(/namespaces.bookinfo is "Bad_NS"; expected a DNS-1123 label/);
  });
});

describe('MeshChartResource runs the same checks as synth', () => {
  const gatewayless = (app: App) => {
    const chart = new MeshChart(app, 'shop', { namespace: 'shop' });
    const web = new MeshWorkload(chart, 'web', { app: 'web', image: 'web:1', port: 8080 });
    new TrafficRoute(chart, 'edge', { name: 'edge', hosts: ['shop.example.com'], gateways: ['missing-gateway'], http: [{ route: [{ to: web }] }] });
    return chart;
  };
  test('a lint error (a VirtualService bound to a missing gateway) fails the program with the finding; nothing is registered', () => {
    expect(() => new MeshChartResource('shop', { chart: gatewayless })).toThrow(/mesh lint found 1 error\(s\) in chart shop; nothing was registered:\nERROR {3}MESH023 VirtualService shop\/edge \(shop\/edge\/Resource\): gateway missing-gateway does not exist/);
    expect(k8sResources()).toEqual([]);
  });
  test('a construct validation error (duplicate objects) fails the program', () => {
    expect(() => new MeshChartResource('dup', {
      chart: (app) => {
        const chart = new MeshChart(app, 'dup', { namespace: 'shop' });
        new MeshWorkload(chart, 'a', { app: 'cart', image: 'c:1', port: 8080 });
        new MeshWorkload(chart, 'b', { app: 'cart', image: 'c:1', port: 8080, deploymentName: 'cart-2' });
        return chart;
      },
    })).toThrow(/^1 problem\(s\) in chart dup, refused at synth \(nothing is written\):\n {2}- Service shop\/cart is defined twice/);
  });
  test('lint warnings become Pulumi warnings on the component', async () => {
    const warn = jest.spyOn(pulumi.log, 'warn').mockImplementation(() => Promise.resolve());
    try {
      const r = new MeshChartResource('warned', {
        chart: (app) => {
          const chart = new MeshChart(app, 'warned', { namespace: 'shop' });
          const web = new MeshWorkload(chart, 'web', { app: 'web', image: 'web:1', port: 8080 });
          new DestinationPolicy(chart, 'tls', { name: 'web', service: web, trafficPolicy: { tls: 'SIMPLE' } });
          return chart;
        },
      });
      await settled(r);
      expect(warn).toHaveBeenCalledWith(expect.stringMatching(/^WARNING MESH028 DestinationRule shop\/web .*without caCertificates/), r);
    } finally {
      warn.mockRestore();
    }
  });
});

describe('the program with your charts (cdk8s-mesh:module)', () => {
  test('deploys the charts a module exports; bad modules are named with the key', async () => {
    const dir = require('node:fs').mkdtempSync(require('node:path').join(require('node:os').tmpdir(), 'charts-'));
    const file = require('node:path').join(dir, 'my-charts.js');
    require('node:fs').writeFileSync(file, `
      const { MeshChart, MeshWorkload } = require(${JSON.stringify(require('node:path').join(__dirname, '..', 'constructs'))});
      exports.charts = [{ name: 'shop', create: (s, id, p) => { const c = new MeshChart(s, id, p); new MeshWorkload(c, 'web', { app: 'web', image: 'web:1', port: 8080 }); return c; } }];`);
    const d = deploy({ module: file, charts: ['shop'] });
    expect(d.charts.map((c) => c.objects.map((o) => `${o.kind}/${o.metadata.name}`))).toEqual([['Deployment/web', 'Service/web']]);
    expect(await value(outputs(d).services)).toEqual(['default/web']);
    expect(() => checkConfig({ module: file, charts: ['bookinfo'] })).toThrow(/cdk8s-mesh:charts has "bookinfo"; expected chart names from: shop/);
    expect(() => checkConfig({ module: '/nonexistent/charts.js' })).toThrow(/^cdk8s-mesh:module is "\/nonexistent\/charts.js"; expected a module that can be loaded/);
  });
});
