import { ApiObject, Chart, Duration as CdkDuration, JsonPatch, Lazy, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import { Construct, IConstruct } from 'constructs';
import {
  Check, PACKAGE_VERSION, DestinationModel, ISTIO_DEFAULT_RETRY_ON, MeshValidationError, ROUTE_TABLE_API_VERSION,
  ROUTE_TABLE_DIR, ROUTE_TABLE_FILE, ROUTE_TABLE_KIND, RouteTable, RtExternal, RtGateway, RtProtocol, RtService, RtServiceTelemetry, RtTracing, RtMatch,
  RtRoute, RtVirtualHost, RuleModel,
  PRESTOP_WAIT_SECONDS, RtTrafficPolicy, ServiceRef, SIDECAR_PORTS, TrafficPolicyModel,
} from '../../model';
import {
  DataPlane, DestinationPolicyRendering, GatewayEnrollment, GatewayRendering, MeshChart, MeshRenderer, NodeSidecarOptions, RolloutRendering, RouteRendering, ServiceEntryRendering, TracingRendering,
} from '../mesh';
import { renderArgoRollout } from '../progressive/argo-rollouts';
import type { Duration } from '../../model/duration';
import type { MeshNamespace } from '../mesh-namespace';
import type { MeshWorkload } from '../mesh-workload';
import { cpuQuantity, omitServerDefaults, restrictedContainer } from '../server-form';
import { renderSubsetServices } from '../subset-services';

const PRESTOP_PATH = `/prestop/${PRESTOP_WAIT_SECONDS}`;
/** The proxy's preStop: the same wait as the app's, so that it outlives the app's last calls. */
const preStopWait = () => kplus.Handler.fromHttpGet(PRESTOP_PATH, { port: SIDECAR_PORTS.admin });

/** The proxy image the constructs use unless `sidecar.image` says otherwise (see README: Sidecar image). */
export const DEFAULT_SIDECAR_IMAGE = `ghcr.io/cdk8s-mesh/mesh-proxy:${PACKAGE_VERSION}`;
/** Name of the route table ConfigMap, one in every namespace with a proxy. */
export const ROUTE_TABLE_CONFIGMAP = 'mesh-routes';
export const SIDECAR_CONTAINER = 'mesh-proxy';
/** The proxy's UID/GID. Not Istio's 1337: to Istio (and to mesh lint) that UID means "traffic that bypasses the proxy". */
export const SIDECAR_UID = 10001;
/** What bypasses the proxy: loopback, the pod itself and the Kubernetes API (kubelet expands $(MESH_POD_IP) and $(KUBERNETES_SERVICE_HOST)). */
export const NO_PROXY = 'localhost,127.0.0.1,::1,$(MESH_POD_IP),kubernetes.default.svc,kubernetes.default.svc.cluster.local,$(KUBERNETES_SERVICE_HOST)';

const CONFIG_PATH = `${ROUTE_TABLE_DIR}/${ROUTE_TABLE_FILE}`;
/** The ServiceAccount meshed pods run as when their workload names none. */
export const PROXY_SERVICE_ACCOUNT = 'mesh-proxy';
/** The Role (and its RoleBinding) that lets the proxies list and watch EndpointSlices, in each namespace with Services. */
export const ENDPOINTS_READER = 'mesh-proxy-endpoints';
/** Where the proxy container, and only it, finds its token and the cluster's CA. */
export const PROXY_TOKEN_DIR = '/var/run/secrets/mesh-proxy';

/** The projected token (an hour, rotated by the kubelet) and the cluster's CA, mounted into the proxy container only. */
const TOKEN_VOLUME = {
  name: 'mesh-proxy-token',
  projected: {
    sources: [
      { serviceAccountToken: { path: 'token', expirationSeconds: 3600 } },
      // Optional: a cluster without the root CA ConfigMap still starts the pod; the proxy then falls back to ClusterIPs.
      { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }], optional: true } },
    ],
  },
};

/** A DestinationRule's policy as the proxy reads it (durations in milliseconds). TLS is refused on this plane before it gets here. */
export function routeTablePolicy(p: TrafficPolicyModel | undefined): RtTrafficPolicy | undefined {
  if (!p) return undefined;
  const ms = (d: Duration | undefined) => d?.toMilliseconds();
  const clean = <T extends object>(o: T): T | undefined => {
    const out = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
    return Object.keys(out).length ? out : undefined;
  };
  const ch = p.consistentHash;
  const tcp = p.connectionPool?.tcp;
  const http = p.connectionPool?.http;
  const od = p.outlierDetection;
  return clean({
    loadBalancer: p.loadBalancer,
    consistentHash: ch && clean({
      httpHeaderName: ch.httpHeaderName,
      httpCookie: ch.httpCookie && clean({ name: ch.httpCookie.name, path: ch.httpCookie.path, ttlMs: ms(ch.httpCookie.ttl) }),
      useSourceIp: ch.useSourceIp,
      httpQueryParameterName: ch.httpQueryParameterName,
      ringHash: ch.ringHash && (clean({ ...ch.ringHash }) ?? {}),
      maglev: ch.maglev && (clean({ ...ch.maglev }) ?? {}),
    }),
    connectionPool: p.connectionPool && clean({
      maxConnections: tcp?.maxConnections,
      connectTimeoutMs: ms(tcp?.connectTimeout),
      tcpKeepalive: tcp?.tcpKeepalive && (clean({ timeMs: ms(tcp.tcpKeepalive.time), probes: tcp.tcpKeepalive.probes, intervalMs: ms(tcp.tcpKeepalive.interval) }) ?? {}),
      http1MaxPendingRequests: http?.http1MaxPendingRequests,
      http2MaxRequests: http?.http2MaxRequests,
      maxRequestsPerConnection: http?.maxRequestsPerConnection,
      maxRetries: http?.maxRetries,
      idleTimeoutMs: ms(http?.idleTimeout),
    }),
    outlierDetection: od && (clean({
      consecutive5xxErrors: od.consecutive5xxErrors,
      consecutiveGatewayErrors: od.consecutiveGatewayErrors,
      intervalMs: ms(od.interval),
      baseEjectionTimeMs: ms(od.baseEjectionTime),
      maxEjectionPercent: od.maxEjectionPercent,
      minHealthPercent: od.minHealthPercent,
    }) ?? {}),
  });
}

