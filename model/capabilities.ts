// What each data plane carries of the traffic model: one table that the renderers ask
// (through the chart's gate in constructs/capability-gate.ts), that lint and the plan quote
// for what a chart dropped, and that the README's per-plane table is generated from.
// Plain data; no cdk8s.
import type { GatewayServerModel } from './gateway';
import type { SubsetModel, TrafficPolicyModel } from './policy';
import type { ServiceEntryModel } from './service-entry';
import type { TrafficRouteModel } from './traffic';

/** The data planes by the names `DataPlane` gives them (the model does not import the constructs). */
export type DataPlaneName = 'istio' | 'node-sidecar' | 'gateway-api';
export const DATA_PLANE_NAMES: readonly DataPlaneName[] = ['istio', 'node-sidecar', 'gateway-api'];

/**
 * How one data plane carries one feature: as Istio does; with a difference the user should
 * know (said in `note`); or not at all (`why`, and what to do `instead`). `enabledBy` names
 * a chart option under which an unsupported feature is carried after all.
 */
export type Support =
  | { readonly level: 'supported' }
  | { readonly level: 'differs'; readonly note: string }
  | {
    readonly level: 'unsupported';
    readonly why: string;
    readonly instead: string;
    readonly enabledBy?: { readonly option: string; readonly value: string; readonly note: string };
  };

export type FeatureArea = 'route rule' | 'match' | 'destination policy' | 'service entry' | 'gateway server' | 'progressive delivery' | 'tracing and addons';

/** One feature of the traffic model and how each data plane carries it. */
export interface Feature {
  /** Stable id, used in `MeshChartProps.dropUnsupported` and in lint and plan output. */
  readonly id: string;
  readonly area: FeatureArea;
  /** What the user writes, in the README's words. */
  readonly title: string;
  /**
   * Whether a chart may accept losing it on a data plane that cannot carry it. Never for a
   * match condition or a gateway server: without it requests would go elsewhere.
   */
  readonly droppable: boolean;
  readonly planes: Readonly<Record<DataPlaneName, Support>>;
}

const YES: Support = { level: 'supported' };
const differs = (note: string): Support => ({ level: 'differs', note });
const no = (why: string, instead: string, enabledBy?: { option: string; value: string; note: string }): Support =>
  ({ level: 'unsupported', why, instead, ...(enabledBy ? { enabledBy } : {}) });

