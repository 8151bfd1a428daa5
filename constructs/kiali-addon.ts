import { ApiObject, Duration as CdkDuration, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { stringify } from 'yaml';
import { Check, checkDns1123Label } from '../model';
import { AddonUi, addonNamespace, checkPlacement, checkResources, checkUi, noInjection } from './addon-common';
import { JaegerAddon } from './jaeger-addon';
import { refuseUnknownProps } from './known-props';
import type { WorkloadResources } from './mesh-workload';
import { PrometheusAddon } from './prometheus-addon';
import { canonicalMemory, containerResources, omitServerDefaults, restrictedContainer } from './server-form';

/** The Kiali image of Istio's addon (istio/istio samples/addons/kiali.yaml). */
export const DEFAULT_KIALI_IMAGE = 'quay.io/kiali/kiali:v2.27';
/** The user the Kiali image runs as (its Dockerfile's USER). */
export const KIALI_UID = 1000;
/** Kiali's ports: the UI and API (under /kiali), and its own metrics. */
export const KIALI_PORTS = { api: 20001, metrics: 9090 } as const;

/** Kiali as Istio's addon installs it, pointed at the Prometheus and Jaeger addons. */
export interface KialiAddonProps {
  /** Where the addon runs. @default "istio-system" */
  readonly namespace?: string;
  /** The Kiali image. @default DEFAULT_KIALI_IMAGE */
  readonly image?: string;
  /** Where Kiali reads Istio's metrics. @default - http://prometheus.<namespace>.svc.cluster.local:9090, the addon's address */
  readonly prometheus?: PrometheusAddon;
  /** Where Kiali reads traces (the Jaeger query API under /jaeger). @default - no tracing in Kiali */
  readonly jaeger?: JaegerAddon;
  /** Istio's root namespace. @default "istio-system" */
  readonly istioRootNamespace?: string;
  /**
   * Kiali only reads: its ClusterRole has get/list/watch and no more, and its UI cannot edit
   * Istio objects. Istio's addon lets Kiali create, patch and delete them, with anonymous
   * access to the UI; set false for that.
   * @default true
   */
  readonly viewOnly?: boolean;
  /** The Service `kiali` (port 20001, UI at /kiali): its type and node port. @default { serviceType: "ClusterIP" } */
  readonly ui?: AddonUi;
  /** Kiali's CPU and memory. @default { cpuMillis: { request: 10, limit: 500 }, memoryMiB: { request: 64, limit: 1024 } } (the addon's, with a CPU limit) */
  readonly resources?: WorkloadResources;
  /**
   * Also write the Namespace object. Off where the chart's data plane has Istio installed
   * (it owns istio-system), on where nothing else creates it.
   * @default - true off Istio (once per chart: addons sharing a namespace write it once), false with Istio
   */
  readonly createNamespace?: boolean;
}

const READ = ['get', 'list', 'watch'];

/**
 * Kiali for a mesh, as Istio's addon (samples/addons/kiali.yaml) installs it: the
 * Deployment, ServiceAccount, ClusterRole and binding, the ConfigMap `kiali` and the
 * Service `kiali` (20001, UI under `/kiali`; 9090 its metrics), its Prometheus the
 * PrometheusAddon's and its tracing the JaegerAddon's query API. Unlike the addon: view-only
 * by default (read-only RBAC), resource limits, a Service type of your choice.
 *
 * ```ts
 * const jaeger = new JaegerAddon(chart, 'jaeger');
 * const prometheus = new PrometheusAddon(chart, 'prometheus');
 * new KialiAddon(chart, 'kiali', { prometheus, jaeger, ui: { serviceType: 'NodePort', nodePort: 30201 } });
 * ```
 */
export class KialiAddon extends Construct {
  readonly namespace: string;
  readonly deployment: kplus.Deployment;
  readonly service: k8s.KubeService;

  constructor(scope: Construct, id: string, props: KialiAddonProps = {}) {
    super(scope, id);
    const check: Check = new Check(this.node.path);
    check.shape('', props, {
      namespace: 'string?', image: 'string?', istioRootNamespace: 'string?', viewOnly: 'boolean?',
      ui: 'object?', resources: 'object?', createNamespace: 'boolean?',
    });
    // Keys the props interface does not declare are refused (JavaScript has no compiler to); a subclass may add its own.
    if (new.target === KialiAddon) refuseUnknownProps(this.node.path, 'KialiAddonProps', props);
    const image = props.image ?? DEFAULT_KIALI_IMAGE;
    const namespace = checkPlacement(check, props.namespace, image);
    if (props.prometheus !== undefined && !(props.prometheus instanceof PrometheusAddon)) check.fail('prometheus', props.prometheus, 'a PrometheusAddon');
    if (props.jaeger !== undefined && !(props.jaeger instanceof JaegerAddon)) check.fail('jaeger', props.jaeger, 'a JaegerAddon');
    const rootNamespace = props.istioRootNamespace ?? 'istio-system';
    checkDns1123Label(check, 'istioRootNamespace', rootNamespace);
    const viewOnly = props.viewOnly ?? true;
    const { serviceType, nodePort } = checkUi(check, props.ui ?? {});
    const { cpu, mem } = checkResources(check, props.resources ?? {}, { cpuMillis: { request: 10, limit: 500 }, memoryMiB: { request: 64, limit: 1024 } });

    this.namespace = namespace;
    const labels = { app: 'kiali' };
    addonNamespace(this, namespace, props.createNamespace);

    const account = new k8s.KubeServiceAccount(this, 'ServiceAccount', { metadata: { name: 'kiali', namespace, labels } });
    const write = viewOnly ? READ : [...READ, 'patch'];
    new k8s.KubeClusterRole(this, 'ClusterRole', {
      metadata: { name: viewOnly ? 'kiali-viewer' : 'kiali', labels },
      rules: [
        { apiGroups: [''], resources: ['configmaps', 'endpoints', 'pods/log'], verbs: READ },
        { apiGroups: [''], resources: ['namespaces', 'pods', 'replicationcontrollers', 'services'], verbs: write },
        ...(viewOnly ? [] : [{ apiGroups: [''], resources: ['pods/portforward'], verbs: ['create', 'post'] }]),
        { apiGroups: ['extensions', 'apps'], resources: ['daemonsets', 'deployments', 'replicasets', 'statefulsets'], verbs: write },
        { apiGroups: ['batch'], resources: ['cronjobs', 'jobs'], verbs: write },
        {
          apiGroups: ['networking.istio.io', 'security.istio.io', 'extensions.istio.io', 'telemetry.istio.io', 'gateway.networking.k8s.io', 'inference.networking.k8s.io'],
          resources: ['*'], verbs: viewOnly ? READ : [...READ, 'create', 'delete', 'patch'],
        },
        { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
        { apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations'], verbs: READ },
      ],
    });
    new k8s.KubeClusterRoleBinding(this, 'ClusterRoleBinding', {
      metadata: { name: 'kiali', labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: viewOnly ? 'kiali-viewer' : 'kiali' },
      subjects: [{ kind: 'ServiceAccount', name: account.name, namespace }],
    });
    const prometheusUrl = props.prometheus?.url ?? `http://prometheus.${namespace}.svc.cluster.local:9090`;
    const config = new kplus.ConfigMap(this, 'Config', {
      metadata: { name: 'kiali', namespace, labels },
      data: {
        'config.yaml': stringify({
          auth: { strategy: 'anonymous' },
          deployment: { accessible_namespaces: ['**'], cluster_wide_access: true, instance_name: 'kiali', namespace, view_only_mode: viewOnly },
          external_services: {
            custom_dashboards: { enabled: true },
            istio: { root_namespace: rootNamespace },
            prometheus: { url: prometheusUrl },
            tracing: props.jaeger
              // Jaeger's HTTP query API behind its `tracing` Service, under the UI's base path.
              ? { enabled: true, provider: 'jaeger', use_grpc: false, internal_url: `http://tracing.${props.jaeger.namespace}.svc.cluster.local:80/jaeger` }
              : { enabled: false },
          },
          server: { port: KIALI_PORTS.api, web_root: '/kiali', observability: { metrics: { enabled: true, port: KIALI_PORTS.metrics } } },
        }),
      },
    });

    this.deployment = new kplus.Deployment(this, 'Deployment', {
      metadata: { name: 'kiali', namespace, labels },
      replicas: 1,
      select: false,
      podMetadata: {
        labels: { ...labels, ...noInjection(this) },
        annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(KIALI_PORTS.metrics), 'prometheus.io/scheme': 'http', 'kiali.io/dashboards': 'go,kiali' },
      },
      serviceAccount: kplus.ServiceAccount.fromServiceAccountName(this, 'Account', account.name),
      // Kiali reads the cluster's objects with the ServiceAccount's token (cdk8s-plus mounts none by default).
      automountServiceAccountToken: true,
      securityContext: { ensureNonRoot: true, user: KIALI_UID, group: KIALI_UID, fsGroup: KIALI_UID },
    });
    this.deployment.select(kplus.LabelSelector.of({ labels }));
    ApiObject.of(this.deployment).addJsonPatch(JsonPatch.remove('/spec/template/metadata/labels/cdk8s.io~1metadata.addr'));
    const health = { port: KIALI_PORTS.api, initialDelaySeconds: CdkDuration.seconds(5), periodSeconds: CdkDuration.seconds(30) };
    const container = this.deployment.addContainer({
      name: 'kiali',
      image,
      imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
      command: ['/opt/kiali/kiali', '-config', '/kiali-configuration/config.yaml'],
      ports: [{ number: KIALI_PORTS.api, name: 'api-port' }, { number: KIALI_PORTS.metrics, name: 'http-metrics' }],
      envVariables: {
        ACTIVE_NAMESPACE: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.POD_NAMESPACE),
        LOG_LEVEL: kplus.EnvValue.fromValue('info'),
        LOG_FORMAT: kplus.EnvValue.fromValue('text'),
      },
      readiness: kplus.Probe.fromHttpGet('/kiali/healthz', health),
      liveness: kplus.Probe.fromHttpGet('/kiali/healthz', health),
      startup: kplus.Probe.fromHttpGet('/kiali/healthz', { port: KIALI_PORTS.api, failureThreshold: 6, initialDelaySeconds: CdkDuration.seconds(30), periodSeconds: CdkDuration.seconds(10) }),
      securityContext: restrictedContainer(KIALI_UID, KIALI_UID),
      resources: containerResources(cpu, mem),
    });
    canonicalMemory(ApiObject.of(this.deployment), 0, mem);
    omitServerDefaults(ApiObject.of(this.deployment));
    container.mount('/kiali-configuration', kplus.Volume.fromConfigMap(this, 'ConfigVolume', config, { name: 'kiali-configuration' }), { readOnly: true });

    const port = (name: string, p: number, extra: Partial<k8s.ServicePort> = {}): k8s.ServicePort =>
      ({ name, port: p, targetPort: k8s.IntOrString.fromNumber(p), protocol: 'TCP', appProtocol: 'http', ...extra });
    this.service = new k8s.KubeService(this, 'Service', {
      metadata: { name: 'kiali', namespace, labels },
      spec: {
        type: serviceType,
        selector: labels,
        ports: [port('http', KIALI_PORTS.api, nodePort !== undefined ? { nodePort } : {}), port('http-metrics', KIALI_PORTS.metrics)],
      },
    });
  }
}
