// CanaryRelease handing its steps to Argo Rollouts or Flagger: the objects field by field
// against the controllers' own documented examples (Argo Rollouts v1.9.1:
// examples/istio/istio-subset-split.yaml, docs/migrating.md, docs/features/traffic-management;
// Flagger v1.44.0: docs/gitbook/tutorials/istio-progressive-delivery.md and istio-ab-testing.md),
// the refusals, and the node-sidecar plane's replica-ratio canary.
import { App, Chart, Testing } from 'cdk8s';
import { CHARTS, NODE_SIDECAR_INEXPRESSIBLE } from '../charts';
import { CanaryRelease, CanaryReleaseProps, DataPlane, MeshChart, MeshGateway, ProgressiveDelivery, TrafficRoute } from '../constructs';
import { MeshValidationError } from '../model';
import { schemaError } from './support/schemas';
import { refusalsOf } from './support/synth';

type Obj = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; spec: any };
const find = (objs: Obj[], kind: string, name?: string) => {
  const o = objs.find((x) => x.kind === kind && (name === undefined || x.metadata.name === name));
  if (!o) throw new Error(`no ${kind} ${name ?? ''} in ${objs.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')}`);
  return o;
};
const chart = (dataPlane = DataPlane.ISTIO) => new MeshChart(Testing.app(), 'c', { dataPlane });
function synth(props: Partial<CanaryReleaseProps>, dataPlane = DataPlane.ISTIO): Obj[] {
  const c = chart(dataPlane);
  new CanaryRelease(c, 'release', {
    app: 'podinfo', port: 9898, canary: { version: 'v2', image: 'ghcr.io/stefanprodan/podinfo:6.0.1' }, steps: [10, 20, 30, 40, 50],
    progressiveDelivery: ProgressiveDelivery.argoRollouts(), ...props,
  } as CanaryReleaseProps);
  return Testing.synth(c) as Obj[];
}
function refusal(f: () => unknown): MeshValidationError {
  try { f(); } catch (e) { if (e instanceof MeshValidationError) return e; throw e; }
  throw new Error('not refused');
}