/** A subset's policy over its rule's, field by field as Istio merges them (loadBalancer and consistentHash are one field there). */
function mergePolicy(base: TrafficPolicyModel | undefined, own: TrafficPolicyModel | undefined): TrafficPolicyModel | undefined {
  if (!own) return base;
  if (!base) return own;
  const lb = own.loadBalancer !== undefined || own.consistentHash !== undefined;
  return {
    loadBalancer: lb ? own.loadBalancer : base.loadBalancer,
    consistentHash: lb ? own.consistentHash : base.consistentHash,
    connectionPool: own.connectionPool ?? base.connectionPool,
    outlierDetection: own.outlierDetection ?? base.outlierDetection,
    tls: own.tls ?? base.tls,
  };
}

/** The proxy's environment: its namespace, and who it is in the spans it reports (Istio's `<app>.<namespace>`, the pod's name and IP). */
function proxyEnv(serviceName: string, workload: { name: string; app?: string; version?: string }): Record<string, kplus.EnvValue> {
  return {
    POD_NAMESPACE: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.POD_NAMESPACE),
    POD_NAME: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.POD_NAME),
    POD_IP: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.POD_IP),
    MESH_SERVICE_NAME: kplus.EnvValue.fromValue(serviceName),
    // Istio's source_workload, source_app and source_version labels.
    MESH_WORKLOAD_NAME: kplus.EnvValue.fromValue(workload.name),
    ...(workload.app ? { MESH_APP: kplus.EnvValue.fromValue(workload.app) } : {}),
    ...(workload.version ? { MESH_VERSION: kplus.EnvValue.fromValue(workload.version) } : {}),
  };
}

/** The annotations Istio's injector writes so that Prometheus scrapes the agent's merged metrics. */
const SCRAPE_ANNOTATIONS: Readonly<Record<string, string>> = {
  'prometheus.io/scrape': 'true', 'prometheus.io/port': String(SIDECAR_PORTS.stats), 'prometheus.io/path': '/stats/prometheus',
};

/**
 * The app's own metrics, when its pod asked Prometheus to scrape it: the proxy merges them
 * into its stats port, as Istio's agent does, since the annotations now name the proxy.
 */
function appMetricsUrl(check: Check, annotations: Readonly<Record<string, string>>): string | undefined {
  if (annotations['prometheus.io/scrape'] !== 'true' || !annotations['prometheus.io/port']) return undefined;
  const port = annotations['prometheus.io/port'];
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535 || Number(port) === SIDECAR_PORTS.stats || Number(port) === SIDECAR_PORTS.admin) {
    check.fail('podAnnotations.prometheus.io/port', port, `the app's metrics port (1-65535, not the proxy's ${SIDECAR_PORTS.admin} or ${SIDECAR_PORTS.stats}): the proxy merges the app's metrics into its own`);
  }
  const path = annotations['prometheus.io/path'] ?? '/metrics';
  if (!/^\/?[\x21-\x7e]*$/.test(path)) check.fail('podAnnotations.prometheus.io/path', path, 'a URL path without spaces or control characters');
  return `http://127.0.0.1:${port}${path.startsWith('/') ? path : `/${path}`}`;
}

function securityContext(): kplus.ContainerSecurityContextProps {
  return restrictedContainer(SIDECAR_UID, SIDECAR_UID);
}

/**
 * The data plane for clusters without Istio: rules become a route table
 * (ConfigMap `mesh-routes`) served by the project's Node.js proxy, injected as a
 * container into every workload in the mesh, and run as a Deployment per gateway.
 * Subsets become per-subset Services (`<service>-<subset>`), since there is no
 * Envoy to pick endpoints by label.
 */