/** Argo Rollouts' traffic-router plugin for Gateway API, registered in the controller's argo-rollouts-config (not the chart's). */
const PD_PLUGIN = 'argoproj-labs/gatewayAPI, registered in the controller\'s argo-rollouts-config';
/** What the node sidecar's endpoint-level policies rest on. */
const NODE_ENDPOINTS = 'over the EndpointSlices the proxy watches (a Role per namespace, the token in the proxy container only); without API access, the ClusterIP (said in the proxy\'s log and mesh_proxy_endpoint_source)';
const GW_POLICY = 'HTTPRoute has no traffic policy';
const GW_POLICY_ISTIO = { option: 'gatewayApi.trafficPolicies', value: 'istio', note: 'emitted as Istio DestinationRules for the Service hosts, which Istio applies to Gateway API traffic' };
const GW_POLICY_INSTEAD = 'gatewayApi.trafficPolicies "istio" (emitted as Istio DestinationRules, which Istio applies to Gateway API traffic)';
const GW_MATCH = (what: string): Support => no(`HTTPRouteMatch has no ${what}`, 'DataPlane.ISTIO or NODE_SIDECAR, or a match Gateway API has (path, headers, query parameters, exact method)');
/** Why the node-sidecar gateway does not serve a protocol, and what to use. */
const NODE_NON_HTTP: Readonly<Record<string, [string, string]>> = {
  HTTP2: ['the node-sidecar gateway speaks HTTP/1.1 (and TLS-terminated HTTPS) to clients', 'DataPlane.ISTIO'],
  GRPC: ['the node-sidecar gateway speaks HTTP/1.1 (and TLS-terminated HTTPS) to clients; gRPC needs HTTP/2', 'DataPlane.ISTIO'],
  TCP: ['the node-sidecar gateway routes HTTP requests by host and path, and a TCP stream names no host (the proxy does no transparent interception)', 'a Service of type LoadBalancer in front of the TCP workload, or DataPlane.ISTIO'],
  TLS: ['the node-sidecar gateway terminates TLS to route HTTP; passing TLS through by SNI is not done', 'an HTTPS server (tls.mode SIMPLE) that terminates TLS, a Service of type LoadBalancer in front of the TLS workload, or DataPlane.ISTIO'],
};
const NON_HTTP = (p: string): Feature => ({
  id: `gateway.protocol.${p}`, area: 'gateway server', title: `server protocol ${p}`, droppable: false,
  planes: {
    'istio': YES,
    'node-sidecar': no(...NODE_NON_HTTP[p]),
    'gateway-api': no(p === 'HTTP2' ? 'a Gateway listener has no HTTP2 protocol (HTTP/2 to a backend is chosen by its Service\'s appProtocol)' : `a ${p} listener needs ${p === 'GRPC' ? 'GRPCRoute' : p === 'TCP' ? 'TCPRoute' : 'TLSRoute'}, which this renderer does not write`, 'DataPlane.ISTIO'),
  },
});
const SERVER_TLS = (mode: string): Feature => ({
  id: `gateway.tls.${mode}`, area: 'gateway server', title: `server tls.mode ${mode}`, droppable: false,
  planes: {
    'istio': YES,
    'node-sidecar': no(mode === 'PASSTHROUGH'
      ? 'the node-sidecar gateway terminates TLS to route HTTP; passing TLS through by SNI is not done (no transparent interception)'
      : 'the node-sidecar gateway terminates TLS with a Secret (SIMPLE) only', mode === 'PASSTHROUGH' ? 'tls.mode SIMPLE, a Service of type LoadBalancer in front of the workload, or DataPlane.ISTIO' : 'DataPlane.ISTIO'),
    'gateway-api': no('a standard Gateway listener terminates TLS with certificateRefs (SIMPLE) only', 'DataPlane.ISTIO'),
  },
});