describe('Argo Rollouts on Istio', () => {
  // The names of Argo's istio-subset-split example, with its one step and an indefinite pause.
  const objs = synth({
    app: 'istio-subset-split', serviceName: 'istio-subset-split', port: 80, routeName: 'istio-subset-split-vsvc', policyName: 'istio-subset-split-destrule',
    steps: [10], progressiveDelivery: ProgressiveDelivery.argoRollouts({ manualPromotion: true }),
  });
  const rollout = find(objs, 'Rollout');

  test('the VirtualService has the named route at the starting weights, stable 100 / canary 0 (as the example\'s)', () => {
    expect(find(objs, 'VirtualService', 'istio-subset-split-vsvc').spec.http).toEqual([{
      name: 'primary',
      route: [
        { destination: { host: 'istio-subset-split', subset: 'stable' }, weight: 100 },
        { destination: { host: 'istio-subset-split', subset: 'canary' }, weight: 0 },
      ],
    }]);
  });

  test('the DestinationRule has the stable and canary subsets, selected by app (Argo adds the pod-template hash)', () => {
    expect(find(objs, 'DestinationRule', 'istio-subset-split-destrule').spec).toEqual({
      host: 'istio-subset-split',
      subsets: [{ name: 'stable', labels: { app: 'istio-subset-split' } }, { name: 'canary', labels: { app: 'istio-subset-split' } }],
    });
  });

  test('the Rollout\'s trafficRouting and steps are the example\'s, field for field', () => {
    expect(rollout.spec.strategy.canary.trafficRouting).toEqual({
      istio: {
        virtualService: { name: 'istio-subset-split-vsvc', routes: ['primary'] },
        destinationRule: { name: 'istio-subset-split-destrule', canarySubsetName: 'canary', stableSubsetName: 'stable' },
      },
    });
    expect(rollout.spec.strategy.canary.steps).toEqual([{ setWeight: 10 }, { pause: {} }]);
    expect(rollout.spec.selector).toEqual({ matchLabels: { app: 'istio-subset-split' } });
  });

  test('it adopts the Deployment as docs/migrating.md shows (workloadRef with scaleDown), and the Deployment leaves replicas to the Rollout', () => {
    expect(rollout.metadata.name).toBe('istio-subset-split');
    expect(rollout.spec.workloadRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'istio-subset-split', scaleDown: 'onsuccess' });
    expect(rollout.spec.replicas).toBe(1);
    const d = find(objs, 'Deployment', 'istio-subset-split');
    expect(d.spec.replicas).toBeUndefined();
    expect(d.spec.template.metadata.labels).toMatchObject({ app: 'istio-subset-split', version: 'v2' });
    expect(d.spec.selector.matchLabels).toMatchObject({ app: 'istio-subset-split' });
    // The chart writes the canary's template only.
    expect(objs.filter((o) => o.kind === 'Deployment').map((o) => o.metadata.name)).toEqual(['istio-subset-split']);
  });

  test('background analysis from the first weight on, on Istio\'s metrics for the canary\'s version', () => {
    expect(rollout.spec.strategy.canary.analysis).toEqual({
      templates: [{ templateName: 'istio-subset-split-canary-health' }],
      startingStep: 0,
      args: [{ name: 'service', value: 'istio-subset-split.default.svc.cluster.local' }, { name: 'canary-version', value: 'v2' }],
    });
    const t = find(objs, 'AnalysisTemplate', 'istio-subset-split-canary-health').spec;
    expect(t.args).toEqual([{ name: 'service' }, { name: 'canary-version' }]);
    expect(t.metrics.map((m: any) => [m.name, m.interval, m.failureLimit, m.successCondition, m.provider.prometheus.address])).toEqual([
      ['success-rate', '1m', 4, 'result[0] >= 0.99', 'http://prometheus.istio-system:9090'],
      ['latency-p99', '1m', 4, 'result[0] <= 500', 'http://prometheus.istio-system:9090'],
    ]);
    expect(t.metrics[0].provider.prometheus.query).toBe(
      'sum(irate(istio_requests_total{reporter="source",destination_service=~"{{args.service}}",destination_version="{{args.canary-version}}",response_code!~"5.*"}[1m]))'
      + ' / sum(irate(istio_requests_total{reporter="source",destination_service=~"{{args.service}}",destination_version="{{args.canary-version}}"}[1m]))');
    expect(t.metrics[1].provider.prometheus.query).toBe(
      'histogram_quantile(0.99, sum(irate(istio_request_duration_milliseconds_bucket{reporter="source",destination_service=~"{{args.service}}",destination_version="{{args.canary-version}}"}[1m])) by (le))');
  });

  test('a header route: managedRoutes plus setHeaderRoute after the first weight (Argo\'s docs), each step paused for stepDuration', () => {
    const r = find(synth({
      steps: [10, 50], canaryHeader: { name: 'x-canary', match: { regex: 'Mozilla(.*)' } },
      progressiveDelivery: ProgressiveDelivery.argoRollouts({ stepDuration: '5m', analysis: { successRate: 99.5, maxLatency: '1s', interval: '30s', maxFailedChecks: 1 } }),
    }), 'Rollout');
    expect(r.spec.strategy.canary.trafficRouting.managedRoutes).toEqual([{ name: 'canary-by-header' }]);
    expect(r.spec.strategy.canary.steps).toEqual([
      { setWeight: 10 },
      { setHeaderRoute: { name: 'canary-by-header', match: [{ headerName: 'x-canary', headerValue: { regex: 'Mozilla(.*)' } }] } },
      { pause: { duration: '5m' } },
      { setWeight: 50 },
      { pause: { duration: '5m' } },
    ]);
  });

  test('the analysis settings reach the AnalysisTemplate; dynamicStableScale and abortScaleDownDelaySeconds the Rollout', () => {
    const objs2 = synth({ progressiveDelivery: ProgressiveDelivery.argoRollouts({ analysis: { successRate: 99.5, maxLatency: '1s', interval: '30s', maxFailedChecks: 1, prometheusAddress: 'http://prometheus.monitoring:9090' }, abortScaleDownDelaySeconds: 60, scaleDown: 'progressively' }) });
    const t = find(objs2, 'AnalysisTemplate').spec;
    expect(t.metrics.map((m: any) => [m.interval, m.failureLimit, m.successCondition, m.provider.prometheus.address])).toEqual([
      ['30s', 0, 'result[0] >= 0.995', 'http://prometheus.monitoring:9090'],
      ['30s', 0, 'result[0] <= 1000', 'http://prometheus.monitoring:9090'],
    ]);
    expect(t.metrics[0].provider.prometheus.query).toContain('[30s]');
    const r = find(objs2, 'Rollout').spec;
    expect(r.strategy.canary.abortScaleDownDelaySeconds).toBe(60);
    expect(r.workloadRef.scaleDown).toBe('progressively');
    expect(find(synth({ progressiveDelivery: ProgressiveDelivery.argoRollouts({ dynamicStableScale: true }) }), 'Rollout').spec.strategy.canary.dynamicStableScale).toBe(true);
  });

  test('every object passes the controllers\' and Istio\'s CRD schemas', () => {
    for (const o of objs) expect([o.kind, schemaError(o as never)]).toEqual([o.kind, undefined]);
  });
});