export class NodeSidecarRenderer implements MeshRenderer {
  readonly dataPlane = DataPlane.NODE_SIDECAR;
  /** The proxy reads route tables, not the objects Argo Rollouts rewrites: replica counts move the split. */
  readonly rolloutTrafficRouter = false;
  private readonly routes: RouteRendering[] = [];
  private readonly entries: ServiceEntryRendering[] = [];
  private readonly gateways: Array<{ rendering: GatewayRendering; namespace: string }> = [];
  private readonly configMaps = new Map<string, kplus.IConfigMap>();
  private tracing: RtTracing | undefined;
  /** Per Service host (fully qualified): the policy its DestinationPolicy gives it (per-subset Services: merged with the subset's). */
  private readonly policies = new Map<string, RtTrafficPolicy>();
  /** The ServiceAccounts proxies run as (`namespace/name`), bound to the endpoints reader in every namespace with Services. */
  private readonly proxyAccounts = new Set<string>();
  /** Namespaces with Services, by the namespace value their objects carry; readers are written once a proxy exists. */
  private readonly serviceNamespaces = new Map<string, string | undefined>();
  private readonly readers = new Set<string>();
  private readonly generatedAccounts = new Set<string>();
  private readonly options: NodeSidecarOptions;
  private readonly image: string;

  constructor(private readonly chart: MeshChart) {
    this.options = chart.sidecar;
    const check: Check = new Check(chart.node.path);
    this.image = this.options.image ?? DEFAULT_SIDECAR_IMAGE;
    check.nonEmptyString('sidecar.image', this.image);
    if (this.options.outboundTrafficPolicy !== undefined) check.oneOf('sidecar.outboundTrafficPolicy', this.options.outboundTrafficPolicy, ['ALLOW_ANY', 'REGISTRY_ONLY']);
    if (this.options.pick !== undefined) check.oneOf('sidecar.pick', this.options.pick, ['round-robin', 'random']);
    if (this.options.gatewayServiceType !== undefined) check.oneOf('sidecar.gatewayServiceType', this.options.gatewayServiceType, ['LoadBalancer', 'NodePort', 'ClusterIP']);
  }

  private get clusterDomain(): string {
    return this.options.clusterDomain ?? 'cluster.local';
  }

  /** The namespace an object without one lands in. */
  private ns(namespace: string | undefined): string {
    return namespace ?? this.chart.namespace ?? 'default';
  }

  private fqdn(name: string, namespace: string | undefined): string {
    return name.includes('.') ? name : `${name}.${this.ns(namespace)}.svc.${this.clusterDomain}`;
  }

  enrollNamespace(_ns: MeshNamespace): void {
    // Injection happens here at synth time, per workload; the namespace needs no label.
  }