/** Every feature of the traffic model, against every data plane. */
export const CAPABILITIES: readonly Feature[] = [
  { id: 'route.weights', area: 'route rule', title: 'weighted destinations', droppable: false, planes: { 'istio': YES, 'node-sidecar': differs('exact smooth round robin per proxy (or random: sidecar.pick)'), 'gateway-api': YES } },
  { id: 'route.subset', area: 'route rule', title: 'destination subset', droppable: false, planes: { 'istio': YES, 'node-sidecar': differs('each subset is a per-version Service `<service>-<subset>` selecting its labels'), 'gateway-api': differs('each subset is a per-version Service `<service>-<subset>` (a backendRef is a Service)') } },
  { id: 'route.order', area: 'route rule', title: 'rule order (first match wins)', droppable: false, planes: { 'istio': YES, 'node-sidecar': YES, 'gateway-api': differs('Gateway API picks the most specific rule; an order it would change is refused') } },
  { id: 'route.timeout', area: 'route rule', title: 'timeout', droppable: false, planes: { 'istio': YES, 'node-sidecar': YES, 'gateway-api': differs('timeouts.request, in whole milliseconds') } },
  { id: 'route.retries', area: 'route rule', title: 'retries', droppable: false, planes: { 'istio': YES, 'node-sidecar': YES, 'gateway-api': differs('the retry field, experimental channel only (gatewayApi.channel), status codes only; perTryTimeout is timeouts.backendRequest') } },
  { id: 'route.fault', area: 'route rule', title: 'fault injection (delay, abort)', droppable: true, planes: { 'istio': YES, 'node-sidecar': YES, 'gateway-api': no('HTTPRoute has no fault filter', 'DataPlane.ISTIO or NODE_SIDECAR for fault scenarios') } },
  { id: 'route.mirror', area: 'route rule', title: 'mirror', droppable: false, planes: { 'istio': YES, 'node-sidecar': YES, 'gateway-api': differs('RequestMirror; the percentage must be whole') } },
  { id: 'route.redirect', area: 'route rule', title: 'redirect', droppable: false, planes: { 'istio': YES, 'node-sidecar': YES, 'gateway-api': differs('RequestRedirect; the uri replaces the full path') } },
  { id: 'route.rewrite', area: 'route rule', title: 'rewrite (uri, authority)', droppable: false, planes: { 'istio': YES, 'node-sidecar': YES, 'gateway-api': differs('URLRewrite: ReplacePrefixMatch after a prefix match (one rule per match block), ReplaceFullPath otherwise') } },
  { id: 'route.headers', area: 'route rule', title: 'request and response header operations', droppable: false, planes: { 'istio': YES, 'node-sidecar': YES, 'gateway-api': differs('Request/ResponseHeaderModifier; a Host set or added is URLRewrite hostname') } },
  { id: 'route.externalHost', area: 'route rule', title: 'host or destination outside the cluster (a name with dots that is not a Service)', droppable: false, planes: { 'istio': YES, 'node-sidecar': YES, 'gateway-api': no('GAMMA routes attach to Services and backendRefs name Services', 'DataPlane.ISTIO, or an ExternalName Service') } },
  { id: 'route.serviceEntryHost', area: 'route rule', title: 'host or destination that a ServiceEntry declares', droppable: false, planes: { 'istio': YES, 'node-sidecar': YES, 'gateway-api': differs('a parentRef of kind ServiceEntry and backendRefs of kind Hostname (group networking.istio.io), which Istio reads; refused with a gatewayApi.mesh other than Istio') } },
  { id: 'match.uri', area: 'match', title: 'uri exact, prefix, regex', droppable: false, planes: { 'istio': YES, 'node-sidecar': YES, 'gateway-api': differs('a prefix is PathPrefix, which matches whole path segments (/api matches /api/v1, not /apiv2)') } },
  { id: 'match.method', area: 'match', title: 'method', droppable: false, planes: { 'istio': YES, 'node-sidecar': YES, 'gateway-api': differs('exact methods only (a prefix or regex is refused)') } },
  { id: 'match.headers', area: 'match', title: 'headers, queryParams', droppable: false, planes: { 'istio': YES, 'node-sidecar': YES, 'gateway-api': differs('Exact or RegularExpression: a prefix p is the RE2 p.* with p quoted, presence is .*') } },
  { id: 'match.withoutHeaders', area: 'match', title: 'withoutHeaders', droppable: false, planes: { 'istio': YES, 'node-sidecar': YES, 'gateway-api': GW_MATCH('negated header condition') } },
  { id: 'match.ignoreUriCase', area: 'match', title: 'ignoreUriCase', droppable: false, planes: { 'istio': YES, 'node-sidecar': YES, 'gateway-api': GW_MATCH('case-insensitive path') } },
  { id: 'match.port', area: 'match', title: 'port match', droppable: false, planes: { 'istio': YES, 'node-sidecar': YES, 'gateway-api': GW_MATCH('port condition (the parentRef or listener chooses the port)') } },
  { id: 'policy.loadBalancer', area: 'destination policy', title: 'trafficPolicy.loadBalancer', droppable: true, planes: { 'istio': YES, 'node-sidecar': differs(`${NODE_ENDPOINTS}; ROUND_ROBIN, LEAST_REQUEST (two choices), RANDOM as Envoy; PASSTHROUGH sends to the Service's ClusterIP`), 'gateway-api': no(GW_POLICY, GW_POLICY_INSTEAD, GW_POLICY_ISTIO) } },
  { id: 'policy.consistentHash', area: 'destination policy', title: 'trafficPolicy.consistentHash (sticky sessions)', droppable: true, planes: { 'istio': YES, 'node-sidecar': differs(`${NODE_ENDPOINTS}; ring hash or Maglev on the proxy's own hash (FNV-1a), so keys map to other pods than under Envoy's xxHash`), 'gateway-api': no(`${GW_POLICY} (session persistence is an experimental BackendLBPolicy, cookie-based only)`, GW_POLICY_INSTEAD, GW_POLICY_ISTIO) } },
  { id: 'policy.connectionPool', area: 'destination policy', title: 'trafficPolicy.connectionPool', droppable: true, planes: { 'istio': YES, 'node-sidecar': differs('per Service (per subset: its own Service), as Envoy\'s circuit breakers per cluster; unset limits are the proxy\'s flags (1,024 connections and pending requests, where Istio writes 2^32-1); tcpKeepalive sets the idle time only (probes and interval are the kernel\'s)'), 'gateway-api': no(GW_POLICY, GW_POLICY_INSTEAD, GW_POLICY_ISTIO) } },
  { id: 'policy.outlierDetection', area: 'destination policy', title: 'trafficPolicy.outlierDetection', droppable: true, planes: { 'istio': YES, 'node-sidecar': differs(`${NODE_ENDPOINTS}; per proxy, as in Envoy: each pod's sidecar ejects on what it saw itself`), 'gateway-api': no(GW_POLICY, GW_POLICY_INSTEAD, GW_POLICY_ISTIO) } },
  { id: 'policy.tls', area: 'destination policy', title: 'trafficPolicy.tls', droppable: true, planes: { 'istio': YES, 'node-sidecar': no('the node sidecar does not originate TLS (ISTIO_MUTUAL needs Istio\'s workload certificates)', 'DataPlane.ISTIO'), 'gateway-api': no(GW_POLICY, GW_POLICY_INSTEAD, GW_POLICY_ISTIO) } },
  { id: 'serviceEntry', area: 'service entry', title: 'ServiceEntry (hosts, ports, location, resolution, endpoints, exportTo)', droppable: false, planes: { 'istio': YES, 'node-sidecar': differs('in the route table: REGISTRY_ONLY admits its hosts on its ports, plain HTTP is routed per request, HTTPS and other ports through CONNECT tunnels (HTTPS_PROXY); STATIC and DNS endpoints are the addresses the proxy connects to'), 'gateway-api': differs('an Istio ServiceEntry with gatewayApi.mesh "istio" or "istio-ambient" (refused with other meshes, which have no equivalent); routes to its hosts as route.serviceEntryHost') } },
  { id: 'serviceEntry.nonHttpPort', area: 'service entry', title: 'ServiceEntry port of a protocol other than HTTP (HTTPS, TLS, HTTP2, GRPC, TCP, ...)', droppable: false, planes: { 'istio': YES, 'node-sidecar': differs('reached through the proxy\'s CONNECT tunnel by clients that use it (HTTPS_PROXY); others connect directly: the proxy does not intercept traffic'), 'gateway-api': YES } },
  { id: 'serviceEntry.addresses', area: 'service entry', title: 'ServiceEntry addresses (virtual IPs, CIDR ranges)', droppable: false, planes: { 'istio': YES, 'node-sidecar': differs('requests and tunnels to an address in them are admitted under REGISTRY_ONLY; traffic to them that does not use the proxy is not intercepted'), 'gateway-api': YES } },
  { id: 'gateway.protocol.HTTP', area: 'gateway server', title: 'server protocol HTTP, HTTPS (tls.mode SIMPLE), httpsRedirect', droppable: false, planes: { 'istio': YES, 'node-sidecar': differs('ports below 1024 listen 8000 higher in the non-root proxy; the Service keeps the port'), 'gateway-api': differs('one listener per server and host; the selector is the GatewayClass controller\'s') } },
  NON_HTTP('HTTP2'), NON_HTTP('GRPC'), NON_HTTP('TCP'), NON_HTTP('TLS'),
  SERVER_TLS('MUTUAL'), SERVER_TLS('PASSTHROUGH'), SERVER_TLS('ISTIO_MUTUAL'),
  { id: 'gateway.hostNamespace', area: 'gateway server', title: 'server host with a namespace (ns/host)', droppable: false, planes: { 'istio': YES, 'node-sidecar': no('the node-sidecar gateway does not restrict which namespaces\' routes bind to a host', 'hosts "host" or "*/host", or DataPlane.ISTIO'), 'gateway-api': no('Gateway API restricts route namespaces per listener, not per host', 'hosts "host" or "*/host"') } },
  { id: 'release.argoRollouts', area: 'progressive delivery', title: 'CanaryRelease handed to Argo Rollouts (ProgressiveDelivery.argoRollouts)', droppable: false, planes: { 'istio': YES, 'node-sidecar': differs('a replica-ratio canary: no traffic router, so the split follows the pods the proxy balances over, and the analysis reads the whole Service'), 'gateway-api': differs(`Argo Rollouts' Gateway API plugin (${PD_PLUGIN}) sets the HTTPRoute's weights between the Services <service>-stable and <service>-canary; the analysis reads Istio's metrics, so gatewayApi.mesh "istio" or "istio-ambient" (whose HTTP metrics come from a waypoint), other meshes refused`) } },
  { id: 'release.argoRollouts.headerRoute', area: 'progressive delivery', title: 'Argo Rollouts header route (canaryHeader)', droppable: false, planes: { 'istio': YES, 'node-sidecar': no('a header route needs a traffic router, and without one Argo Rollouts only scales replicas', 'drop canaryHeader, or use DataPlane.ISTIO'), 'gateway-api': differs('the plugin\'s header routes (useHeaderRoutes on the HTTPRoute)') } },
  { id: 'release.flagger', area: 'progressive delivery', title: 'CanaryRelease handed to Flagger (ProgressiveDelivery.flagger)', droppable: false, planes: { 'istio': YES, 'node-sidecar': no('Flagger moves traffic by writing VirtualServices (or Gateway API routes), which the node sidecar does not read, and its kubernetes provider does blue/green only', 'ProgressiveDelivery.argoRollouts() (replica-ratio steps on this plane), or DataPlane.ISTIO'), 'gateway-api': no('Flagger\'s Gateway API provider writes its own HTTPRoute attached to a Gateway (north-south), with checks from MetricTemplates, which cdk8s-mesh does not write yet', 'ProgressiveDelivery.argoRollouts() (its Gateway API plugin), or DataPlane.ISTIO') } },
  { id: 'tracing', area: 'tracing and addons', title: 'MeshTracing (Zipkin or OpenTelemetry)', droppable: false, planes: { 'istio': YES, 'node-sidecar': differs('the proxy reports Zipkin v2 JSON, or OTLP/HTTP JSON to the collector\'s port 4318'), 'gateway-api': differs('Istio\'s Telemetry, with gatewayApi.mesh "istio" or "istio-ambient" only') } },
  { id: 'addons', area: 'tracing and addons', title: 'JaegerAddon, PrometheusAddon, KialiAddon', droppable: false, planes: { 'istio': YES, 'node-sidecar': differs('their Namespace is written too (createNamespace defaults to true: no Istio installation creates istio-system); Kiali finds no Istio objects, and its graph needs Istio\'s standard metrics, which the node sidecar does not export yet'), 'gateway-api': differs('their Namespace is written unless gatewayApi.mesh is "istio" or "istio-ambient" (createNamespace)') } },
];

