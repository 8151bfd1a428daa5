// Tracing: the Jaeger addon against the facts of Istio's own addon
// (istio/istio samples/addons/jaeger.yaml), the Telemetry and meshConfig Istio needs, and
// the collector the node sidecar's route tables name.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { Testing } from 'cdk8s';
import { parse } from 'yaml';
import { DataPlane, JaegerAddon, MeshChart, MeshNamespace, MeshTracing, MeshWorkload } from '../constructs';
import { find, K8sObject, ofKind, synthVariant, variant } from './support/synth';

function chart(dataPlane: DataPlane, build: (c: MeshChart) => void): K8sObject[] {
  const c = new MeshChart(Testing.app(), 'c', { dataPlane });
  build(c);
  return Testing.synth(c) as K8sObject[];
}
const ports = (svc: K8sObject) => svc.spec.ports.map((p: any) => [p.name, p.port, p.targetPort ?? p.port]);

describe('JaegerAddon: the objects of Istio\'s addon', () => {
  const objs = synthVariant(variant('bookinfo-tracing'));
  const deployment = find(objs, 'Deployment', 'jaeger', 'istio-system');
  const pod = deployment.spec.template;
  const [container] = pod.spec.containers;
  const config = parse(find(objs, 'ConfigMap', 'jaeger', 'istio-system').data['config.yaml']);

  test('Deployment jaeger in istio-system: the addon\'s image, config file, health probes; no sidecar', () => {
    expect(container.image).toBe('docker.io/jaegertracing/jaeger:2.17.0');
    expect(container.args).toEqual(['--config', '/jaeger-configuration/config.yaml']);
    expect([container.livenessProbe.httpGet, container.readinessProbe.httpGet].map((g: any) => [g.path, g.port])).toEqual([['/status', 13133], ['/status', 13133]]);
    expect(pod.metadata.labels).toEqual({ app: 'jaeger', 'sidecar.istio.io/inject': 'false' });
    expect(pod.metadata.annotations).toEqual({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '8888' });
  });

  test('Services tracing (UI on 80), zipkin (9411) and jaeger-collector, with the addon\'s port names', () => {
    expect(ports(find(objs, 'Service', 'tracing', 'istio-system'))).toEqual([['http-query', 80, 16686], ['grpc-query', 16685, 16685]]);
    expect(ports(find(objs, 'Service', 'zipkin', 'istio-system'))).toEqual([['http-zipkin', 9411, 9411]]);
    expect(ports(find(objs, 'Service', 'jaeger-collector', 'istio-system'))).toEqual([
      ['jaeger-collector-http', 14268, 14268], ['jaeger-collector-grpc', 14250, 14250], ['http-zipkin', 9411, 9411], ['grpc-otel', 4317, 4317], ['http-otel', 4318, 4318],
    ]);
    for (const name of ['tracing', 'zipkin', 'jaeger-collector']) expect(find(objs, 'Service', name, 'istio-system').spec.selector).toEqual({ app: 'jaeger' });
    // The seed reached the UI on a NodePort: the chart fixes it.
    const ui = find(objs, 'Service', 'tracing', 'istio-system');
    expect([ui.spec.type, ui.spec.ports[0].nodePort]).toEqual(['NodePort', 30686]);
  });

  test("the addon's pipeline: OTLP, Jaeger and Zipkin receivers on their ports, the UI under /jaeger, bounded memory", () => {
    expect(config.service.pipelines.traces).toEqual({ receivers: ['otlp', 'jaeger', 'zipkin'], processors: ['batch'], exporters: ['jaeger_storage_exporter'] });
    expect(config.receivers.zipkin.endpoint).toBe('0.0.0.0:9411');
    expect(config.receivers.otlp.protocols).toEqual({ grpc: { endpoint: '0.0.0.0:4317' }, http: { endpoint: '0.0.0.0:4318' } });
    expect(config.extensions.jaeger_query.base_path).toBe('/jaeger');
    expect(config.extensions.jaeger_storage.backends.traces).toEqual({ memory: { max_traces: 10000 } });
    expect(config.extensions.healthcheckv2.http.endpoint).toBe('0.0.0.0:13133');
  });

  test('secure by default: non-root, read-only root, no privilege escalation, capabilities dropped, RuntimeDefault seccomp, requests and limits', () => {
    expect(container.securityContext).toMatchObject({
      runAsNonRoot: true, runAsUser: 10001, allowPrivilegeEscalation: false, privileged: false, readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container.resources).toEqual({ requests: { cpu: '100m', memory: '256Mi' }, limits: { cpu: '1', memory: '1Gi' } });
    expect(pod.spec.automountServiceAccountToken).toBe(false);
  });

  test('Badger on a claim keeps traces across restarts: PVC, mounted at /badger, Recreate (one pod holds the files)', () => {
    const objs = chart(DataPlane.ISTIO, (c) => new JaegerAddon(c, 'j', { storage: { type: 'badger', size: '20Gi', storageClassName: 'fast', retention: '168h' } }));
    const pvc = find(objs, 'PersistentVolumeClaim', 'jaeger-data', 'istio-system');
    expect([pvc.spec.resources.requests.storage, pvc.spec.storageClassName, pvc.spec.accessModes]).toEqual(['20Gi', 'fast', ['ReadWriteOnce']]);
    const d = find(objs, 'Deployment', 'jaeger', 'istio-system');
    expect(d.spec.strategy).toEqual({ type: 'Recreate' });
    expect(d.spec.template.spec.volumes).toContainEqual({ name: 'data', persistentVolumeClaim: { claimName: 'jaeger-data', readOnly: false } });
    expect(d.spec.template.spec.containers[0].volumeMounts).toContainEqual({ mountPath: '/badger', name: 'data' });
    const cfg = parse(find(objs, 'ConfigMap', 'jaeger', 'istio-system').data['config.yaml']);
    expect(cfg.extensions.jaeger_storage.backends.traces.badger).toEqual({ ephemeral: false, ttl: { spans: '168h' }, directories: { keys: '/badger/key', values: '/badger/data' } });
  });

  test('on the node sidecar: no Istio marker on the pod; istio-system created only when asked', () => {
    const objs = synthVariant(variant('bookinfo-tracing-node-sidecar'));
    expect(find(objs, 'Deployment', 'jaeger', 'istio-system').spec.template.metadata.labels).toEqual({ app: 'jaeger' });
    expect(ofKind(objs, 'Namespace').map((n) => n.metadata.name).sort()).toEqual(['bookinfo', 'istio-system']);
    expect(ofKind(synthVariant(variant('bookinfo-tracing')), 'Namespace').map((n) => n.metadata.name)).toEqual(['bookinfo']);
  });
  // Refusals: test/bad-inputs.test.ts.
});

describe('MeshTracing', () => {
  test('Istio: a Telemetry mesh-default in the root namespace naming the provider, with the sampling percentage', () => {
    const t = find(synthVariant(variant('bookinfo-tracing')), 'Telemetry', 'mesh-default', 'istio-system');
    expect(t.apiVersion).toBe('telemetry.istio.io/v1');
    expect(t.spec).toEqual({ tracing: [{ providers: [{ name: 'jaeger' }], randomSamplingPercentage: 100 }] });
  });

  test("meshConfig: the extension provider Istio's tracing task documents, for Zipkin and for OpenTelemetry", () => {
    const c = new MeshChart(Testing.app(), 'c');
    const jaeger = new JaegerAddon(c, 'j', { namespace: 'observability' });
    const zipkin = new MeshTracing(c, 'z', { collector: jaeger });
    expect(zipkin.meshConfig).toEqual({ enableTracing: true, extensionProviders: [{ name: 'jaeger', zipkin: { service: 'zipkin.observability.svc.cluster.local', port: 9411 } }] });
    const c2 = new MeshChart(Testing.app(), 'c2');
    const otel = new MeshTracing(c2, 'o', { collector: new JaegerAddon(c2, 'j'), protocol: 'opentelemetry', providerName: 'otel' });
    expect(otel.meshConfig.extensionProviders).toEqual([{ name: 'otel', opentelemetry: { service: 'jaeger-collector.istio-system.svc.cluster.local', port: 4317 } }]);
    expect(parse(otel.meshConfigYaml())).toEqual({ meshConfig: otel.meshConfig });
    expect(otel.meshConfigYaml()).toMatch(/^# c2\/o: merge into the IstioOperator's spec.meshConfig/);
  });

  test('node sidecar: every route table names the collector; each proxy knows who it is in the spans', () => {
    const objs = synthVariant(variant('bookinfo-tracing-node-sidecar'));
    const tables = ofKind(objs, 'ConfigMap').filter((c) => c.metadata.name === 'mesh-routes').map((c) => JSON.parse(c.data['routes.json']));
    expect(tables.length).toBeGreaterThan(0);
    for (const t of tables) expect(t.tracing).toEqual({ format: 'zipkin', endpoint: 'http://zipkin.istio-system.svc.cluster.local:9411/api/v2/spans', samplingPercentage: 100 });
    const proxy = find(objs, 'Deployment', 'reviews-v2', 'bookinfo').spec.template.spec.containers.find((c: any) => c.name === 'mesh-proxy');
    expect(proxy.env.filter((e: any) => e.name !== 'POD_NAMESPACE')).toEqual([
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'MESH_SERVICE_NAME', value: 'reviews.bookinfo' },
      // Who it is in Istio's source_* metric labels.
      { name: 'MESH_WORKLOAD_NAME', value: 'reviews-v2' }, { name: 'MESH_APP', value: 'reviews' }, { name: 'MESH_VERSION', value: 'v2' },
    ]);
    expect(ofKind(objs, 'Telemetry')).toEqual([]);
  });

  test('node sidecar with OpenTelemetry: OTLP/HTTP JSON to the collector\'s 4318', () => {
    const objs = chart(DataPlane.NODE_SIDECAR, (c) => {
      new MeshWorkload(c, 'w', { app: 'web', image: 'web:1', port: 8080, namespace: new MeshNamespace(c, 'ns', { name: 'shop' }) });
      new MeshTracing(c, 't', { collector: { otlpHost: 'otel.obs.svc.cluster.local' }, protocol: 'opentelemetry', samplingPercentage: 5 });
    });
    expect(JSON.parse(find(objs, 'ConfigMap', 'mesh-routes', 'shop').data['routes.json']).tracing)
      .toEqual({ format: 'otlp', endpoint: 'http://otel.obs.svc.cluster.local:4318/v1/traces', samplingPercentage: 5 });
  });

  test('cdk8s-mesh mesh-config prints the fragment of the Istio charts with MeshTracing', () => {
    const out = execFileSync(process.execPath, [path.join(__dirname, '..', 'bin', 'cdk8s-mesh.js'), 'mesh-config'], { cwd: path.join(__dirname, '..'), encoding: 'utf8', stdio: 'pipe' });
    expect(parse(out)).toEqual({ meshConfig: { enableTracing: true, extensionProviders: [{ name: 'jaeger', zipkin: { service: 'zipkin.istio-system.svc.cluster.local', port: 9411 } }] } });
    expect(out).toContain('# bookinfo-tracing/tracing:');
  });
});