  enrollWorkload(w: MeshWorkload): void {
    // The proxies may call this workload's Service: its namespace gets the endpoints reader.
    this.endpointsReader(w.namespace);
    if (!w.inMesh) return;
    const configMap = this.configMapFor(w.namespace);
    const volume = kplus.Volume.fromConfigMap(w, 'MeshRoutes', configMap, { name: 'mesh-routes' });
    // The app's calls go through the proxy: plain HTTP as requests, HTTPS (and whatever else a
    // client sends through HTTPS_PROXY) as CONNECT tunnels; the pod itself, loopback and the
    // Kubernetes API are reached directly. MESH_POD_IP is defined first so NO_PROXY can name it.
    const proxyUrl = `http://127.0.0.1:${SIDECAR_PORTS.outbound}`;
    w.container.env.addVariable('MESH_POD_IP', kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.POD_IP));
    for (const [k, v] of [['HTTP_PROXY', proxyUrl], ['http_proxy', proxyUrl], ['HTTPS_PROXY', proxyUrl], ['https_proxy', proxyUrl], ['NO_PROXY', NO_PROXY], ['no_proxy', NO_PROXY]]) {
      w.container.env.addVariable(k, kplus.EnvValue.fromValue(v));
    }
    const appMetrics = appMetricsUrl(new Check(w.node.path), (w.deployment.podMetadata.toJson().annotations ?? {}) as Record<string, string>);
    const proxy = w.deployment.addContainer({
      name: SIDECAR_CONTAINER,
      image: this.image,
      imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
      args: ['--config', CONFIG_PATH, '--endpoints', 'kubernetes', ...(this.options.pick ? ['--pick', this.options.pick] : []), ...(appMetrics ? ['--merge-metrics', appMetrics] : [])],
      envVariables: proxyEnv(`${w.app}.${this.ns(w.namespace)}`, { name: w.deployment.name, app: w.app, version: w.version }),
      ports: [{ number: SIDECAR_PORTS.admin, name: 'mesh-admin' }, { number: SIDECAR_PORTS.stats, name: 'mesh-stats' }],
      readiness: kplus.Probe.fromHttpGet('/healthz/ready', { port: SIDECAR_PORTS.admin, periodSeconds: CdkDuration.seconds(5) }),
      // Blocks the next container's start until the proxy is ready (kubelet runs
      // postStart before starting the next container), as Istio's
      // holdApplicationUntilProxyStarts does.
      lifecycle: { postStart: kplus.Handler.fromCommand(['node', '/app/main.js', 'wait']), preStop: preStopWait() },
      securityContext: securityContext(),
      resources: {
        cpu: { request: cpuQuantity(50), limit: cpuQuantity(1000) },
        memory: { request: Size.mebibytes(64), limit: Size.mebibytes(128) },
      },
    });
    proxy.mount(ROUTE_TABLE_DIR, volume, { readOnly: true });
    // The proxy goes first, so that its postStart hook runs before the app starts.
    ApiObject.of(w.deployment).addJsonPatch(JsonPatch.move('/spec/template/spec/containers/1', '/spec/template/spec/containers/0'));
    // The app waits too before its SIGTERM: it keeps listening while the pod leaves the
    // endpoints (measured: without it, a rollout restart of productpage failed 1 of 4,022
    // page loads, 3 connections refused by a terminating pod, one past the 2 retries).
    ApiObject.of(w.deployment).addJsonPatch(JsonPatch.add('/spec/template/spec/containers/1/lifecycle', {
      // IntOrString, as the L1 KubeDeployment's own serializer expects at this stage.
      preStop: { httpGet: { path: PRESTOP_PATH, port: k8s.IntOrString.fromNumber(SIDECAR_PORTS.admin), scheme: 'HTTP' } },
    }));
    this.grantEndpoints(w.deployment, w.namespace, w.deployment.serviceAccount?.name);
    w.addPodAnnotation('mesh.cdk8s.io/proxy', 'node-sidecar');
    for (const [k, v] of Object.entries(SCRAPE_ANNOTATIONS)) w.addPodAnnotation(k, v);
  }

  renderRoute(_scope: Construct, _id: string, route: RouteRendering): void {
    // Rules are collected; each namespace's ConfigMap holds the whole chart's table.
    this.routes.push(route);
  }

  renderDestinationPolicy(scope: Construct, _id: string, p: DestinationPolicyRendering): void {
    renderSubsetServices(scope, this.chart, p, 'node-sidecar');
    const ns = p.service.serviceNamespace ?? p.namespace;
    this.endpointsReader(ns);
    const base = routeTablePolicy(p.trafficPolicy);
    if (base) this.policies.set(this.fqdn(p.service.serviceName, ns), base);
    for (const s of p.subsets) {
      const merged = routeTablePolicy(mergePolicy(p.trafficPolicy, s.trafficPolicy));
      if (merged) this.policies.set(this.fqdn(`${p.service.serviceName}-${s.name}`, ns), merged);
    }
  }

  renderRollout(scope: Construct, id: string, r: RolloutRendering): void {
    renderArgoRollout(scope, id, r, undefined);
  }

  renderServiceEntry(_scope: Construct, _id: string, e: ServiceEntryRendering): void {
    // Collected: the route table lists every entry's hosts for every proxy that sees it.
    this.entries.push(e);
  }

  /** A ServiceEntry's hosts as route-table services: ports, protocols, where to connect, who sees them. */
  private externalServices(e: ServiceEntryRendering): RtService[] {
    const m = e.model;
    const ns = this.ns(e.namespace);
    const endpoints: Record<string, Array<{ address: string; port: number }>> = {};
    if (m.endpoints.length) {
      for (const p of m.ports) endpoints[String(p.number)] = m.endpoints.map((x) => ({ address: x.address, port: x.ports?.[p.name] ?? p.targetPort ?? p.number }));
    }
    const exportTo = m.exportTo && !m.exportTo.includes('*') ? [...new Set(m.exportTo.map((x) => (x === '.' ? ns : x)))] : undefined;
    const external: RtExternal = {
      resolution: m.resolution,
      ...(m.endpoints.length ? { endpoints } : {}),
      ...(m.addresses.length ? { addresses: [...m.addresses] } : {}),
      ...(exportTo ? { exportTo } : {}),
    };
    return m.hosts.map((host) => ({
      host: this.fqdn(host, e.namespace),
      ports: m.ports.map((p) => p.number),
      portNames: m.ports.map((p) => p.name),
      ...(m.ports.some((p) => p.protocol !== 'HTTP') ? { protocols: m.ports.map((p) => p.protocol) } : {}),
      ...(this.policies.has(this.fqdn(host, e.namespace)) ? { policy: this.policies.get(this.fqdn(host, e.namespace)) } : {}),
      external,
    }));
  }

  /**
   * The proxy in `deployment`'s pod reads EndpointSlices: the pod runs as its workload's
   * ServiceAccount (or `mesh-proxy`, made here, with no token automounted), that account is
   * bound to the endpoints reader of every namespace with Services, and the token is
   * projected into the proxy container only (container 0; the app container gets none).
   */
  private grantEndpoints(deployment: kplus.Deployment, namespace: string | undefined, account: string | undefined): void {
    const ns = this.ns(namespace);
    if (account === undefined) {
      account = PROXY_SERVICE_ACCOUNT;
      if (!this.generatedAccounts.has(ns)) {
        this.generatedAccounts.add(ns);
        new k8s.KubeServiceAccount(this.chart, `mesh-proxy-account-${ns}`, {
          metadata: { name: PROXY_SERVICE_ACCOUNT, namespace, labels: { 'app.kubernetes.io/managed-by': 'cdk8s-mesh' } },
          automountServiceAccountToken: false,
        });
      }
      ApiObject.of(deployment).addJsonPatch(JsonPatch.add('/spec/template/spec/serviceAccountName', PROXY_SERVICE_ACCOUNT));
    }
    this.proxyAccounts.add(`${ns}/${account}`);
    for (const n of this.serviceNamespaces.values()) this.endpointsReader(n);
    const obj = ApiObject.of(deployment);
    obj.addJsonPatch(JsonPatch.add('/spec/template/spec/volumes/-', TOKEN_VOLUME));
    obj.addJsonPatch(JsonPatch.add('/spec/template/spec/containers/0/volumeMounts/-', { name: TOKEN_VOLUME.name, mountPath: PROXY_TOKEN_DIR, readOnly: true }));
  }

  /**
   * A Role allowing list and watch of EndpointSlices in `namespace`, bound to every proxy's
   * account of the chart; written once the chart has a proxy (a chart without one needs none).
   */
  private endpointsReader(namespace: string | undefined): void {
    const ns = this.ns(namespace);
    if (!this.serviceNamespaces.has(ns)) this.serviceNamespaces.set(ns, namespace);
    if (this.readers.has(ns) || this.proxyAccounts.size === 0) return;
    this.readers.add(ns);
    const labels = { 'app.kubernetes.io/managed-by': 'cdk8s-mesh' };
    new k8s.KubeRole(this.chart, `mesh-endpoints-role-${ns}`, {
      metadata: { name: ENDPOINTS_READER, namespace, labels },
      rules: [{ apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] }],
    });
    new k8s.KubeRoleBinding(this.chart, `mesh-endpoints-binding-${ns}`, {
      metadata: { name: ENDPOINTS_READER, namespace, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: ENDPOINTS_READER },
      // Every proxy of the chart, known once all constructs exist.
      subjects: Lazy.any({
        produce: () => [...this.proxyAccounts].sort().map((a) => ({ kind: 'ServiceAccount', name: a.split('/')[1], namespace: a.split('/')[0] })),
      }) as unknown as k8s.Subject[],
    });
  }

  /**
   * The gateway's pods exist from construction (its servers are rendered at synth): gateways
   * with one selector are served by one proxy Deployment, as Istio's ingress pods serve every
   * Gateway that selects them.
   */
  enrollGateway(scope: Construct, g: GatewayEnrollment): void {
    const namespace = this.ns(g.namespace);
    const shared = this.gatewayPods.get(this.gatewayKey(namespace, g.selector));
    const pods = shared ?? this.gatewayDeployment(scope, g, namespace);
    pods.names.push(`${namespace}/${g.name}`);
    if (shared) {
      ApiObject.of(shared.deployment).addJsonPatch(JsonPatch.replace('/spec/template/spec/containers/0/args', this.gatewayArgs(shared.names)));
    }
  }

  private gatewayKey(namespace: string, selector: Readonly<Record<string, string>>): string {
    return `${namespace}|${JSON.stringify(Object.entries(selector).sort())}`;
  }

  renderGateway(scope: Construct, _id: string, g: GatewayRendering): void {
    const check: Check = new Check(scope.node.path);
    const namespace = this.ns(g.namespace);
    g.servers.forEach((s, i) => {
      // Protocols other than HTTP(S), TLS modes other than SIMPLE and "ns/host" hosts are refused by the capability gate.
      // Ports below 1024 move up by 8000: 80 and 8080 on one gateway would share a listener.
      const clash = g.servers.findIndex((o, j) => j < i && listenPort(o.port) === listenPort(s.port));
      if (clash >= 0) check.fail(`servers[${i}].port`, s.port, `a port whose listener (${listenPort(s.port)}) differs from servers[${clash}]'s (${g.servers[clash].port}): the non-root proxy listens 8000 higher below 1024`);
    });
    // Servers of the gateways rendered before on the same pods share their listeners.
    const pods = this.gatewayPods.get(this.gatewayKey(namespace, g.selector));
    if (!pods) throw new Error(`cdk8s-mesh: gateway ${namespace}/${g.name} was rendered without enrollGateway`);
    g.servers.forEach((s, i) => {
      const other = pods.servers.find((o) => listenPort(o.server.port) === listenPort(s.port) && (o.server.protocol !== s.protocol || o.server.port !== s.port));
      if (other) {
        check.fail(`servers[${i}].port`, s.port, `a port that does not clash with gateway ${other.gateway}'s ${other.server.protocol} server on port ${other.server.port}: both select the same gateway pods (${pods.deployment.name}), which have one listener per port (${listenPort(s.port)}), serving one protocol`);
      }
    });
    this.gateways.push({ rendering: g, namespace });
    for (const s of g.servers) pods.servers.push({ gateway: `${namespace}/${g.name}`, server: s });
    for (const s of g.servers) {
      if (!pods.container.ports.some((p) => p.number === listenPort(s.port))) {
        // Port names are unique per container: a second gateway's "http" becomes "http-<port>".
        const name = pods.container.ports.some((p) => p.name === s.name.slice(0, 15)) ? `${s.protocol.toLowerCase()}-${listenPort(s.port)}` : s.name.slice(0, 15);
        pods.container.addPort({ number: listenPort(s.port), name });
      }
    }
    if (!pods.container.ports.some((p) => p.number === SIDECAR_PORTS.admin)) pods.container.addPort({ number: SIDECAR_PORTS.admin, name: 'mesh-admin' });
    if (!pods.container.ports.some((p) => p.number === SIDECAR_PORTS.stats)) pods.container.addPort({ number: SIDECAR_PORTS.stats, name: 'mesh-stats' });
    for (const s of g.servers) {
      if (!s.tls?.credentialName || pods.credentials.has(s.tls.credentialName)) continue;
      pods.credentials.add(s.tls.credentialName);
      // Optional: a missing Secret leaves only its HTTPS server down (the proxy logs it); the HTTP listeners still start.
      const secret = kplus.Secret.fromSecretName(scope, `Tls-${s.tls.credentialName}`, s.tls.credentialName);
      pods.container.mount(`${ROUTE_TABLE_DIR}/tls/${s.tls.credentialName}`, kplus.Volume.fromSecret(scope, `TlsVolume-${s.tls.credentialName}`, secret, { name: `tls-${s.tls.credentialName}`.slice(0, 63), optional: true }), { readOnly: true });
    }
  }

  private readonly gatewayPods = new Map<string, {
    deployment: kplus.Deployment; container: kplus.Container; names: string[]; credentials: Set<string>;
    servers: Array<{ gateway: string; server: GatewayRendering['servers'][number] }>;
  }>();

  private gatewayArgs(names: readonly string[]): string[] {
    return ['--mode', 'gateway', '--gateway', names.join(','), '--config', CONFIG_PATH, '--endpoints', 'kubernetes', ...(this.options.pick ? ['--pick', this.options.pick] : [])];
  }

  /** The proxy Deployment and Service for the gateways with `g`'s selector, named after the first of them. */
  private gatewayDeployment(scope: Construct, g: GatewayEnrollment, namespace: string) {
    const configMap = this.configMapFor(g.namespace);
    const labels = { ...g.selector };
    const deployment = new kplus.Deployment(scope, 'Deployment', {
      metadata: { name: g.name, namespace: g.namespace, labels },
      replicas: 1,
      select: false,
      podMetadata: { labels, annotations: { 'mesh.cdk8s.io/proxy': 'node-gateway', ...SCRAPE_ANNOTATIONS } },
      securityContext: { ensureNonRoot: true, user: SIDECAR_UID, group: SIDECAR_UID, fsGroup: SIDECAR_UID },
    });
    deployment.select(kplus.LabelSelector.of({ labels }));
    ApiObject.of(deployment).addJsonPatch(JsonPatch.remove('/spec/template/metadata/labels/cdk8s.io~1metadata.addr'));
    omitServerDefaults(ApiObject.of(deployment));
    const container = deployment.addContainer({
      name: SIDECAR_CONTAINER,
      image: this.image,
      imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
      args: this.gatewayArgs([`${namespace}/${g.name}`]),
      envVariables: proxyEnv(`${g.name}.${namespace}`, { name: g.name, app: labels.app, version: labels.version }),
      readiness: kplus.Probe.fromHttpGet('/healthz/ready', { port: SIDECAR_PORTS.admin, periodSeconds: CdkDuration.seconds(5) }),
      securityContext: securityContext(),
      resources: {
        cpu: { request: cpuQuantity(100), limit: cpuQuantity(2000) },
        memory: { request: Size.mebibytes(64), limit: Size.mebibytes(256) },
      },
    });
    container.mount(ROUTE_TABLE_DIR, kplus.Volume.fromConfigMap(scope, 'MeshRoutes', configMap, { name: 'mesh-routes' }), { readOnly: true });
    this.grantEndpoints(deployment, g.namespace, undefined);
    const pods = { deployment, container, names: [] as string[], credentials: new Set<string>(), servers: [] as Array<{ gateway: string; server: GatewayRendering['servers'][number] }> };
    new k8s.KubeService(scope, 'Service', {
      metadata: { name: g.name, namespace: g.namespace, labels },
      spec: {
        type: this.options.gatewayServiceType ?? 'LoadBalancer',
        selector: labels,
        // Every port of every gateway these pods serve, once (produced at synth, when all are known).
        ports: Lazy.any({
          produce: () => {
            const seen = new Set<number>();
            const names = new Set<string>();
            return pods.servers.filter(({ server: s }) => !seen.has(s.port) && seen.add(s.port)).map(({ server: s }) => {
              const name = names.has(s.name) ? `${s.protocol.toLowerCase()}-${s.port}` : s.name;
              names.add(name);
              return { name, port: s.port, targetPort: k8s.IntOrString.fromNumber(listenPort(s.port)), protocol: 'TCP' };
            });
          },
        }) as unknown as k8s.ServicePort[],
      },
    });
    this.gatewayPods.set(this.gatewayKey(namespace, g.selector), pods);
    return pods;
  }

  /** Every route table of the chart names the collector: the proxies send spans there (Zipkin v2 JSON, or OTLP/HTTP JSON to the collector's 4318). */
  renderTracing(_scope: Construct, _id: string, t: TracingRendering): void {
    this.tracing = t.zipkin
      ? { format: 'zipkin', endpoint: `http://${t.zipkin.host}:${t.zipkin.port}/api/v2/spans`, samplingPercentage: t.samplingPercentage }
      : { format: 'otlp', endpoint: `http://${t.otlp!.host}:${t.otlp!.httpPort}/v1/traces`, samplingPercentage: t.samplingPercentage };
  }

  // -------------------------------------------------------------------------

  private configMapFor(namespace: string | undefined): kplus.IConfigMap {
    const ns = this.ns(namespace);
    let cm = this.configMaps.get(ns);
    if (cm) return cm;
    const obj = new ApiObject(this.chart, `mesh-routes-${ns}`, {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: ROUTE_TABLE_CONFIGMAP, namespace, labels: { 'app.kubernetes.io/managed-by': 'cdk8s-mesh', 'mesh.cdk8s.io/route-table': 'true' } },
      data: { [ROUTE_TABLE_FILE]: Lazy.any({ produce: () => `${JSON.stringify(this.routeTable(), null, 2)}\n` }) },
    });
    cm = kplus.ConfigMap.fromConfigMapName(this.chart, `mesh-routes-ref-${ns}`, obj.name);
    this.configMaps.set(ns, cm);
    return cm;
  }


  /** The chart's rules as the proxy reads them. Produced at synth time, once all constructs exist. */
  routeTable(): RouteTable {
    const workloads = this.chart.node.findAll()
      .filter((c: IConstruct): c is ApiObject => c instanceof ApiObject && WORKLOAD_KINDS.has(c.kind) && Chart.of(c) === this.chart)
      .map((o) => ({ name: o.name, namespace: this.ns(o.metadata.namespace), labels: ((o.toJson().spec?.template?.metadata?.labels) ?? {}) as Record<string, string> }));
    const services: RtService[] = this.chart.node.findAll()
      .filter((c: IConstruct): c is ApiObject => c instanceof ApiObject && c.kind === 'Service' && Chart.of(c) === this.chart)
      .map((svc) => {
        const spec = svc.toJson().spec as { ports?: Array<{ port: number; name?: string; appProtocol?: string }>; selector?: Record<string, string> };
        const telemetry = this.telemetryOf(svc, spec.selector, workloads);
        const host = this.fqdn(svc.name, svc.metadata.namespace);
        const ports = spec.ports ?? [];
        const policy = this.policies.get(host);
        const protocols = ports.map(portProtocol);
        return {
          host, ports: ports.map((p) => p.port),
          // EndpointSlices name their ports after the Service's: how the proxy finds the target port.
          ...(ports.some((p) => p.name) ? { portNames: ports.map((p) => p.name ?? '') } : {}),
          ...(policy ? { policy } : {}),
          ...(telemetry ? { telemetry } : {}),
          ...(protocols.some((p) => p !== 'HTTP') ? { protocols } : {}),
        };
      });
    services.push(...this.entries.flatMap((e) => this.externalServices(e)));
    const virtualHosts: RtVirtualHost[] = this.routes.map((r) => {
      const ns = this.ns(r.namespace);
      return {
        name: `${ns}/${r.name}`,
        hosts: r.model.hosts.map((h) => (typeof h === 'string' ? (h === '*' || h.includes('.') ? h : this.fqdn(h, ns)) : this.fqdn(h.serviceName, h.serviceNamespace ?? ns))),
        gateways: r.model.gateways.length ? r.model.gateways.map((g) => (g === 'mesh' || g.includes('/') ? g : `${ns}/${g}`)) : ['mesh'],
        routes: r.model.http.map((rule) => this.route(rule, ns)),
      };
    });
    const gateways: RtGateway[] = this.gateways.map(({ rendering: g, namespace }) => ({
      name: `${namespace}/${g.name}`,
      servers: g.servers.map((s) => ({
        port: s.port,
        listenPort: listenPort(s.port),
        protocol: s.protocol as 'HTTP' | 'HTTPS',
        hosts: s.hosts.map((h) => (h.includes('/') ? h.split('/')[1] : h)),
        ...(s.httpsRedirect ? { httpsRedirect: true } : {}),
        ...(s.tls?.credentialName ? { tlsDir: `${ROUTE_TABLE_DIR}/tls/${s.tls.credentialName}` } : {}),
      })),
    }));
    return {
      apiVersion: ROUTE_TABLE_API_VERSION,
      kind: ROUTE_TABLE_KIND,
      clusterDomain: this.clusterDomain,
      outboundTrafficPolicy: this.options.outboundTrafficPolicy ?? 'ALLOW_ANY',
      services,
      virtualHosts,
      gateways,
      ...(this.tracing ? { tracing: this.tracing } : {}),
    };
  }

  /**
   * Istio's destination labels for a Service: its base Service (for a per-subset Service)
   * and, when exactly one workload of the chart is behind it, that workload's name, app and
   * version (Istio reads them from the answering pod; the proxy cannot, so only what is certain).
   */
  private telemetryOf(svc: ApiObject, selector: Record<string, string> | undefined, workloads: ReadonlyArray<{ name: string; namespace: string; labels: Record<string, string> }>): RtServiceTelemetry | undefined {
    const ns = this.ns(svc.metadata.namespace);
    const base = svc.metadata.getLabel('mesh.cdk8s.io/subset-of');
    const service = this.fqdn(base ?? svc.name, svc.metadata.namespace);
    const sel = Object.entries(selector ?? {});
    const behind = sel.length ? workloads.filter((w) => w.namespace === ns && sel.every(([k, v]) => w.labels[k] === v)) : [];
    if (behind.length !== 1) return base ? { service } : undefined;
    const l = behind[0].labels;
    const app = l.app ?? l['app.kubernetes.io/name'];
    const version = l.version ?? l['app.kubernetes.io/version'];
    return { service, workload: behind[0].name, ...(app ? { app } : {}), ...(version ? { version } : {}) };
  }

  private upstream(to: ServiceRef, subset: string | undefined, port: number | undefined, ns: string): { host: string; port?: number } {
    const name = subset ? `${to.serviceName}-${subset}` : to.serviceName;
    const p = port ?? (to.servicePorts?.length === 1 ? to.servicePorts[0] : undefined);
    return { host: this.fqdn(name, to.serviceNamespace ?? ns), ...(p === undefined ? {} : { port: p }) };
  }

  private route(r: RuleModel, ns: string): RtRoute {
    const match: RtMatch[] = r.match.map((m) => ({
      ...(m.uri ? { uri: { ...m.uri } } : {}),
      ...(m.method ? { method: { ...m.method } } : {}),
      ...(Object.keys(m.headers).length ? { headers: { ...m.headers } } : {}),
      ...(Object.keys(m.withoutHeaders).length ? { withoutHeaders: { ...m.withoutHeaders } } : {}),
      ...(Object.keys(m.queryParams).length ? { queryParams: { ...m.queryParams } } : {}),
      ...(m.port !== undefined ? { port: m.port } : {}),
      ...(m.ignoreUriCase ? { ignoreUriCase: true } : {}),
    }));
    return {
      ...(r.name ? { name: r.name } : {}),
      match,
      destinations: r.route.map((d: DestinationModel) => ({ ...this.upstream(d.to, d.subset, d.port, ns), weight: d.weight })),
      ...(r.redirect ? { redirect: redirectOf(r.redirect) } : {}),
      ...(r.rewrite ? { rewrite: { ...r.rewrite } } : {}),
      ...(r.timeout ? { timeoutMs: r.timeout.toMilliseconds() } : {}),
      ...(r.retries ? {
        retries: {
          attempts: r.retries.attempts,
          ...(r.retries.perTryTimeout ? { perTryTimeoutMs: r.retries.perTryTimeout.toMilliseconds() } : {}),
          retryOn: [...(r.retries.retryOn ?? ISTIO_DEFAULT_RETRY_ON)],
        },
      } : {}),
      ...(r.fault ? {
        fault: {
          ...(r.fault.delay ? { delay: { fixedDelayMs: r.fault.delay.fixedDelay.toMilliseconds(), percentage: r.fault.delay.percentage } } : {}),
          ...(r.fault.abort ? { abort: { ...r.fault.abort } } : {}),
        },
      } : {}),
      ...(r.mirror ? { mirror: { ...this.upstream(r.mirror.to, r.mirror.subset, r.mirror.port, ns), percentage: r.mirror.percentage } } : {}),
      ...(r.headers ? { headers: JSON.parse(JSON.stringify(r.headers)) } : {}),
    };
  }
}