const BY_ID = new Map(CAPABILITIES.map((f) => [f.id, f]));

/** A feature by id; unknown ids are our bug. */
export function feature(id: string): Feature {
  const f = BY_ID.get(id);
  if (!f) throw new Error(`cdk8s-mesh: no feature ${id} in the capability table`);
  return f;
}

/** One use of a feature in a chart: which one, the field it is written in, and its value. */
export interface FeatureUse {
  readonly feature: string;
  readonly field: string;
  readonly value: unknown;
}

const isExternal = (name: string) => name.includes('.') && !/^[^.]+\.[^.]+(\.svc(\..*)?)?$/.test(name);

/** The features a route's model uses, each with its field (as in the construct's props). */
export function routeFeatures(m: TrafficRouteModel): FeatureUse[] {
  const out: FeatureUse[] = [];
  const onMesh = m.gateways.length === 0 || m.gateways.includes('mesh');
  // A ServiceEntry's host is its own feature (Gateway API can name it, through Istio); other names with dots are external hosts.
  const outside = (to: { serviceName: string; serviceEntryRef?: unknown }) => (to.serviceEntryRef ? 'route.serviceEntryHost' : to.serviceName.includes('.') ? 'route.externalHost' : undefined);
  m.hosts.forEach((h, i) => {
    const feature = typeof h === 'string' ? (h !== '*' && isExternal(h) ? 'route.externalHost' : undefined) : outside(h);
    if (onMesh && feature) out.push({ feature, field: `hosts[${i}]`, value: typeof h === 'string' ? h : h.serviceName });
  });
  m.http.forEach((r, i) => {
    const f = `http[${i}]`;
    r.match.forEach((x, k) => {
      const mf = `${f}.match[${k}]`;
      if (Object.keys(x.withoutHeaders).length) out.push({ feature: 'match.withoutHeaders', field: `${mf}.withoutHeaders`, value: Object.keys(x.withoutHeaders) });
      if (x.ignoreUriCase) out.push({ feature: 'match.ignoreUriCase', field: `${mf}.ignoreUriCase`, value: true });
      if (x.port !== undefined) out.push({ feature: 'match.port', field: `${mf}.port`, value: x.port });
    });
    if (r.fault) out.push({ feature: 'route.fault', field: `${f}.fault`, value: r.fault.delay && r.fault.abort ? 'delay and abort' : r.fault.delay ? 'delay' : 'abort' });
    if (r.mirror) {
      out.push({ feature: 'route.mirror', field: `${f}.mirror`, value: r.mirror.to.serviceName });
      const feature = outside(r.mirror.to);
      if (feature) out.push({ feature, field: `${f}.mirror.to`, value: r.mirror.to.serviceName });
    }
    r.route.forEach((d, k) => {
      const feature = outside(d.to);
      if (feature) out.push({ feature, field: `${f}.route[${k}].to`, value: d.to.serviceName });
    });
  });
  return out;
}

