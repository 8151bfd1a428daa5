import { join } from 'node:path';
import { Chart, Testing, Yaml } from 'cdk8s';
import * as ts from 'typescript';
import {
  BookinfoApp, DataPlane, DestinationPolicy, Host, IngressGateway, JaegerAddon, Match, MeshChart, MeshValidationError, MeshWorkload, RETRY_ON,
  RetryOn, TrafficRoute,
} from '../index';
import * as jsiiApi from '../jsii';
import * as tsApi from '../index';
import { meshSynth } from './support/synth';

// jsii.ts is the API offered to Python, Java, Go and .NET (scripts/jsii.sh compiles it with
// jsii in CI). TypeScript users import index.ts, which must stay a superset; the union-like
// classes that replace TypeScript-only unions must mean what the object forms mean.

const yaml = (c: Chart) => Yaml.stringify(...meshSynth(c));
const ROOT = join(__dirname, '..');

describe('jsii.ts is a subset of the TypeScript API', () => {
  test('every value jsii.ts exports is the same object in index.ts', () => {
    const names = Object.keys(jsiiApi);
    expect(names.length).toBeGreaterThan(20);
    for (const name of names) expect([name, (tsApi as Record<string, unknown>)[name]]).toEqual([name, (jsiiApi as Record<string, unknown>)[name]]);
  });

  test('every type jsii.ts exports is exported by index.ts, from the same declaration', () => {
    const program = ts.createProgram([join(ROOT, 'jsii.ts'), join(ROOT, 'index.ts')], {
      noEmit: true, skipLibCheck: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Node10, esModuleInterop: true,
    });
    const checker = program.getTypeChecker();
    const exportsOf = (file: string) => {
      const sym = checker.getSymbolAtLocation(program.getSourceFile(join(ROOT, file))!)!;
      return new Map(checker.getExportsOfModule(sym).map((s) => {
        const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
        return [s.name, target.declarations?.[0]] as const;
      }));
    };
    const jsii = exportsOf('jsii.ts');
    const all = exportsOf('index.ts');
    expect(jsii.size).toBeGreaterThan(100);
    expect(all.size).toBeGreaterThan(jsii.size);
    const missing = [...jsii.keys()].filter((n) => !all.has(n));
    expect(missing).toEqual([]);
    const different = [...jsii].filter(([n, d]) => all.get(n) !== d).map(([n]) => n);
    expect(different).toEqual([]);
  });
});