describe('Argo Rollouts on the node sidecar: a replica-ratio canary', () => {
  const objs = synth({ progressiveDelivery: ProgressiveDelivery.argoRollouts() }, DataPlane.NODE_SIDECAR);

  test('no traffic router: the Rollout steps the canary\'s share of the pods, and no VirtualService or subsets are written', () => {
    const r = find(objs, 'Rollout').spec;
    expect(r.strategy.canary.trafficRouting).toBeUndefined();
    expect(r.strategy.canary.steps.filter((s: any) => 'setWeight' in s)).toEqual([10, 20, 30, 40, 50].map((w) => ({ setWeight: w })));
    expect(objs.filter((o) => ['VirtualService', 'DestinationRule'].includes(o.kind))).toEqual([]);
    // The route table has the Service with no rules: the proxy balances over whatever pods it has.
    const table = JSON.parse((find(objs, 'ConfigMap', 'mesh-routes') as any).data['routes.json']);
    expect(table.virtualHosts).toEqual([]);
  });

  test('the analysis reads the whole Service (the proxy cannot tell the versions\' pods apart behind the ClusterIP)', () => {
    const t = find(objs, 'AnalysisTemplate').spec;
    expect(t.args).toEqual([{ name: 'service' }]);
    expect(t.metrics[0].provider.prometheus.query).not.toContain('destination_version');
    expect(find(objs, 'Rollout').spec.strategy.canary.analysis.args).toEqual([{ name: 'service', value: 'podinfo.default.svc.cluster.local' }]);
  });

  test('a timeout still reaches the route table through a rule of its own', () => {
    const withTimeout = synth({ timeout: '3s' }, DataPlane.NODE_SIDECAR);
    const table = JSON.parse((find(withTimeout, 'ConfigMap', 'mesh-routes') as any).data['routes.json']);
    expect(JSON.stringify(table.virtualHosts)).toContain('"timeoutMs":3000');
  });

  test('a header route is refused (it needs a traffic router)', () => {
    const e = refusal(() => synth({ canaryHeader: { name: 'x-canary', match: { exact: 'yes' } } }, DataPlane.NODE_SIDECAR));
    expect(e.message).toMatch(/^c\/release: canaryHeader is \{"name":"x-canary","match":\{"exact":"yes"\}\}; expected no Argo Rollouts header route \(canaryHeader\) on the node-sidecar data plane \(a header route needs a traffic router, and without one Argo Rollouts only scales replicas\); instead: drop canaryHeader, or use DataPlane.ISTIO$/);
  });
});

