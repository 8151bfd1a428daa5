import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Chart, Testing } from 'cdk8s';
import {
  CanaryRelease, CanaryReleaseProps, DestinationPolicy, JaegerAddon, MeshGateway, MeshNamespace, MeshTracing, MeshWorkload, MeshWorkloadProps, TrafficRoute, WebTier,
} from '../constructs';
import { DataPlane, MeshChart } from '../constructs';
import { MeshValidationError, ServiceRef } from '../model';

// Every bad input is refused while the construct is built, with a MeshValidationError
// whose message names the construct path, shows the value given and says what was expected.

const svc: ServiceRef = { serviceName: 'reviews', subsetNames: ['v1', 'v2'], servicePorts: [9080] };
const workload: MeshWorkloadProps = { app: 'web', image: 'busybox:1.36', port: 8080 };
const canary: CanaryReleaseProps = {
  app: 'shop', port: 8080, stable: { version: 'v1', image: 'shop:1' }, canary: { version: 'v2', image: 'shop:2' }, canaryWeight: 10,
};
const http = (rule: object) => [rule];
const vs = (rule: object, extra: object = {}) => (c: Chart) => new TrafficRoute(c, 'bad', { name: 'reviews', hosts: [svc], http: http(rule), ...extra });
const r1 = { to: svc };