function redirectOf(r: NonNullable<RuleModel['redirect']>): NonNullable<RtRoute['redirect']> {
  const { redirectCode, ...rest } = r;
  return { ...rest, code: redirectCode ?? 301 };
}

/** A Service port's protocol as Istio selects it: appProtocol, else the name's prefix; HTTP when neither says (the proxy speaks HTTP/1.1). */
export function portProtocol(p: { name?: string; appProtocol?: string }): RtProtocol {
  const a = (p.appProtocol ?? '').toLowerCase();
  if (a === 'kubernetes.io/h2c' || a === 'http2') return 'HTTP2';
  const key = a || (p.name ?? '').toLowerCase().split('-')[0];
  switch (key) {
    case 'http2': return 'HTTP2';
    case 'grpc': return (p.name ?? '').toLowerCase().startsWith('grpc-web') ? 'HTTP' : 'GRPC';
    case 'https': return 'HTTPS';
    case 'tcp': return 'TCP';
    case 'tls': return 'TLS';
    case 'mongo': return 'MONGO';
    case 'redis': return 'REDIS';
    case 'mysql': return 'MYSQL';
    default: return 'HTTP';
  }
}

/** What Istio counts as a workload (the pods' owner). */
const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet']);

/** Non-root processes cannot bind ports below 1024: move them up by 8000, as Istio's gateways do. */
export function listenPort(port: number): number {
  return port < 1024 ? port + 8000 : port;
}

/** Throws unless `chart` is a MeshChart (the node sidecar needs one to collect the table). */
export function nodeSidecarRenderer(chart?: MeshChart): NodeSidecarRenderer {
  if (!chart) throw new MeshValidationError('(no chart)', 'dataPlane', DataPlane.NODE_SIDECAR, 'constructs inside a MeshChart');
  return new NodeSidecarRenderer(chart);
}