const POLICY_FIELDS = ['loadBalancer', 'consistentHash', 'connectionPool', 'outlierDetection', 'tls'] as const;

/** The policy features a destination policy uses: its own trafficPolicy's and each subset's. */
export function policyFeatures(trafficPolicy: TrafficPolicyModel | undefined, subsets: readonly SubsetModel[]): FeatureUse[] {
  const uses = (prefix: string, p: TrafficPolicyModel | undefined) => POLICY_FIELDS
    .filter((k) => p?.[k] !== undefined)
    .map((k) => ({ feature: `policy.${k}`, field: `${prefix}.${k}`, value: p![k] }));
  return [...uses('trafficPolicy', trafficPolicy), ...subsets.flatMap((s, i) => uses(`subsets[${i}].trafficPolicy`, s.trafficPolicy))];
}

/** The features a ServiceEntry uses. */
export function serviceEntryFeatures(e: ServiceEntryModel): FeatureUse[] {
  const out: FeatureUse[] = [{ feature: 'serviceEntry', field: 'hosts', value: e.hosts }];
  e.ports.forEach((p, i) => {
    if (p.protocol !== 'HTTP') out.push({ feature: 'serviceEntry.nonHttpPort', field: `ports[${i}].protocol`, value: p.protocol });
  });
  if (e.addresses.length) out.push({ feature: 'serviceEntry.addresses', field: 'addresses', value: e.addresses });
  return out;
}

