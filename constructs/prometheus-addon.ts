import { ApiObject, Duration as CdkDuration, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { stringify } from 'yaml';
import { Check, prometheusDurationMs } from '../model';
import { AddonUi, addonNamespace, checkPlacement, checkResources, checkUi, noInjection } from './addon-common';
import { refuseUnknownProps } from './known-props';
import type { WorkloadResources } from './mesh-workload';
import { canonicalMemory, containerResources, omitServerDefaults, restrictedContainer } from './server-form';

/** The Prometheus image of Istio's addon (istio/istio samples/addons/prometheus.yaml). */
export const DEFAULT_PROMETHEUS_IMAGE = 'docker.io/prom/prometheus:v3.10.0';
/** The config reloader Istio's addon runs beside Prometheus (it calls /-/reload when the ConfigMap changes). */
export const DEFAULT_CONFIG_RELOADER_IMAGE = 'ghcr.io/prometheus-operator/prometheus-config-reloader:v0.89.0';
/** The user both images run as (their Dockerfiles' USER nobody). */
export const PROMETHEUS_UID = 65534;
/** Prometheus's port (API, UI and its own metrics), as the addon's Service `prometheus` exposes it. */
export const PROMETHEUS_PORT = 9090;

/** Prometheus as Istio's addon installs it. */
export interface PrometheusAddonProps {
  /** Where the addon runs. @default "istio-system" */
  readonly namespace?: string;
  /** The Prometheus image. @default DEFAULT_PROMETHEUS_IMAGE */
  readonly image?: string;
  /** Run the addon's config reloader beside Prometheus (without it a changed configuration needs a restart). @default true */
  readonly configReloader?: boolean;
  /** The config reloader's image. @default DEFAULT_CONFIG_RELOADER_IMAGE */
  readonly configReloaderImage?: string;
  /** How long samples are kept (`--storage.tsdb.retention.time`; the data is on an emptyDir, so a restart loses it). @default "15d" (Istio's addon) */
  readonly retention?: string;
  /** How often targets are scraped. @default "15s" (Istio's addon) */
  readonly scrapeInterval?: string;
  /** The Service `prometheus` (port 9090): its type and node port. @default { serviceType: "ClusterIP" } */
  readonly ui?: AddonUi;
  /** The Prometheus container's CPU and memory. @default { cpuMillis: { request: 100, limit: 1000 }, memoryMiB: { request: 256, limit: 1024 } } */
  readonly resources?: WorkloadResources;
  /**
   * Also write the Namespace object. Off where the chart's data plane has Istio installed
   * (it owns istio-system), on where nothing else creates it.
   * @default - true off Istio (once per chart: addons sharing a namespace write it once), false with Istio
   */
  readonly createNamespace?: boolean;
}

const GO_DURATION = /^(\d+(ms|s|m|h|d|w|y))+$/;

/**
 * Prometheus for a mesh, as Istio's addon (samples/addons/prometheus.yaml) installs it: the
 * Deployment `prometheus` with its configuration reloader, the ServiceAccount, ClusterRole
 * and binding for Kubernetes discovery, the ConfigMap `prometheus` with the addon's scrape
 * jobs (among them `kubernetes-pods`, which reads the `prometheus.io/*` annotations Istio's
 * proxies and the node sidecar set) and the Service `prometheus` on 9090. Unlike the addon:
 * non-root with a read-only root filesystem, resource requests and limits, a Service type
 * of your choice.
 *
 * ```ts
 * const prometheus = new PrometheusAddon(chart, 'prometheus', { ui: { serviceType: 'NodePort', nodePort: 30090 } });
 * new KialiAddon(chart, 'kiali', { prometheus, jaeger });
 * ```
 */
export class PrometheusAddon extends Construct {
  readonly namespace: string;
  /** http://prometheus.<namespace>.svc.cluster.local:9090: where Kiali and `cdk8s-mesh observe --prometheus` query. */
  readonly url: string;
  readonly deployment: kplus.Deployment;
  readonly service: k8s.KubeService;

  constructor(scope: Construct, id: string, props: PrometheusAddonProps = {}) {
    super(scope, id);
    const check: Check = new Check(this.node.path);
    check.shape('', props, {
      namespace: 'string?', image: 'string?', configReloader: 'boolean?', configReloaderImage: 'string?', retention: 'string?', scrapeInterval: 'string?',
      ui: 'object?', resources: 'object?', createNamespace: 'boolean?',
    });
    // Keys the props interface does not declare are refused (JavaScript has no compiler to); a subclass may add its own.
    if (new.target === PrometheusAddon) refuseUnknownProps(this.node.path, 'PrometheusAddonProps', props);
    const image = props.image ?? DEFAULT_PROMETHEUS_IMAGE;
    const namespace = checkPlacement(check, props.namespace, image);
    const reloader = props.configReloaderImage ?? DEFAULT_CONFIG_RELOADER_IMAGE;
    if (/\s/.test(reloader)) check.fail('configReloaderImage', reloader, 'an image reference without spaces');
    const retention = props.retention ?? '15d';
    if (!GO_DURATION.test(retention)) check.fail('retention', retention, 'a Prometheus duration such as "15d" or "6h"');
    const scrapeInterval = props.scrapeInterval ?? '15s';
    if (!GO_DURATION.test(scrapeInterval)) check.fail('scrapeInterval', scrapeInterval, 'a Prometheus duration such as "15s"');
    const { serviceType, nodePort } = checkUi(check, props.ui ?? {});
    const { cpu, mem } = checkResources(check, props.resources ?? {}, { cpuMillis: { request: 100, limit: 1000 }, memoryMiB: { request: 256, limit: 1024 } });

    this.namespace = namespace;
    this.url = `http://prometheus.${namespace}.svc.cluster.local:${PROMETHEUS_PORT}`;
    // The addon's selector labels (its Helm chart's), on every object.
    const labels = { 'app.kubernetes.io/component': 'server', 'app.kubernetes.io/name': 'prometheus', 'app.kubernetes.io/instance': 'prometheus' };
    addonNamespace(this, namespace, props.createNamespace);

    const account = new k8s.KubeServiceAccount(this, 'ServiceAccount', { metadata: { name: 'prometheus', namespace, labels } });
    // Discovery of nodes, Services, endpoints and pods cluster-wide, as the addon's ClusterRole allows.
    new k8s.KubeClusterRole(this, 'ClusterRole', {
      metadata: { name: 'prometheus', labels },
      rules: [
        { apiGroups: [''], resources: ['nodes', 'nodes/metrics', 'services', 'endpoints', 'pods', 'ingresses', 'configmaps'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: ['networking.k8s.io'], resources: ['ingresses/status', 'ingresses'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
        { nonResourceUrLs: ['/metrics'], verbs: ['get'] },
      ],
    });
    new k8s.KubeClusterRoleBinding(this, 'ClusterRoleBinding', {
      metadata: { name: 'prometheus', labels },
      subjects: [{ kind: 'ServiceAccount', name: account.name, namespace }],
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'prometheus' },
    });
    const config = new kplus.ConfigMap(this, 'Config', {
      metadata: { name: 'prometheus', namespace, labels },
      data: { 'prometheus.yml': prometheusConfig(scrapeInterval), 'alerting_rules.yml': '{}\n', 'recording_rules.yml': '{}\n' },
    });

    this.deployment = new kplus.Deployment(this, 'Deployment', {
      metadata: { name: 'prometheus', namespace, labels },
      replicas: 1,
      select: false,
      // As the addon: one TSDB at a time.
      strategy: kplus.DeploymentStrategy.recreate(),
      podMetadata: { labels: { ...labels, ...noInjection(this) } },
      serviceAccount: kplus.ServiceAccount.fromServiceAccountName(this, 'Account', account.name),
      securityContext: { ensureNonRoot: true, user: PROMETHEUS_UID, group: PROMETHEUS_UID, fsGroup: PROMETHEUS_UID },
      // Enough for the TSDB to close its head block on shutdown (the addon's 300 s).
      terminationGracePeriod: CdkDuration.seconds(300),
      // Kubernetes discovery reads the API with the ServiceAccount's token (cdk8s-plus mounts none by default).
      automountServiceAccountToken: true,
    });
    this.deployment.select(kplus.LabelSelector.of({ labels }));
    ApiObject.of(this.deployment).addJsonPatch(JsonPatch.remove('/spec/template/metadata/labels/cdk8s.io~1metadata.addr'));
    const configVolume = kplus.Volume.fromConfigMap(this, 'ConfigVolume', config, { name: 'config-volume' });
    const port = { port: PROMETHEUS_PORT };
    const server = this.deployment.addContainer({
      name: 'prometheus-server',
      image,
      imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
      args: [
        `--storage.tsdb.retention.time=${retention}`, '--config.file=/etc/config/prometheus.yml', '--storage.tsdb.path=/data',
        '--web.console.libraries=/etc/prometheus/console_libraries', '--web.console.templates=/etc/prometheus/consoles', '--web.enable-lifecycle',
      ],
      ports: [{ number: PROMETHEUS_PORT, name: 'http' }],
      readiness: kplus.Probe.fromHttpGet('/-/ready', { ...port, periodSeconds: CdkDuration.seconds(5), timeoutSeconds: CdkDuration.seconds(4) }),
      liveness: kplus.Probe.fromHttpGet('/-/healthy', { ...port, initialDelaySeconds: CdkDuration.seconds(30), periodSeconds: CdkDuration.seconds(15), timeoutSeconds: CdkDuration.seconds(10) }),
      securityContext: restrictedContainer(PROMETHEUS_UID, PROMETHEUS_UID),
      resources: containerResources(cpu, mem),
    });
    canonicalMemory(ApiObject.of(this.deployment), 0, mem);
    server.mount('/etc/config', configVolume, { readOnly: true });
    server.mount('/data', kplus.Volume.fromEmptyDir(this, 'Storage', 'storage-volume'));
    if (props.configReloader ?? true) {
      this.deployment.addContainer({
        name: 'prometheus-server-configmap-reload',
        image: reloader,
        imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
        args: ['--watched-dir=/etc/config', '--listen-address=0.0.0.0:8080', `--reload-url=http://127.0.0.1:${PROMETHEUS_PORT}/-/reload`],
        ports: [{ number: 8080, name: 'metrics' }],
        liveness: kplus.Probe.fromHttpGet('/healthz', { port: 8080, initialDelaySeconds: CdkDuration.seconds(2), periodSeconds: CdkDuration.seconds(10) }),
        readiness: kplus.Probe.fromHttpGet('/healthz', { port: 8080, periodSeconds: CdkDuration.seconds(10) }),
        securityContext: restrictedContainer(PROMETHEUS_UID, PROMETHEUS_UID),
        resources: containerResources({ request: 10, limit: 100 }, { request: 16, limit: 64 }),
      }).mount('/etc/config', configVolume, { readOnly: true });
      canonicalMemory(ApiObject.of(this.deployment), 1, { request: 16, limit: 64 });
    }
    omitServerDefaults(ApiObject.of(this.deployment));

    this.service = new k8s.KubeService(this, 'Service', {
      metadata: { name: 'prometheus', namespace, labels },
      spec: {
        type: serviceType,
        selector: labels,
        ports: [{ name: 'http', port: PROMETHEUS_PORT, targetPort: k8s.IntOrString.fromNumber(PROMETHEUS_PORT), protocol: 'TCP', ...(nodePort !== undefined ? { nodePort } : {}) }],
      },
    });
  }
}

/** Kubernetes discovery through the pod's service account, as every job of the addon authenticates. */
const inCluster = {
  bearer_token_file: '/var/run/secrets/kubernetes.io/serviceaccount/token',
  tls_config: { ca_file: '/var/run/secrets/kubernetes.io/serviceaccount/ca.crt' },
};

/** The relabelling of the addon's annotation-driven jobs, for pods or Services. */
function annotated(kind: 'pod' | 'service', slow: boolean): object[] {
  const a = (name: string) => `__meta_kubernetes_${kind}_annotation_prometheus_io_${name}`;
  const address = kind === 'pod'
    ? [
      { action: 'replace', regex: '(\\d+);(([A-Fa-f0-9]{1,4}::?){1,7}[A-Fa-f0-9]{1,4})', replacement: '[$2]:$1', source_labels: [a('port'), '__meta_kubernetes_pod_ip'], target_label: '__address__' },
      { action: 'replace', regex: '(\\d+);((([0-9]+?)(\\.|$)){4})', replacement: '$2:$1', source_labels: [a('port'), '__meta_kubernetes_pod_ip'], target_label: '__address__' },
    ]
    : [{ action: 'replace', regex: '(.+?)(?::\\d+)?;(\\d+)', replacement: '$1:$2', source_labels: ['__address__', a('port')], target_label: '__address__' }];
  return [
    { action: 'keep', regex: true, source_labels: [a(slow ? 'scrape_slow' : 'scrape')] },
    ...(slow ? [] : [{ action: 'drop', regex: true, source_labels: [a('scrape_slow')] }]),
    { action: 'replace', regex: '(https?)', source_labels: [a('scheme')], target_label: '__scheme__' },
    { action: 'replace', regex: '(.+)', source_labels: [a('path')], target_label: '__metrics_path__' },
    ...address,
    { action: 'labelmap', regex: `${a('param')}_(.+)`, replacement: '__param_$1' },
    { action: 'labelmap', regex: `__meta_kubernetes_${kind}_label_(.+)` },
    { action: 'replace', source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
    kind === 'pod'
      ? { action: 'replace', source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' }
      : { action: 'replace', source_labels: ['__meta_kubernetes_service_name'], target_label: 'service' },
    ...(kind === 'pod' ? [{ action: 'drop', regex: 'Pending|Succeeded|Failed|Completed', source_labels: ['__meta_kubernetes_pod_phase'] }] : []),
    { action: 'replace', source_labels: ['__meta_kubernetes_pod_node_name'], target_label: 'node' },
  ];
}

/** prometheus.yml: the addon's scrape jobs (API servers, nodes, cAdvisor, annotated pods and Services, probed Services, itself, a pushgateway). */
export function prometheusConfig(scrapeInterval: string): string {
  const nodeLabels = { action: 'labelmap', regex: '__meta_kubernetes_node_label_(.+)' };
  const job = (name: string, role: string, rest: object) => ({ job_name: name, kubernetes_sd_configs: [{ role }], ...rest });
  return stringify({
    // The addon's 10 s timeout, or the interval when shorter: Prometheus refuses a timeout above the interval.
    global: { evaluation_interval: '1m', scrape_interval: scrapeInterval, scrape_timeout: (prometheusDurationMs(scrapeInterval) ?? 10_000) < 10_000 ? scrapeInterval : '10s' },
    rule_files: ['/etc/config/recording_rules.yml', '/etc/config/alerting_rules.yml'],
    scrape_configs: [
      job('kubernetes-api-servers', 'endpoints', {
        ...inCluster, scheme: 'https',
        relabel_configs: [{ action: 'keep', regex: 'default;kubernetes;https', source_labels: ['__meta_kubernetes_namespace', '__meta_kubernetes_service_name', '__meta_kubernetes_endpoint_port_name'] }],
      }),
      job('kubernetes-nodes', 'node', { ...inCluster, tls_config: { ...inCluster.tls_config, insecure_skip_verify: true }, scheme: 'https', relabel_configs: [nodeLabels] }),
      job('kubernetes-nodes-cadvisor', 'node', {
        ...inCluster, tls_config: { ...inCluster.tls_config, insecure_skip_verify: true }, scheme: 'https', metrics_path: '/metrics/cadvisor',
        relabel_configs: [nodeLabels, { source_labels: ['__metrics_path__'], target_label: 'metrics_path' }],
      }),
      job('kubernetes-pods', 'pod', { honor_labels: true, relabel_configs: annotated('pod', false) }),
      job('kubernetes-pods-slow', 'pod', { honor_labels: true, relabel_configs: annotated('pod', true), scrape_interval: '5m', scrape_timeout: '30s' }),
      job('kubernetes-service-endpoints', 'endpoints', { honor_labels: true, relabel_configs: annotated('service', false) }),
      job('kubernetes-service-endpoints-slow', 'endpoints', { honor_labels: true, relabel_configs: annotated('service', true), scrape_interval: '5m', scrape_timeout: '30s' }),
      // Services annotated prometheus.io/probe, probed through a blackbox exporter at `blackbox` (the addon's; not installed by it).
      job('kubernetes-services', 'service', {
        honor_labels: true, metrics_path: '/probe', params: { module: ['http_2xx'] },
        relabel_configs: [
          { action: 'keep', regex: 'true', source_labels: ['__meta_kubernetes_service_annotation_prometheus_io_probe'] },
          { source_labels: ['__address__'], target_label: '__param_target' },
          { replacement: 'blackbox', target_label: '__address__' },
          { source_labels: ['__param_target'], target_label: 'instance' },
          { action: 'labelmap', regex: '__meta_kubernetes_service_label_(.+)' },
          { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
          { source_labels: ['__meta_kubernetes_service_name'], target_label: 'service' },
        ],
      }),
      { job_name: 'prometheus', static_configs: [{ targets: ['localhost:9090'] }] },
      job('prometheus-pushgateway', 'service', {
        honor_labels: true,
        relabel_configs: [{ action: 'keep', regex: 'pushgateway', source_labels: ['__meta_kubernetes_service_annotation_prometheus_io_probe'] }],
      }),
    ],
  });
}
