import { ApiObject, Duration as CdkDuration, JsonPatch, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { stringify } from 'yaml';
import { Check, checkDns1123Label } from '../model';
import { AddonUi, addonNamespace, checkPlacement, checkResources, checkUi, noInjection } from './addon-common';
import { WorkloadResources } from './mesh-workload';
import { canonicalMemory, containerResources, omitServerDefaults, restrictedContainer } from './server-form';
import { refuseUnknownProps } from './known-props';

/**
 * The Jaeger image of Istio's own addon (istio/istio samples/addons/jaeger.yaml: Jaeger v2,
 * an OpenTelemetry Collector build with Jaeger's storage and query UI).
 */
export const DEFAULT_JAEGER_IMAGE = 'docker.io/jaegertracing/jaeger:2.17.0';
/** The user the Jaeger image runs as (its Dockerfile's USER). */
export const JAEGER_UID = 10001;

/** Ports of the Jaeger all-in-one, as Istio's addon exposes them. */
export const JAEGER_PORTS = {
  query: 16686, queryGrpc: 16685, zipkin: 9411, otlpGrpc: 4317, otlpHttp: 4318,
  jaegerGrpc: 14250, jaegerHttp: 14268, health: 13133, metrics: 8888,
} as const;

/**
 * Where Jaeger keeps traces: in memory (lost on restart), or Badger on a PersistentVolumeClaim
 * (kept). Each type takes only its own fields; the others are refused at synth.
 */
export interface JaegerStorage {
  /** "memory" or "badger". */
  readonly type: 'memory' | 'badger';
  /** memory: traces kept; the oldest go first. @default 10000 */
  readonly maxTraces?: number;
  /** badger: the claim's size, a Kubernetes quantity. @default "10Gi" */
  readonly size?: string;
  /** badger: the claim's storage class. @default - the cluster's default class */
  readonly storageClassName?: string;
  /** badger: how long spans are kept, a Go duration. @default "72h" */
  readonly retention?: string;
}

/** How the query UI is reached (Service `tracing`, port 80). */
export interface JaegerUi extends AddonUi {
  /** The UI's base path, as Istio's addon serves it (UI at `<base>/search`). @default "/jaeger" */
  readonly basePath?: string;
}

/** Jaeger as Istio's addon installs it. */
export interface JaegerAddonProps {
  /** Where the addon runs. @default "istio-system" */
  readonly namespace?: string;
  /** The Jaeger v2 image. @default DEFAULT_JAEGER_IMAGE */
  readonly image?: string;
  /** Where traces are kept: bounded memory, or Badger on a claim to survive restarts. @default { type: "memory", maxTraces: 10000 } */
  readonly storage?: JaegerStorage;
  /** The query UI's Service `tracing`: its type, node port and base path. @default { serviceType: "ClusterIP", basePath: "/jaeger" } */
  readonly ui?: JaegerUi;
  /** The Jaeger container's CPU and memory. @default { cpuMillis: { request: 100, limit: 1000 }, memoryMiB: { request: 256, limit: 1024 } } */
  readonly resources?: WorkloadResources;
  /**
   * Also write the Namespace object. Off where the chart's data plane has Istio installed
   * (Istio, or Gateway API with mesh "istio" or "istio-ambient"): there `istio-system`
   * belongs to Istio's installation, and deleting this chart must not delete it. On where
   * nothing else creates it (node-sidecar, Gateway API on Linkerd or another mesh).
   * @default - true off Istio (once per chart: addons sharing a namespace write it once), false with Istio
   */
  readonly createNamespace?: boolean;
}

const GO_DURATION = /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/;
const QUANTITY = /^\d+(\.\d+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/;

/**
 * Jaeger for a mesh, as Istio's addon (samples/addons/jaeger.yaml) installs it: the
 * all-in-one Deployment `jaeger` (Zipkin, OTLP and Jaeger receivers, storage, query UI),
 * Services `tracing` (UI on port 80, under `/jaeger`), `zipkin` (9411: where Istio's Envoy
 * and the node sidecar send spans) and `jaeger-collector`. Unlike the addon: bounded
 * in-memory storage by default or Badger on a claim, non-root with a read-only root
 * filesystem, resource requests and limits, and a UI Service type of your choice.
 *
 * ```ts
 * const jaeger = new JaegerAddon(chart, 'jaeger', { ui: { serviceType: 'NodePort', nodePort: 30686 } });
 * new MeshTracing(chart, 'tracing', { collector: jaeger, samplingPercentage: 100 });
 * ```
 */
export class JaegerAddon extends Construct {
  readonly namespace: string;
  /** zipkin.<namespace>.svc.cluster.local: Istio's Zipkin provider and the node sidecar report here, on 9411. */
  readonly zipkinHost: string;
  /** jaeger-collector.<namespace>.svc.cluster.local: OTLP on 4317 (gRPC) and 4318 (HTTP). */
  readonly collectorHost: string;
  readonly deployment: kplus.Deployment;
  /** The UI's Service, `tracing`. */
  readonly uiService: k8s.KubeService;

  constructor(scope: Construct, id: string, props: JaegerAddonProps = {}) {
    super(scope, id);
    const check: Check = new Check(this.node.path);
    check.shape('', props, { namespace: 'string?', image: 'string?', storage: 'object?', ui: 'object?', resources: 'object?', createNamespace: 'boolean?' });
    // Keys the props interface does not declare are refused (JavaScript has no compiler to); a subclass may add its own.
    if (new.target === JaegerAddon) refuseUnknownProps(this.node.path, 'JaegerAddonProps', props);
    const image = props.image ?? DEFAULT_JAEGER_IMAGE;
    const namespace = checkPlacement(check, props.namespace, image);

    const storage = props.storage ?? { type: 'memory' };
    check.object('storage', storage);
    check.oneOf('storage.type', storage.type, ['memory', 'badger']);
    // One interface carries both types' fields (jsii has no discriminated unions): a field of
    // the other type would be ignored, so it is refused.
    const others = storage.type === 'memory' ? ['size', 'storageClassName', 'retention'] : ['maxTraces'];
    for (const k of others) {
      const v = (storage as unknown as Record<string, unknown>)[k];
      if (v !== undefined) check.fail(`storage.${k}`, v, `no ${k} with storage type "${storage.type}"`);
    }
    if (storage.type === 'memory') {
      check.shape('storage', storage, { type: 'string', maxTraces: 'number?' });
      check.integer('storage.maxTraces', storage.maxTraces ?? 10000, 1, 10_000_000);
    } else {
      check.shape('storage', storage, { type: 'string', size: 'string?', storageClassName: 'string?', retention: 'string?' });
      if (!QUANTITY.test(storage.size ?? '10Gi')) check.fail('storage.size', storage.size, 'a Kubernetes quantity such as "10Gi"');
      if (storage.storageClassName !== undefined) checkDns1123Label(check, 'storage.storageClassName', storage.storageClassName);
      if (!GO_DURATION.test(storage.retention ?? '72h')) check.fail('storage.retention', storage.retention, 'a Go duration such as "72h"');
    }

    const ui = props.ui ?? {};
    const { serviceType } = checkUi(check, ui, { basePath: 'string?' });
    const basePath = ui.basePath ?? '/jaeger';
    if (!/^\/[A-Za-z0-9._~/-]*$/.test(basePath) || (basePath.length > 1 && basePath.endsWith('/'))) {
      check.fail('ui.basePath', basePath, 'a path such as "/jaeger" (no trailing slash)');
    }

    const { cpu, mem } = checkResources(check, props.resources ?? {}, { cpuMillis: { request: 100, limit: 1000 }, memoryMiB: { request: 256, limit: 1024 } });

    this.namespace = namespace;
    this.zipkinHost = `zipkin.${namespace}.svc.cluster.local`;
    this.collectorHost = `jaeger-collector.${namespace}.svc.cluster.local`;
    const labels = { app: 'jaeger' };
    addonNamespace(this, namespace, props.createNamespace);

    const config = new kplus.ConfigMap(this, 'Config', {
      metadata: { name: 'jaeger', namespace, labels },
      data: { 'config.yaml': jaegerConfig(storage, basePath) },
    });

    this.deployment = new kplus.Deployment(this, 'Deployment', {
      metadata: { name: 'jaeger', namespace, labels },
      replicas: 1,
      select: false,
      // Badger holds a lock on its directory: the old pod must be gone before the new one opens it.
      strategy: storage.type === 'badger' ? kplus.DeploymentStrategy.recreate() : undefined,
      // Istio must not inject a proxy into its own tracing backend (as in Istio's addon);
      // other data planes never inject what is not a MeshWorkload and get no Istio marker.
      podMetadata: {
        labels: { ...labels, ...noInjection(this) },
        annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(JAEGER_PORTS.metrics) },
      },
      securityContext: { ensureNonRoot: true, user: JAEGER_UID, group: JAEGER_UID, fsGroup: JAEGER_UID },
      automountServiceAccountToken: false,
    });
    this.deployment.select(kplus.LabelSelector.of({ labels }));
    ApiObject.of(this.deployment).addJsonPatch(JsonPatch.remove('/spec/template/metadata/labels/cdk8s.io~1metadata.addr'));
    const health = { port: JAEGER_PORTS.health, periodSeconds: CdkDuration.seconds(10) };
    const container = this.deployment.addContainer({
      name: 'jaeger',
      image,
      imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
      args: ['--config', '/jaeger-configuration/config.yaml'],
      ports: [
        { number: JAEGER_PORTS.query, name: 'http-query' }, { number: JAEGER_PORTS.queryGrpc, name: 'grpc-query' },
        { number: JAEGER_PORTS.zipkin, name: 'http-zipkin' }, { number: JAEGER_PORTS.otlpGrpc, name: 'grpc-otel' },
        { number: JAEGER_PORTS.otlpHttp, name: 'http-otel' }, { number: JAEGER_PORTS.jaegerGrpc, name: 'grpc-jaeger' },
        { number: JAEGER_PORTS.jaegerHttp, name: 'http-jaeger' }, { number: JAEGER_PORTS.health, name: 'http-health' },
        { number: JAEGER_PORTS.metrics, name: 'http-metrics' },
      ],
      liveness: kplus.Probe.fromHttpGet('/status', health),
      readiness: kplus.Probe.fromHttpGet('/status', health),
      securityContext: restrictedContainer(JAEGER_UID, JAEGER_UID),
      resources: containerResources(cpu, mem),
    });
    canonicalMemory(ApiObject.of(this.deployment), 0, mem);
    omitServerDefaults(ApiObject.of(this.deployment));
    container.mount('/jaeger-configuration', kplus.Volume.fromConfigMap(this, 'ConfigVolume', config, { name: 'jaeger-configuration' }), { readOnly: true });
    container.mount('/tmp', kplus.Volume.fromEmptyDir(this, 'Tmp', 'tmp'));
    if (storage.type === 'badger') {
      const claim = new kplus.PersistentVolumeClaim(this, 'Data', {
        metadata: { name: 'jaeger-data', namespace, labels },
        accessModes: [kplus.PersistentVolumeAccessMode.READ_WRITE_ONCE],
        storage: Size.gibibytes(1), // replaced below by the exact quantity given
        storageClassName: storage.storageClassName,
      });
      ApiObject.of(claim).addJsonPatch(JsonPatch.replace('/spec/resources/requests/storage', k8s.Quantity.fromString(storage.size ?? '10Gi')));
      container.mount('/badger', kplus.Volume.fromPersistentVolumeClaim(this, 'DataVolume', claim, { name: 'data' }));
    }

    const service = (sid: string, name: string, ports: k8s.ServicePort[], extra: Partial<k8s.ServiceSpec> = {}) =>
      new k8s.KubeService(this, sid, { metadata: { name, namespace, labels }, spec: { type: 'ClusterIP', selector: labels, ports, ...extra } });
    const tcp = (name: string, port: number, targetPort = port, appProtocol?: string): k8s.ServicePort => ({
      name, port, targetPort: k8s.IntOrString.fromNumber(targetPort), protocol: 'TCP', ...(appProtocol ? { appProtocol } : {}),
    });
    this.uiService = service('Ui', 'tracing', [
      { ...tcp('http-query', 80, JAEGER_PORTS.query), ...(ui.nodePort !== undefined ? { nodePort: ui.nodePort } : {}) },
      tcp('grpc-query', JAEGER_PORTS.queryGrpc),
    ], { type: serviceType });
    // "zipkin": the name Istio's meshConfig and the node sidecar use, whatever the backend.
    service('Zipkin', 'zipkin', [tcp('http-zipkin', JAEGER_PORTS.zipkin)]);
    service('Collector', 'jaeger-collector', [
      // Istio's addon names; appProtocol tells Istio what they carry (the names do not).
      tcp('jaeger-collector-http', JAEGER_PORTS.jaegerHttp, JAEGER_PORTS.jaegerHttp, 'http'), tcp('jaeger-collector-grpc', JAEGER_PORTS.jaegerGrpc, JAEGER_PORTS.jaegerGrpc, 'grpc'),
      tcp('http-zipkin', JAEGER_PORTS.zipkin), tcp('grpc-otel', JAEGER_PORTS.otlpGrpc), tcp('http-otel', JAEGER_PORTS.otlpHttp),
    ]);
  }
}

/** Jaeger v2's configuration: Istio's addon pipeline (OTLP, Jaeger and Zipkin receivers), with the chosen storage. */
function jaegerConfig(storage: JaegerStorage, basePath: string): string {
  const backend = storage.type === 'memory'
    ? { memory: { max_traces: storage.maxTraces ?? 10000 } }
    : { badger: { ephemeral: false, ttl: { spans: storage.retention ?? '72h' }, directories: { keys: '/badger/key', values: '/badger/data' } } };
  const endpoint = (port: number) => ({ endpoint: `0.0.0.0:${port}` });
  return stringify({
    service: {
      extensions: ['jaeger_storage', 'jaeger_query', 'healthcheckv2'],
      pipelines: { traces: { receivers: ['otlp', 'jaeger', 'zipkin'], processors: ['batch'], exporters: ['jaeger_storage_exporter'] } },
      telemetry: {
        resource: { 'service.name': 'jaeger' },
        metrics: { level: 'detailed', readers: [{ pull: { exporter: { prometheus: { host: '0.0.0.0', port: JAEGER_PORTS.metrics } } } }] },
        logs: { level: 'info' },
      },
    },
    extensions: {
      jaeger_query: { base_path: basePath, storage: { traces: 'traces' } },
      jaeger_storage: { backends: { traces: backend } },
      healthcheckv2: { use_v2: true, http: endpoint(JAEGER_PORTS.health) },
    },
    receivers: {
      otlp: { protocols: { grpc: endpoint(JAEGER_PORTS.otlpGrpc), http: endpoint(JAEGER_PORTS.otlpHttp) } },
      jaeger: { protocols: { grpc: endpoint(JAEGER_PORTS.jaegerGrpc), thrift_http: endpoint(JAEGER_PORTS.jaegerHttp) } },
      zipkin: endpoint(JAEGER_PORTS.zipkin),
    },
    processors: { batch: {} },
    exporters: { jaeger_storage_exporter: { trace_storage: 'traces' } },
  });
}