describe('union-like classes write what the object forms write', () => {
  function shop(kind: 'objects' | 'classes'): Chart {
    const c = new MeshChart(Testing.app(), 'shop', { namespace: 'shop' });
    const v1 = new MeshWorkload(c, 'reviews', { app: 'reviews', image: 'reviews:1', port: 9080 });
    const policy = new DestinationPolicy(c, 'policy', { name: 'reviews', service: v1, subsets: [{ name: 'v1' }] });
    const objects = kind === 'objects';
    new TrafficRoute(c, 'route', {
      name: 'reviews',
      hosts: [v1],
      http: [
        {
          match: [{
            uri: objects ? { prefix: '/api' } : Match.prefix('/api'),
            method: objects ? { exact: 'GET' } : Match.exact('GET'),
            headers: { 'x-tester': objects ? { present: true } : Match.present(), 'x-build': objects ? { regex: '^[0-9]+$' } : Match.regex('^[0-9]+$') },
          }],
          route: [{ to: policy, subset: 'v1' }],
          retries: { attempts: 2, retryOn: objects ? ['5xx', 'connect-failure', '503'] : [RetryOn.FIVE_XX, RetryOn.CONNECT_FAILURE, RetryOn.status(503)] },
        },
        { route: [{ to: objects ? { serviceName: 'legacy', serviceNamespace: 'old', servicePorts: [8080] } : Host.service('legacy', 'old', [8080]) }] },
      ],
    });
    return c;
  }

  test('Match, RetryOn and Host', () => {
    const written = yaml(shop('classes'));
    expect(written).toEqual(yaml(shop('objects')));
    expect(written).toContain('prefix: /api');
    expect(written).toContain('legacy.old.svc.cluster.local');
  });

  test("RetryOn's constants are the conditions Istio passes to Envoy, and the model accepts them", () => {
    // Istio's HTTPRetry.retryOn: Envoy's x-envoy-retry-on and x-envoy-retry-grpc-on values.
    expect([...RETRY_ON].sort()).toEqual([
      '5xx', 'gateway-error', 'reset', 'reset-before-request', 'connect-failure', 'envoy-ratelimited',
      'retriable-4xx', 'refused-stream', 'retriable-status-codes', 'retriable-headers', 'http3-post-connect-failure',
      'cancelled', 'deadline-exceeded', 'internal', 'resource-exhausted', 'unavailable',
    ].sort());
    const c = new MeshChart(Testing.app(), 'retries', { namespace: 'shop' });
    const v1 = new MeshWorkload(c, 'reviews', { app: 'reviews', image: 'reviews:1', port: 9080 });
    const route = new TrafficRoute(c, 'route', { name: 'reviews', hosts: [v1], http: [{ route: [{ to: v1 }], retries: { attempts: 1, retryOn: [...RETRY_ON, RetryOn.status(503)] } }] });
    expect(route.model.http[0].retries!.retryOn).toEqual([...RETRY_ON, '503']);
  });

  test('a match with two kinds, or none, is refused with its place', () => {
    const c = new MeshChart(Testing.app(), 'bad', { namespace: 'shop' });
    const v1 = new MeshWorkload(c, 'reviews', { app: 'reviews', image: 'reviews:1', port: 9080 });
    const route = (id: string, uri: object) => () => new TrafficRoute(c, id, { name: id, hosts: [v1], http: [{ match: [{ uri }], route: [{ to: v1 }] }] });
    expect(route('two', { prefix: '/a', exact: '/a' })).toThrow(/^bad\/two: http\[0\]\.match\[0\]\.uri is .*; expected exactly one of/);
    expect(route('none', {})).toThrow(MeshValidationError);
    expect(() => new TrafficRoute(c, 'absent', { name: 'absent', hosts: [v1], http: [{ match: [{ headers: { 'x-a': { present: false } } }], route: [{ to: v1 }] }] }))
      .toThrow(/present is false; expected true/);
  });

  test('Host.external is a destination outside the cluster', () => {
    expect(Host.external('api.example.com', [443])).toEqual({ serviceName: 'api.example.com', servicePorts: [443] });
  });
});

describe('boolean forms that replace `false | {...}`', () => {
  test.each([DataPlane.ISTIO, DataPlane.NODE_SIDECAR])('%s: IngressGateway http: true and BookinfoApp gateway: true are the defaults', (dataPlane) => {
    const chart = (http: boolean | undefined, gateway: boolean | undefined) => {
      const c = new MeshChart(Testing.app(), 'edge', { dataPlane, namespace: 'edge' });
      const web = new MeshWorkload(c, 'web', { app: 'web', image: 'web:1', port: 8080 });
      new IngressGateway(c, 'in', { name: 'in', http, routes: [{ route: [{ to: web }] }] });
      new BookinfoApp(c, 'bookinfo', { namespace: 'bookinfo', gateway });
      return yaml(c);
    };
    expect(chart(true, true)).toEqual(chart(undefined, undefined));
    expect(chart(true, false)).not.toEqual(chart(true, true));
  });

  test('JaegerStorage: a field of the other storage type is refused', () => {
    const c = new Chart(Testing.app(), 'tracing');
    expect(() => new JaegerAddon(c, 'jaeger', { storage: { type: 'memory', size: '1Gi' } }))
      .toThrow(/^tracing\/jaeger: storage\.size is "1Gi"; expected no size with storage type "memory"/);
    expect(() => new JaegerAddon(c, 'jaeger2', { storage: { type: 'badger', maxTraces: 5 } }))
      .toThrow(/^tracing\/jaeger2: storage\.maxTraces is 5; expected no maxTraces with storage type "badger"/);
  });
});