describe('Argo Rollouts on Gateway API: its traffic-router plugin', () => {
  // The plugin's quick start: two Services selecting the app, an HTTPRoute with both as
  // backends, a Rollout naming them and the route under trafficRouting.plugins.
  const objs = synth({ serviceName: 'podinfo', canaryHeader: { name: 'x-canary', match: { exact: 'yes' } } }, DataPlane.GATEWAY_API);
  const rollout = find(objs, 'Rollout').spec;

  test('stable and canary Services select the app (Argo adds its pod-template hash), the HTTPRoute starts at 100/0', () => {
    for (const name of ['podinfo-stable', 'podinfo-canary']) expect(find(objs, 'Service', name).spec.selector).toEqual({ app: 'podinfo' });
    expect(find(objs, 'HTTPRoute', 'podinfo-vs').spec.rules).toEqual([{ backendRefs: [{ name: 'podinfo-stable', port: 9898, weight: 100 }, { name: 'podinfo-canary', port: 9898, weight: 0 }] }]);
  });

  test('the Rollout names the Services and the HTTPRoute as the plugin\'s docs do, with header routes on it', () => {
    expect(rollout.strategy.canary.canaryService).toBe('podinfo-canary');
    expect(rollout.strategy.canary.stableService).toBe('podinfo-stable');
    expect(rollout.strategy.canary.trafficRouting).toEqual({
      managedRoutes: [{ name: 'canary-by-header' }],
      plugins: { 'argoproj-labs/gatewayAPI': { httpRoutes: [{ name: 'podinfo-vs', useHeaderRoutes: true }], namespace: 'default' } },
    });
    // Istio reports the backend Service as the destination: the analysis selects all three.
    expect(rollout.strategy.canary.analysis.args[0]).toEqual({ name: 'service', value: 'podinfo(-stable|-canary)?.default.svc.cluster.local' });
    for (const o of objs) expect([o.kind, schemaError(o as never)]).toEqual([o.kind, undefined]);
  });

  test('a mesh without Istio\'s metrics is refused (the analysis would find nothing)', () => {
    const c = new MeshChart(Testing.app(), 'c', { dataPlane: DataPlane.GATEWAY_API, gatewayApi: { mesh: 'linkerd' } });
    new CanaryRelease(c, 'release', { app: 'podinfo', port: 9898, canary: { version: 'v2', image: 'podinfo:2' }, steps: [10], progressiveDelivery: ProgressiveDelivery.argoRollouts() });
    expect(refusalsOf(() => c).problems).toEqual([expect.stringMatching(/^c\/release: progressiveDelivery is "Argo Rollouts"; expected a mesh whose metrics the analysis reads: with gatewayApi.mesh "linkerd" there are no Istio standard metrics/)]);
  });
});