/** The server features a gateway uses. */
export function gatewayFeatures(servers: readonly GatewayServerModel[]): FeatureUse[] {
  return servers.flatMap((s, i) => {
    const f = `servers[${i}]`;
    const out: FeatureUse[] = [];
    out.push({ feature: s.protocol === 'HTTPS' ? 'gateway.protocol.HTTP' : `gateway.protocol.${s.protocol}`, field: `${f}.protocol`, value: s.protocol });
    if (s.tls && s.tls.mode !== 'SIMPLE') out.push({ feature: `gateway.tls.${s.tls.mode}`, field: `${f}.tls.mode`, value: s.tls.mode });
    s.hosts.forEach((h, j) => {
      const ns = h.includes('/') ? h.split('/')[0] : '*';
      if (ns !== '*' && ns !== '.') out.push({ feature: 'gateway.hostNamespace', field: `${f}.hosts[${j}]`, value: h });
    });
    return out;
  });
}

/** A route's model without the faults whose fields were dropped (the one droppable route feature). */
export function routeWithout(m: TrafficRouteModel, droppedFields: ReadonlySet<string>): TrafficRouteModel {
  if (droppedFields.size === 0) return m;
  return {
    ...m,
    http: m.http.map((r, i) => {
      if (!droppedFields.has(`http[${i}].fault`)) return r;
      const { fault: _dropped, ...rest } = r;
      return rest;
    }),
  };
}