type Case = [string, (c: Chart) => unknown, unknown, RegExp];
const cases: Case[] = [
  ['negative weight', vs({ route: [{ to: svc, subset: 'v1', weight: -5 }, { to: svc, subset: 'v2', weight: 105 }] }), -5, /non-negative integer/],
  ['all weights zero', vs({ route: [{ to: svc, subset: 'v1', weight: 0 }, { to: svc, subset: 'v2', weight: 0 }] }), [0, 0], /at least one non-zero weight/],
  ['weights not adding up to 100', vs({ route: [{ to: svc, subset: 'v1', weight: 70 }, { to: svc, subset: 'v2', weight: 20 }] }), [70, 20], /adding up to 100/],
  ['fractional weight', vs({ route: [{ to: svc, subset: 'v1', weight: 33.5 }, { to: svc, subset: 'v2', weight: 66.5 }] }), 33.5, /integer/],
  ['missing weight among several', vs({ route: [{ to: svc, subset: 'v1', weight: 100 }, { to: svc, subset: 'v2' }] }), undefined, /a weight on every destination/],
  ['unknown subset', vs({ route: [{ to: svc, subset: 'v9' }] }), 'v9', /a subset defined for reviews \(v1, v2\)/],
  // The defined subsets are listed whatever else is wrong with the name given.
  ['a subset that is neither defined nor a DNS label', vs({ route: [{ to: svc, subset: 'V9_x' }] }), 'V9_x', /a subset defined for reviews \(v1, v2\)/],
  ['subset on a service without subsets', vs({ route: [{ to: { serviceName: 'ratings' }, subset: 'v1' }] }), 'v1', /this reference to ratings has none \(route to the DestinationPolicy that defines them: \{ to: policy, subset: "v1" \}\)/],
  ['port the service does not have', vs({ route: [{ to: svc, port: 8080 }] }), 8080, /a port of reviews \(9080\)/],
  ['timeout below 1ms', vs({ route: [r1], timeout: '0.0001s' }), '0.0001s', /at least 1ms/],
  ['timeout that is not a duration', vs({ route: [r1], timeout: 'banana' }), 'banana', /a duration such as/],
  ['fault percentage above 100', vs({ route: [r1], fault: { delay: { fixedDelay: '7s', percentage: 150 } } }), 150, /percentage from 0 to 100/],
  ['abort with a non-HTTP status', vs({ route: [r1], fault: { abort: { httpStatus: 42, percentage: 100 } } }), 42, /integer from 200 to 599/],
  ['negative mirror percentage', vs({ route: [r1], mirror: { to: svc, percentage: -1 } }), -1, /percentage from 0 to 100/],
  ['negative retry attempts', vs({ route: [r1], retries: { attempts: -1 } }), -1, /integer from 0 to 100/],
  ['unknown retryOn condition', vs({ route: [r1], retries: { attempts: 2, retryOn: ['sometimes'] } }), 'sometimes', /Envoy retry condition/],
  ['perTryTimeout longer than the timeout', vs({ route: [r1], timeout: '1s', retries: { attempts: 2, perTryTimeout: '2s' } }), '2s', /at most the rule timeout \(1s\)/],
  ['regex RE2 cannot run', vs({ match: [{ uri: { regex: '(?=admin)' } }], route: [r1] }), '(?=admin)', /RE2 syntax/],
  ['two kinds in one StringMatch', vs({ match: [{ uri: { exact: '/', prefix: '/a' } }], route: [r1] }), { exact: '/', prefix: '/a' }, /exactly one of/],
  ['destination given as a string', vs({ route: [{ to: 'reviews' }] }), 'reviews', /a service object/],
  ['route and redirect together', vs({ route: [r1], redirect: { uri: '/x' } }), { route: '...', redirect: { uri: '/x' } }, /exactly one of route or redirect/],
  ['bad header name', vs({ match: [{ headers: { 'end user': { exact: 'jason' } } }], route: [r1] }), 'end user', /HTTP header/],
  ['removing the request\'s Host', vs({ route: [r1], headers: { request: { remove: ['x-debug', 'Host'] } } }), 'Host', /other than Host \(Istio refuses to remove Host/],
  ['a route setting Content-Length', vs({ route: [r1], headers: { request: { set: { 'Content-Length': '0' } } } }), 'Content-Length', /framing and connection headers the data plane writes itself/],
  ['a route adding Transfer-Encoding to responses', vs({ route: [r1], headers: { response: { add: { 'Transfer-Encoding': 'chunked' } } } }), 'Transfer-Encoding', /framing and connection headers/],
  ['Host on a response', vs({ route: [r1], headers: { response: { set: { host: 'a' } } } }), 'host', /a response has no Host header/],
  ['Host set twice', vs({ route: [r1], rewrite: { authority: 'a.example' }, headers: { request: { set: { Host: 'b.example' } } } }), { set: { Host: 'b.example' } }, /Host set once/],
  ['lower-case method', vs({ match: [{ method: 'get' }], route: [r1] }), 'get', /HTTP method in upper case/],
  ['catch-all rule before others', (c) => new TrafficRoute(c, 'bad', { name: 'r', hosts: [svc], http: [{ route: [r1] }, { match: [{ uri: { prefix: '/a' } }], route: [r1] }] }), 'none (matches every request)', /can never match/],
  ['route name that is not DNS-1123', (c) => new TrafficRoute(c, 'bad', { name: 'My_VS', hosts: [svc], http: [{ route: [r1] }] }), 'My_VS', /DNS-1123/],
  ['"*" host without a gateway', (c) => new TrafficRoute(c, 'bad', { name: 'r', hosts: ['*'], http: [{ route: [r1] }] }), ['*'], /only valid with a gateway/],
  ['app name with upper case', (c) => new MeshWorkload(c, 'bad', { ...workload, app: 'Web_App' }), 'Web_App', /DNS-1123 label/],
  ['port reserved by the proxy', (c) => new MeshWorkload(c, 'bad', { ...workload, port: 15001 }), 15001, /outside 15000-15090/],
  ['port name without protocol', (c) => new MeshWorkload(c, 'bad', { ...workload, portName: 'web' }), 'web', /protocol prefix/],
  ['port name longer than 15 characters', (c) => new MeshWorkload(c, 'bad', { ...workload, portName: 'http-very-long-name' }), 'http-very-long-name', /at most 15/],
  ['the proxy\'s UID', (c) => new MeshWorkload(c, 'bad', { ...workload, security: { user: 1337 } }), 1337, /other than 1337/],
  ['empty image', (c) => new MeshWorkload(c, 'bad', { ...workload, image: '' }), '', /non-empty string/],
  ['negative replicas', (c) => new MeshWorkload(c, 'bad', { ...workload, replicas: -1 }), -1, /integer from 0/],
  ['memory limit below request', (c) => new MeshWorkload(c, 'bad', { ...workload, resources: { memoryMiB: { request: 512, limit: 256 } } }), 256, /integer from 512/],
  ['hand-written injection marker', (c) => new MeshWorkload(c, 'bad', { ...workload, podLabels: { 'sidecar.istio.io/inject': 'true' } }), 'true', /no injection marker/],
  ['port 0', (c) => new MeshWorkload(c, 'bad', { ...workload, port: 0 }), 0, /integer from 1 to 65535/],
  ['canary with the stable version', (c) => new CanaryRelease(c, 'bad', { ...canary, canary: { version: 'v1', image: 'shop:2' } }), 'v1', /a version other than the stable one/],
  ['canaryWeight and steps together', (c) => new CanaryRelease(c, 'bad', { ...canary, steps: [10, 50] }), 10, /either canaryWeight or steps/],
  ['steps that go backwards', (c) => new CanaryRelease(c, 'bad', { ...canary, canaryWeight: undefined, steps: [10, 50, 30] }), 30, /above the previous step \(50\)/],
  ['currentStep out of range', (c) => new CanaryRelease(c, 'bad', { ...canary, canaryWeight: undefined, steps: [10, 50], currentStep: 2 }), 2, /integer from 0 to 1/],
  ['canaryWeight above 100', (c) => new CanaryRelease(c, 'bad', { ...canary, canaryWeight: 101 }), 101, /integer from 0 to 100/],
  ['weights on some backends only', (c) => new WebTier(c, 'bad', {
    front: { serviceName: 'web-svc' },
    backends: [{ app: 'a', image: 'a:1', port: 8080, weight: 50 }, { app: 'b', image: 'b:1', port: 8080 }],
  }), undefined, /a weight on every backend/],
  ['weighted split outside the mesh', (c) => new WebTier(c, 'bad', {
    mesh: false, front: { serviceName: 'web-svc' },
    backends: [{ app: 'a', image: 'a:1', port: 8080, weight: 50 }, { app: 'b', image: 'b:1', port: 8080, weight: 50 }],
  }), false, /silently ignored/],
  ['HTTPS server without a credential', (c) => new MeshGateway(c, 'bad', { name: 'gw', servers: [{ port: 443, protocol: 'HTTPS', hosts: ['*'], tls: { mode: 'SIMPLE' } }] }), undefined, /name of a TLS Secret/],
  ['gateway with an empty selector', (c) => new MeshGateway(c, 'bad', { name: 'gw', selector: {}, servers: [{ port: 80, hosts: ['*'] }] }), {}, /at least one label/],
  ['unknown load balancer', (c) => new DestinationPolicy(c, 'bad', { name: 'dr', service: svc, trafficPolicy: { loadBalancer: 'RANDOMLY' as any } }), 'RANDOMLY', /ROUND_ROBIN, RANDOM, LEAST_REQUEST/],
  ['subset name used twice', (c) => new DestinationPolicy(c, 'bad', { name: 'dr', service: svc, subsets: [{ name: 'v1' }, { name: 'v1' }] }), 'v1', /not used twice/],
  ['namespace name with spaces', (c) => new MeshNamespace(c, 'bad', { name: 'Bad NS' }), 'Bad NS', /DNS-1123 label/],
  ['an undefined callee', (c) => new MeshWorkload(c, 'bad', { ...workload, calls: [undefined as any] }), undefined, /calls\[0\] is undefined; expected a service object/],
  ['an undefined host', (c) => new TrafficRoute(c, 'bad', { name: 'r', hosts: [undefined as any], http: [{ route: [r1] }] }), undefined, /hosts\[0\] is undefined; expected a host name such as "reviews" .* or a service object/],
  ['props missing altogether', (c) => new MeshWorkload(c, 'bad', undefined as any), undefined, /an object/],
  ['a fixed UI nodePort on a ClusterIP Service', (c) => new JaegerAddon(c, 'bad', { ui: { serviceType: 'ClusterIP', nodePort: 30686 } }), 30686, /ui\.nodePort is 30686; expected no nodePort with serviceType ClusterIP/],
  ['a UI nodePort outside the node port range', (c) => new JaegerAddon(c, 'bad', { ui: { serviceType: 'NodePort', nodePort: 8080 } }), 8080, /ui\.nodePort is 8080; expected an integer from 30000 to 32767/],
  ['an unknown Jaeger storage', (c) => new JaegerAddon(c, 'bad', { storage: { type: 'disk' } as any }), 'disk', /storage\.type is "disk"; expected one of memory, badger/],
  ['a Badger claim size that is no quantity', (c) => new JaegerAddon(c, 'bad', { storage: { type: 'badger', size: 'lots' } }), 'lots', /storage\.size is "lots"; expected a Kubernetes quantity/],
  ['a UI base path with a trailing slash and no leading one', (c) => new JaegerAddon(c, 'bad', { ui: { basePath: 'jaeger/' } }), 'jaeger/', /ui\.basePath is "jaeger\/"; expected a path such as "\/jaeger"/],
  ['Zipkin tracing without a Zipkin host', (c) => new MeshTracing(c, 'bad', { collector: { otlpHost: 'otel.obs' } }), undefined, /collector\.zipkinHost is undefined; expected the collector's Zipkin host/],
  ['OpenTelemetry tracing without an OTLP host', (c) => new MeshTracing(c, 'bad', { collector: { zipkinHost: 'zipkin.obs' }, protocol: 'opentelemetry' }), undefined, /collector\.otlpHost is undefined; expected the collector's OTLP host/],
  ['sampling over 100 percent', (c) => new MeshTracing(c, 'bad', { collector: { zipkinHost: 'zipkin.obs' }, samplingPercentage: 150 }), 150, /samplingPercentage is 150; expected a percentage from 0 to 100/],
  ['an unknown tracing protocol', (c) => new MeshTracing(c, 'bad', { collector: { zipkinHost: 'zipkin.obs' }, protocol: 'jaeger' as any }), 'jaeger', /protocol is "jaeger"; expected one of zipkin, opentelemetry/],
];

describe('bad input is refused at synth time', () => {
  test(`there are at least 25 distinct cases (${cases.length})`, () => {
    expect(new Set(cases.map((c) => c[0])).size).toBe(cases.length);
    expect(cases.length).toBeGreaterThanOrEqual(25);
  });

  test.each(cases)('%s', (_name, build, value, expected) => {
    const chart = new Chart(Testing.app(), 'test');
    let error: unknown;
    try {
      build(chart);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(MeshValidationError);
    const err = error as MeshValidationError;
    expect(err.message.startsWith('test/bad')).toBe(true); // the construct path
    expect(err.value).toEqual(value);
    expect(err.message).toMatch(expected);
    expect(err.message).toContain('; expected ');
  });
});

describe('a route to a workload that has no Service is refused, on every data plane', () => {
  test.each([DataPlane.ISTIO, DataPlane.NODE_SIDECAR, DataPlane.GATEWAY_API])('%s', (dataPlane) => {
    const chart = new MeshChart(Testing.app(), 'test', { dataPlane });
    const worker = new MeshWorkload(chart, 'worker', { app: 'worker', image: 'worker:1' });
    const quiet = new MeshWorkload(chart, 'quiet', { app: 'quiet', image: 'quiet:1', port: 8080, service: false });
    expect(() => new TrafficRoute(chart, 'bad', { name: 'worker', hosts: ['worker.example.com'], http: [{ route: [{ to: worker }] }] }))
      .toThrow('test/bad: http[0].route[0].to is "worker"; expected a destination with a Service: worker has no port, and without a port it has no Service (give worker its container port)');
    expect(() => new TrafficRoute(chart, 'bad2', { name: 'quiet', hosts: ['quiet.example.com'], http: [{ route: [{ to: quiet }] }] }))
      .toThrow(/test\/bad2: http\[0\]\.route\[0\]\.to is "quiet"; expected a destination with a Service: quiet has no Service \(its service prop is false\)/);
  });
});

describe('nothing half-written', () => {
  test('an app with one good and one bad chart exits non-zero, says why, and writes no file', () => {
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'mesh-bad-'));
    const res = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(__dirname, 'fixtures', 'bad-app.ts')], {
      env: { ...process.env, CDK8S_OUTDIR: out }, encoding: 'utf8', cwd: path.join(__dirname, '..'),
    });
    expect(res.status).not.toBe(0);
    expect(res.stderr).toContain('bad-chart/web: http[0].route[0].weight is 120; expected at most 100');
    expect(res.stderr).not.toMatch(/TypeError|    at /); // a message, not a stack trace
    expect(fs.readdirSync(out)).toEqual([]);
  }, 30_000);
});