describe('Flagger on Istio', () => {
  // Flagger's Istio tutorial (podinfo): its Canary's fields as a CanaryRelease writes them.
  const c = chart();
  new CanaryRelease(c, 'podinfo', {
    app: 'podinfo', port: 9898, canary: { version: 'v2', image: 'ghcr.io/stefanprodan/podinfo:6.0.1' },
    steps: [10, 20, 30, 40, 50],
    retries: { attempts: 3, perTryTimeout: '1s', retryOn: ['gateway-error', 'connect-failure', 'refused-stream'] },
    trafficPolicy: { tls: 'DISABLE' },
    progressiveDelivery: ProgressiveDelivery.flagger({
      progressDeadlineSeconds: 60,
      hosts: ['app.example.com'],
      gateways: ['istio-system/public-gateway'],
      webhooks: [
        { name: 'acceptance-test', type: 'pre-rollout', url: 'http://flagger-loadtester.test/', timeout: '30s', metadata: { type: 'bash', cmd: "curl -sd 'test' http://podinfo-canary:9898/token | grep token" } },
        { name: 'load-test', url: 'http://flagger-loadtester.test/', timeout: '5s', metadata: { cmd: 'hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/' } },
      ],
    }),
  });
  const objs = Testing.synth(c) as Obj[];
  const canary = find(objs, 'Canary', 'podinfo');

  test('targetRef, progressDeadlineSeconds and service are the tutorial\'s', () => {
    expect(canary.spec.targetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: 'podinfo' });
    expect(canary.spec.progressDeadlineSeconds).toBe(60);
    expect(canary.spec.service).toEqual({
      port: 9898, targetPort: 9898, gateways: ['istio-system/public-gateway'], hosts: ['app.example.com'],
      trafficPolicy: { tls: { mode: 'DISABLE' } },
      retries: { attempts: 3, perTryTimeout: '1s', retryOn: 'gateway-error,connect-failure,refused-stream' },
    });
  });

  test('analysis: interval, threshold, maxWeight 50 by stepWeight 10, the built-in success-rate and duration checks, the webhooks', () => {
    expect(canary.spec.analysis).toEqual({
      interval: '1m', threshold: 5, maxWeight: 50, stepWeight: 10,
      metrics: [
        { name: 'request-success-rate', thresholdRange: { min: 99 }, interval: '1m' },
        { name: 'request-duration', thresholdRange: { max: 500 }, interval: '1m' },
      ],
      webhooks: [
        { name: 'acceptance-test', type: 'pre-rollout', url: 'http://flagger-loadtester.test/', timeout: '30s', metadata: { type: 'bash', cmd: "curl -sd 'test' http://podinfo-canary:9898/token | grep token" } },
        { name: 'load-test', url: 'http://flagger-loadtester.test/', timeout: '5s', metadata: { cmd: 'hey -z 1m -q 10 -c 2 http://podinfo-canary.test:9898/' } },
      ],
    });
  });

  test('the chart writes the Deployment and the Canary only: Flagger writes the Services, the VirtualService and the DestinationRules', () => {
    expect(objs.map((o) => o.kind)).toEqual(['Deployment', 'Canary']);
    expect(find(objs, 'Deployment', 'podinfo').spec.replicas).toBe(1);
    for (const o of objs) expect([o.kind, schemaError(o as never)]).toEqual([o.kind, undefined]);
  });

  test('uneven steps become stepWeights; a Service name of its own is passed as service.name', () => {
    const s = find(synth({ serviceName: 'podinfo-svc', steps: [5, 25, 60], progressiveDelivery: ProgressiveDelivery.flagger() }), 'Canary').spec;
    expect(s.analysis.stepWeights).toEqual([5, 25, 60]);
    expect(s.analysis.maxWeight).toBeUndefined();
    expect(s.service.name).toBe('podinfo-svc');
  });

  test('A/B testing (the istio-ab-testing tutorial): iterations and a header match, no weights', () => {
    const s = find(synth({
      steps: undefined, canaryHeader: { name: 'x-canary', match: { regex: '.*insider.*' } },
      progressiveDelivery: ProgressiveDelivery.flagger({ iterations: 10, analysis: { maxFailedChecks: 10 } }),
    }), 'Canary').spec;
    expect(s.analysis).toMatchObject({ interval: '1m', threshold: 10, iterations: 10, match: [{ headers: { 'x-canary': { regex: '.*insider.*' } } }] });
    expect(s.analysis.stepWeight).toBeUndefined();
    expect(s.analysis.stepWeights).toBeUndefined();
  });

  test('a route or a policy of the chart\'s own for a Flagger-owned host is refused at synth', () => {
    const c2 = chart();
    const release = new CanaryRelease(c2, 'podinfo', { app: 'podinfo', port: 9898, canary: { version: 'v2', image: 'podinfo:2' }, steps: [10], progressiveDelivery: ProgressiveDelivery.flagger() });
    new TrafficRoute(c2, 'mine', { name: 'mine', hosts: [release], http: [{ route: [{ to: release }], timeout: '2s' }] });
    expect(() => Testing.synth(c2)).toThrow(/c\/mine: hosts is "podinfo.default"; expected a host Flagger does not route: it writes the VirtualService of podinfo for the release c\/podinfo/);
  });
});