/** A policy without the fields that were dropped; a trafficPolicy left empty is undefined. */
export function policyWithout(
  trafficPolicy: TrafficPolicyModel | undefined, subsets: readonly SubsetModel[], gone: ReadonlySet<string>,
): { trafficPolicy?: TrafficPolicyModel; subsets: readonly SubsetModel[] } {
  if (gone.size === 0) return { trafficPolicy, subsets };
  const strip = (prefix: string, p: TrafficPolicyModel | undefined): TrafficPolicyModel | undefined => {
    if (!p) return undefined;
    const kept = Object.fromEntries(POLICY_FIELDS.filter((k) => p[k] !== undefined && !gone.has(`${prefix}.${k}`)).map((k) => [k, p[k]]));
    return Object.keys(kept).length ? kept as TrafficPolicyModel : undefined;
  };
  return {
    trafficPolicy: strip('trafficPolicy', trafficPolicy),
    subsets: subsets.map((s, i) => {
      const { trafficPolicy: tp, ...rest } = s;
      const kept = strip(`subsets[${i}].trafficPolicy`, tp);
      return kept ? { ...rest, trafficPolicy: kept } : rest;
    }),
  };
}

/** The support of `id` on `plane` under the chart's options (an `enabledBy` option turns "unsupported" into "differs"). */
export function supportOf(id: string, plane: DataPlaneName, options: Readonly<Record<string, string | undefined>> = {}): Support {
  const s = feature(id).planes[plane];
  if (s.level === 'unsupported' && s.enabledBy && options[s.enabledBy.option] === s.enabledBy.value) return differs(s.enabledBy.note);
  return s;
}

/** The README's table: one row per feature, one column per data plane. */
export function capabilityTableMarkdown(): string {
  const cell = (s: Support) => (s.level === 'supported' ? 'yes'
    : s.level === 'differs' ? `yes: ${s.note}`
      : `**no**: ${s.why}${s.enabledBy ? `; yes with ${s.enabledBy.option} "${s.enabledBy.value}": ${s.enabledBy.note}` : ` (instead: ${s.instead})`}`);
  const rows = CAPABILITIES.map((f) => `| ${f.area} | ${f.title} | \`${f.id}\`${f.droppable ? ' (droppable)' : ''} | ${DATA_PLANE_NAMES.map((p) => cell(f.planes[p]).replace(/\|/g, '\\|')).join(' | ')} |`);
  return ['| area | feature | id | istio | node-sidecar | gateway-api |', '| --- | --- | --- | --- | --- | --- |', ...rows].join('\n');
}