describe('refusals name the construct, the value and what is expected', () => {
  test.each<[string, Partial<CanaryReleaseProps>, DataPlane, RegExp]>([
    ['Flagger on the node sidecar', { progressiveDelivery: ProgressiveDelivery.flagger() }, DataPlane.NODE_SIDECAR, /progressiveDelivery is "Flagger"; expected no CanaryRelease handed to Flagger \(ProgressiveDelivery.flagger\) on the node-sidecar data plane \(Flagger moves traffic by writing VirtualServices/],
    ['Flagger on Gateway API', { progressiveDelivery: ProgressiveDelivery.flagger() }, DataPlane.GATEWAY_API, /expected no CanaryRelease handed to Flagger \(ProgressiveDelivery.flagger\) on the gateway-api data plane \(Flagger's Gateway API provider writes its own HTTPRoute attached to a Gateway/],
    ['a stable version beside a controller', { stable: { version: 'v1', image: 'podinfo:1' } }, DataPlane.ISTIO, /stable is .*; expected no stable with progressiveDelivery: the controller keeps the running version's pods/],
    ['currentStep beside a controller', { steps: [10, 50], currentStep: 1 }, DataPlane.ISTIO, /currentStep is 1; expected no currentStep with progressiveDelivery: Argo Rollouts moves the weight/],
    ['100 alone', { steps: undefined, canaryWeight: 100 }, DataPlane.ISTIO, /canaryWeight is 100; expected at least one weight below 100/],
    ['a weight of 0', { steps: [0, 50] }, DataPlane.ISTIO, /steps is \[0,50\]; expected weights above 0/],
    ['a header match by presence', { canaryHeader: { name: 'x-canary', match: { present: true } } as never }, DataPlane.ISTIO, /canaryHeader.match is .*; expected exact, prefix or regex with Argo Rollouts/],
    ['Flagger\'s weighted steps with a header', { canaryHeader: { name: 'x-canary', match: { exact: 'yes' } }, progressiveDelivery: ProgressiveDelivery.flagger() }, DataPlane.ISTIO, /expected no canaryHeader with Flagger's weighted steps/],
    ['a Flagger option given to Argo', { progressiveDelivery: ProgressiveDelivery.argoRollouts({ iterations: 3 } as never) }, DataPlane.ISTIO, /progressiveDelivery.iterations is 3; expected no iterations for Argo Rollouts \(it is Flagger's option\)/],
    ['a Prometheus address for Flagger', { progressiveDelivery: ProgressiveDelivery.flagger({ analysis: { prometheusAddress: 'http://p:9090' } }) }, DataPlane.ISTIO, /expected no address for Flagger: it asks the Prometheus it was installed with/],
    ['a success rate above 100', { progressiveDelivery: ProgressiveDelivery.argoRollouts({ analysis: { successRate: 101 } }) }, DataPlane.ISTIO, /analysis.successRate is 101; expected a percentage above 0 and at most 100/],
    ['a bad step duration', { progressiveDelivery: ProgressiveDelivery.argoRollouts({ stepDuration: 'soon' }) }, DataPlane.ISTIO, /stepDuration is "soon"; expected a duration/],
    ['steps beside Flagger\'s iterations (they would be unused)', { progressiveDelivery: ProgressiveDelivery.flagger({ iterations: 5 }) }, DataPlane.ISTIO, /steps is \[10,20,30,40,50\]; expected no steps or canaryWeight with Flagger's iterations/],
    ['mirroring without iterations', { progressiveDelivery: ProgressiveDelivery.flagger({ mirror: true }) }, DataPlane.ISTIO, /mirror is true; expected mirror only with iterations/],
    ['not a ProgressiveDelivery', { progressiveDelivery: { engine: 'argo-rollouts' } as never }, DataPlane.ISTIO, /expected ProgressiveDelivery.argoRollouts\(\{...\}\) or ProgressiveDelivery.flagger/],
  ])('%s', (_name, props, plane, expected) => {
    const e = refusal(() => synth(props, plane));
    expect(e.message).toMatch(/^c\/release: /);
    expect(e.message).toMatch(expected);
  });

  test('rulesFor() is refused: the controller owns the split', () => {
    const c = chart();
    const r = new CanaryRelease(c, 'release', { app: 'podinfo', port: 9898, canary: { version: 'v2', image: 'podinfo:2' }, steps: [10], progressiveDelivery: ProgressiveDelivery.argoRollouts() });
    new MeshGateway(c, 'gw', { name: 'gw', servers: [{ port: 80, hosts: ['*'] }] });
    expect(() => r.rulesFor()).toThrow(/c\/release: rulesFor\(\) is \{\}; expected no rulesFor\(\) with progressiveDelivery: Argo Rollouts owns the split/);
  });

  test.each(Object.entries(NODE_SIDECAR_INEXPRESSIBLE))('the chart %s is refused on the node sidecar (%s)', (name) => {
    const entry = CHARTS.find((x) => x.name === name)!;
    expect(() => entry.create(new App(), `${name}-node-sidecar`, { dataPlane: DataPlane.NODE_SIDECAR })).toThrow(MeshValidationError);
  });
});

test('a chart made from scratch: Chart (not MeshChart) gets the Istio objects', () => {
  const c = new Chart(Testing.app(), 'plain');
  new CanaryRelease(c, 'release', { app: 'podinfo', port: 9898, canary: { version: 'v2', image: 'podinfo:2' }, steps: [10], progressiveDelivery: ProgressiveDelivery.argoRollouts() });
  expect((Testing.synth(c) as Obj[]).map((o) => o.kind).sort()).toEqual(['AnalysisTemplate', 'Deployment', 'DestinationRule', 'Rollout', 'Service', 'VirtualService']);
});
