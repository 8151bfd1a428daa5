// Mesh lint: istioctl-analyze-style checks over Kubernetes and Istio manifests,
// synthesized or read from YAML. Plain data in, findings out; no cdk8s here.
import { CALLS_ANNOTATION, Duration, hasProtocolPrefix, hostCandidates, isRe2, PROXY_RESERVED_PORTS, PROXY_UID } from '../model';
import { hostHeaderProblems } from '../model/host-header';

export type Severity = 'error' | 'warning' | 'info';

/** One lint finding: the check, a message saying what to fix, the object and where it came from. */
export interface Finding {
  readonly code: string;
  readonly severity: Severity;
  readonly message: string;
  readonly object: { readonly kind: string; readonly name: string; readonly namespace?: string };
  /** The construct path (synthesized objects) or `file#document` (YAML files). */
  readonly path?: string;
}

/** A manifest object and where it came from. */
export interface Manifest {
  readonly obj: K8s;
  readonly path?: string;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type K8s = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: any; [k: string]: any };

/** One lint check: code, severity, title and the istioctl analyze code it matches. */
export interface CheckInfo { readonly code: string; readonly severity: Severity; readonly title: string; readonly istioctl?: string }

/** Every check, for the docs table and the tests. */
export const CHECKS: readonly CheckInfo[] = [
  { code: 'MESH001', severity: 'error', title: 'Service selector matches no pod template' },
  { code: 'MESH002', severity: 'error', title: 'Deployment selector does not match its own pod template' },
  { code: 'MESH003', severity: 'error', title: 'VirtualService destination host not found', istioctl: 'IST0101' },
  { code: 'MESH004', severity: 'error', title: 'destination subset not defined by a DestinationRule', istioctl: 'IST0101' },
  { code: 'MESH005', severity: 'warning', title: 'DestinationRule subset selects no pod (no route sends it traffic)', istioctl: 'IST0173' },
  { code: 'MESH006', severity: 'error', title: 'destination without a port for a Service with several ports', istioctl: 'IST0112' },
  { code: 'MESH007', severity: 'error', title: 'two VirtualServices for one host in the mesh', istioctl: 'IST0109' },
  { code: 'MESH008', severity: 'warning', title: 'rule that can never match (an earlier rule catches all, or earlier rules have all its matches)', istioctl: 'IST0130' },
  { code: 'MESH009', severity: 'error', title: 'VirtualService host not among the hosts of its Gateway', istioctl: 'IST0132' },
  { code: 'MESH010', severity: 'error', title: 'two Gateways with the same selector, port and host', istioctl: 'IST0145' },
  { code: 'MESH011', severity: 'warning', title: 'short host name (rule host or destination) that only exists in another namespace' },
  { code: 'MESH012', severity: 'warning', title: 'Service port name without a protocol prefix and no appProtocol', istioctl: 'IST0118' },
  { code: 'MESH013', severity: 'warning', title: 'two Services send different ports to one targetPort of the same pods', istioctl: 'IST0137' },
  { code: 'MESH014', severity: 'error', title: 'pod runs as UID 1337 (the proxy\'s)', istioctl: 'IST0144' },
  { code: 'MESH015', severity: 'error', title: 'app container port in 15000-15090 (reserved by the proxy)' },
  { code: 'MESH016', severity: 'error', title: 'already injected pod in a namespace that injects automatically (double injection)' },
  { code: 'MESH017', severity: 'warning', title: 'workload calls a routed host but is outside the mesh' },
  { code: 'MESH018', severity: 'warning', title: 'namespace without injection whose workloads the mesh routes to' },
  { code: 'MESH019', severity: 'error', title: 'route weights all zero or not adding up to 100' },
  { code: 'MESH020', severity: 'error', title: 'percentage outside 0-100' },
  { code: 'MESH021', severity: 'error', title: 'invalid duration' },
  { code: 'MESH022', severity: 'error', title: 'regex that is not valid RE2' },
  { code: 'MESH023', severity: 'error', title: 'VirtualService bound to a Gateway that does not exist', istioctl: 'IST0101' },
  { code: 'MESH024', severity: 'error', title: 'two objects with the same kind, namespace and name (the second overwrites the first)' },
  { code: 'MESH025', severity: 'error', title: 'route sends traffic to a subset that selects no pod', istioctl: 'IST0173' },
  { code: 'MESH026', severity: 'warning', title: 'DestinationRule host is not a Service in the manifests', istioctl: 'IST0174' },
  { code: 'MESH027', severity: 'info', title: 'match block that an earlier one already covers (same match, or a longer prefix after a shorter one)', istioctl: 'IST0131' },
  { code: 'MESH028', severity: 'warning', title: 'DestinationRule TLS SIMPLE/MUTUAL without caCertificates: the server certificate is not verified', istioctl: 'IST0128/IST0129' },
  { code: 'MESH029', severity: 'warning', title: 'Gateway port not exposed by the Service of its gateway pods', istioctl: 'IST0162' },
  { code: 'MESH031', severity: 'warning', title: 'Services send one port of the same pods with different protocols', istioctl: 'IST0116' },
  { code: 'MESH032', severity: 'warning', title: 'two Gateways serve one TLS certificate (HTTP/2 connection reuse gives 404s)', istioctl: 'IST0138' },
  { code: 'MESH030', severity: 'warning', title: 'gateway route to a host whose mesh route splits by subset: ingress traffic skips the split', istioctl: 'IST0140' },
  { code: 'MESH033', severity: 'error', title: 'header operation on Host that Istio refuses (removed, on a response, or the authority set twice)' },
  { code: 'MESH034', severity: 'warning', title: 'feature not applied on the chart\'s data plane (dropped as its dropUnsupported allows; charts only)' },
  { code: 'MESH035', severity: 'warning', title: 'ServiceEntry with a TCP (or unset protocol) port and no addresses', istioctl: 'IST0134' },
  { code: 'MESH036', severity: 'error', title: 'Argo Rollout names a VirtualService, HTTPRoute or route that is not there' },
  { code: 'MESH037', severity: 'error', title: 'Argo Rollout names stable or canary subsets (or Services) that are not there' },
  { code: 'MESH038', severity: 'error', title: 'progressive-delivery target (Rollout workloadRef, Flagger targetRef) is not a Deployment of these manifests' },
  { code: 'MESH039', severity: 'warning', title: 'canary analysis reads metrics the data plane does not export' },
];

/**
 * Istio's standard metrics (https://istio.io/latest/docs/reference/config/metrics/), which
 * Istio's proxies export; the node sidecar exports them less the gRPC message counts, and
 * only as reporter="source" (it is the caller's proxy).
 */
const ISTIO_STANDARD_METRICS = ['istio_requests_total', 'istio_request_duration_milliseconds', 'istio_request_bytes', 'istio_response_bytes',
  'istio_request_messages_total', 'istio_response_messages_total', 'istio_tcp_sent_bytes_total', 'istio_tcp_received_bytes_total',
  'istio_tcp_connections_opened_total', 'istio_tcp_connections_closed_total'];
const NODE_SIDECAR_METRICS = ISTIO_STANDARD_METRICS.filter((m) => !m.endsWith('_messages_total'));

/** The data-plane metrics a PromQL query selects (istio_*, envoy_*, mesh_proxy_*), histogram suffixes removed. */
export function meshMetricsIn(query: string): string[] {
  const bare = query.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/'(?:[^'\\]|\\.)*'/g, "''");
  const names = [...bare.matchAll(/\b((?:istio|envoy|mesh_proxy)_[a-zA-Z0-9_:]*)\s*[{[)]/g)].map((m) => m[1].replace(/_(bucket|sum|count)$/, ''));
  return [...new Set(names)];
}
const SEVERITY = new Map(CHECKS.map((c) => [c.code, c.severity]));

/** Namespaces istioctl analyze leaves alone (they hold the cluster's and Istio's own objects). */
const SYSTEM_NAMESPACES = new Set(['kube-system', 'kube-public', 'kube-node-lease', 'local-path-storage', 'istio-system']);
/** Node and locality labels: Istio matches them against the endpoint's node, not the pod's labels. */
const isTopologyLabel = (k: string) => /^(topology\.kubernetes\.io|topology\.istio\.io|failure-domain\.beta\.kubernetes\.io|node\.kubernetes\.io)\//.test(k) || k === 'kubernetes.io/hostname';

const WORKLOAD_KINDS = ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job'];
const isIstio = (o: K8s, kind: string) => o.kind === kind && /^networking\.istio\.io\//.test(o.apiVersion);
const nsOf = (o: { metadata: { namespace?: string } }) => o.metadata.namespace ?? 'default';

interface Pod { owner: Manifest; namespace: string; labels: Record<string, string>; annotations: Record<string, string>; spec: K8s['spec'] }

function podOf(m: Manifest): Pod | undefined {
  const o = m.obj;
  if (o.kind === 'Pod') return { owner: m, namespace: nsOf(o), labels: o.metadata.labels ?? {}, annotations: o.metadata.annotations ?? {}, spec: o.spec ?? {} };
  if (!WORKLOAD_KINDS.includes(o.kind)) return undefined;
  const t = o.spec?.template;
  return { owner: m, namespace: nsOf(o), labels: t?.metadata?.labels ?? {}, annotations: t?.metadata?.annotations ?? {}, spec: t?.spec ?? {} };
}

const matches = (selector: Record<string, string> | undefined, labels: Record<string, string>) =>
  !!selector && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels[k] === v);

/** Resolve a rule's host as Istio does: short names in the rule's namespace. */
const fqdn = (host: string, ns: string): string => hostCandidates(host, ns, 'cluster.local')[0];

/** JSON with object keys sorted at every level: equal conditions, equal strings. */
const canonical = (v: unknown): string => (Array.isArray(v) ? `[${v.map(canonical).join(',')}]`
  : v && typeof v === 'object' ? `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`
    : JSON.stringify(v));

/** Kinds without a namespace: their identity is kind and name only. */
const CLUSTER_SCOPED = new Set(['Namespace', 'Node', 'PersistentVolume', 'StorageClass', 'PriorityClass', 'ClusterRole', 'ClusterRoleBinding',
  'CustomResourceDefinition', 'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration', 'IngressClass', 'GatewayClass', 'RuntimeClass', 'APIService']);

/** What the API server keys an object by: API group (not version), kind, namespace, name. */
export function objectKey(o: { apiVersion?: string; kind?: string; metadata?: { name?: string; namespace?: string } }): string {
  const group = (o.apiVersion ?? '').includes('/') ? (o.apiVersion ?? '').split('/')[0] : '';
  const ns = CLUSTER_SCOPED.has(o.kind ?? '') ? '' : (o.metadata?.namespace ?? 'default');
  return `${group}|${o.kind}|${ns}|${o.metadata?.name}`;
}

/** Each object whose key an earlier one already has, with that earlier one. */
export function duplicateObjects<T extends { obj: Manifest['obj'] }>(items: readonly T[]): Array<{ first: T; again: T }> {
  const seen = new Map<string, T>();
  const out: Array<{ first: T; again: T }> = [];
  for (const m of items) {
    const k = objectKey(m.obj);
    const first = seen.get(k);
    if (first) out.push({ first, again: m });
    else seen.set(k, m);
  }
  return out;
}

/** `Kind namespace/name` for messages. */
export const describeObject = (o: Pick<K8s, 'kind' | 'metadata'>) => `${o.kind} ${CLUSTER_SCOPED.has(o.kind) ? '' : `${nsOf(o)}/`}${o.metadata?.name}`;

export function analyze(manifests: readonly Manifest[]): Finding[] {
  const out: Finding[] = [];
  const report = (code: string, m: Manifest, message: string) => out.push({
    code, severity: SEVERITY.get(code)!, message,
    object: { kind: m.obj.kind, name: m.obj.metadata?.name, namespace: m.obj.metadata?.namespace },
    ...(m.path ? { path: m.path } : {}),
  });
  // A v1 List (kubectl get -o yaml) holds objects: each item is linted as if written on its own.
  const expanded = manifests.flatMap((m) => (m.obj?.kind === 'List' && Array.isArray(m.obj.items)
    ? (m.obj.items as K8s[]).map((obj, i) => ({ obj, ...(m.path ? { path: `${m.path} items[${i}]` } : {}) }))
    : [m]));
  const valid = expanded.filter((m) => m.obj && typeof m.obj === 'object' && m.obj.kind && m.obj.metadata?.name);
  const of = (pred: (o: K8s) => boolean) => valid.filter((m) => pred(m.obj));
  for (const { first, again } of duplicateObjects(valid)) {
    report('MESH024', again, `${describeObject(again.obj)} is defined twice${first.path ? `: by ${first.path} and by ${again.path}` : ''}; applying both keeps only the last: rename one (or put it in another namespace)`);
  }
  const services = of((o) => o.apiVersion === 'v1' && o.kind === 'Service');
  const namespaces = new Map(of((o) => o.apiVersion === 'v1' && o.kind === 'Namespace').map((m) => [m.obj.metadata.name, m]));
  const pods = valid.map(podOf).filter((p): p is Pod => !!p);
  const vss = of((o) => isIstio(o, 'VirtualService'));
  const drs = of((o) => isIstio(o, 'DestinationRule'));
  const gateways = of((o) => isIstio(o, 'Gateway'));
  // Hosts a ServiceEntry adds to the registry: destinations and DestinationRules may name them.
  const serviceEntries = of((o) => isIstio(o, 'ServiceEntry'));
  const entryHostList: string[] = serviceEntries.flatMap((m) => m.obj.spec?.hosts ?? []).map(String);
  // Exact hosts, and names under an entry's "*." wildcard.
  const serviceEntryHosts = { has: (h: unknown) => typeof h === 'string' && entryHostList.some((x) => x === h || (x.startsWith('*.') && h.endsWith(x.slice(1)))) };
  // Istio's IST0134: a TCP port of an entry without addresses matches no traffic (TCP has no Host to route on) unless auto-allocation is on.
  for (const e of serviceEntries) {
    const tcp = (e.obj.spec?.ports ?? []).filter((p: { protocol?: string }) => !p.protocol || p.protocol.toUpperCase() === 'TCP');
    if (tcp.length && !(e.obj.spec?.addresses ?? []).length) {
      report('MESH035', e, `port ${tcp.map((p: { number?: number }) => p.number).join(', ')} is TCP and the entry has no addresses: TCP carries no host name, so Istio matches it by destination address; add addresses, or use HTTP, HTTPS or TLS, which carry the host (not needed where the mesh allocates addresses itself: Istio's DNS auto-allocation)`);
    }
  }
  const serviceByHost = new Map(services.map((s) => [`${s.obj.metadata.name}.${nsOf(s.obj)}.svc.cluster.local`, s]));
  const podsOf = (svc: K8s) => pods.filter((p) => p.namespace === nsOf(svc) && matches(svc.spec?.selector, p.labels));
  const nsInjects = (ns: string) => namespaces.get(ns)?.obj.metadata.labels?.['istio-injection'] === 'enabled' || !!namespaces.get(ns)?.obj.metadata.labels?.['istio.io/rev'];
  const inMesh = (p: Pod) => {
    const marker = p.labels['sidecar.istio.io/inject'] ?? p.annotations['sidecar.istio.io/inject'];
    if (marker === 'false') return false;
    return marker === 'true' || nsInjects(p.namespace) || p.annotations['mesh.cdk8s.io/proxy'] === 'node-sidecar' || p.annotations['sidecar.istio.io/status'] !== undefined;
  };

  // --- workloads and Services
  const podNamespaces = new Set(pods.map((p) => p.namespace));
  for (const s of services) {
    const sel = s.obj.spec?.selector;
    // Only where the input has workloads of that namespace: else the pods are simply elsewhere (cannot know).
    if (sel && Object.keys(sel).length && s.obj.spec?.type !== 'ExternalName' && podNamespaces.has(nsOf(s.obj)) && podsOf(s.obj).length === 0 && !s.obj.metadata.labels?.['mesh.cdk8s.io/subset-of']) {
      report('MESH001', s, `selector ${JSON.stringify(sel)} matches no pod template in namespace ${nsOf(s.obj)}; give the pods these labels or fix the selector`);
    }
    // As istioctl: system namespaces, Istio's own control plane and gateway-managed Services are not the user's to name.
    const labels = s.obj.metadata.labels ?? {};
    if (SYSTEM_NAMESPACES.has(nsOf(s.obj)) || s.obj.spec?.type === 'ExternalName' || labels.istio !== undefined || labels.release === 'istio' || labels['gateway.istio.io/managed'] !== undefined) continue;
    for (const p of s.obj.spec?.ports ?? []) {
      const name: string | undefined = p.name;
      // Istio proxies TCP only: a UDP/SCTP port's name does not matter to it.
      if (!p.appProtocol && !hasProtocolPrefix(name) && (p.protocol ?? 'TCP') === 'TCP') {
        report('MESH012', s, `port ${p.port} is named ${JSON.stringify(name ?? '')}: Istio cannot tell its protocol; name it "http", "http-<suffix>", "grpc", ... or set appProtocol`);
      }
    }
  }
  for (const m of of((o) => WORKLOAD_KINDS.includes(o.kind) && o.kind !== 'Job')) {
    const sel = m.obj.spec?.selector?.matchLabels;
    const labels = m.obj.spec?.template?.metadata?.labels ?? {};
    if (sel && !matches(sel, labels)) report('MESH002', m, `selector ${JSON.stringify(sel)} does not match the pod template's labels ${JSON.stringify(labels)}; the API server refuses it`);
  }
  // Two Services mapping different ports onto the same targetPort of the same pods: reported
  // on the workload, as istioctl does (IST0137), once per workload and port.
  const byTarget = new Map<string, { owner: Manifest; list: Array<{ svc: Manifest; port: number }> }>();
  // Only pods in the mesh: outside it no proxy reads the Services' ports (istioctl skips them too).
  for (const s of services) {
    for (const pod of podsOf(s.obj).filter(inMesh)) {
      for (const p of s.obj.spec?.ports ?? []) {
        const k = `${pod.namespace}/${pod.owner.obj.metadata.name}:${p.targetPort ?? p.port}`;
        const entry = byTarget.get(k) ?? { owner: pod.owner, list: [] };
        entry.list.push({ svc: s, port: p.port });
        byTarget.set(k, entry);
      }
    }
  }
  for (const [k, { owner, list }] of byTarget) {
    if (new Set(list.map((x) => x.port)).size > 1) {
      report('MESH013', owner, `Services ${list.map((x) => `${x.svc.obj.metadata.name}:${x.port}`).join(' and ')} send different ports to the same target (${k}); Istio sees one port with two protocols or names; use one Service port per targetPort`);
    }
  }
  // One Service port number of the same pods, told apart by protocol differently by two Services.
  const protocolOf = (port: { name?: string; appProtocol?: string }) => (port.appProtocol ?? (port.name ?? '').split('-')[0]).toLowerCase() || 'tcp';
  for (const p of pods.filter(inMesh)) {
    const byPort = new Map<number, Map<string, string>>();
    for (const s of services.filter((x) => nsOf(x.obj) === p.namespace && matches(x.obj.spec?.selector, p.labels))) {
      for (const port of s.obj.spec?.ports ?? []) {
        // Istio proxies TCP only (a malformed protocol such as HTTP is still TCP to the proxy).
        if (port.protocol === 'UDP' || port.protocol === 'SCTP') continue;
        const seen = byPort.get(port.port) ?? new Map<string, string>();
        seen.set(protocolOf(port), s.obj.metadata.name);
        byPort.set(port.port, seen);
      }
    }
    for (const [port, seen] of byPort) {
      if (seen.size > 1) report('MESH031', p.owner, `Services ${[...seen.values()].join(', ')} give port ${port} of these pods different protocols (${[...seen.keys()].join(', ')}): Istio picks one; name the ports alike`);
    }
  }
  for (const p of pods) {
    const containers: K8s['spec'][] = p.spec.containers ?? [];
    const uid = (c: { securityContext?: { runAsUser?: number } }) => c.securityContext?.runAsUser ?? p.spec.securityContext?.runAsUser;
    for (const c of containers) {
      if (c.name !== 'istio-proxy' && uid(c) === PROXY_UID) report('MESH014', p.owner, `container ${c.name} runs as UID ${PROXY_UID}, the proxy's: its traffic bypasses the proxy; choose another UID`);
      if (c.name === 'istio-proxy' || c.name === 'mesh-proxy') continue;
      for (const port of c.ports ?? []) {
        if (port.containerPort >= PROXY_RESERVED_PORTS.from && port.containerPort <= PROXY_RESERVED_PORTS.to) report('MESH015', p.owner, `container ${c.name} uses port ${port.containerPort}, in ${PROXY_RESERVED_PORTS.from}-${PROXY_RESERVED_PORTS.to} reserved by the proxy; move it`);
      }
    }
    const injected = containers.some((c: { name: string; ports?: Array<{ containerPort: number }> }) => c.name === 'istio-proxy' || (c.ports ?? []).some((x) => x.containerPort === 15020))
      || (p.spec.initContainers ?? []).some((c: { name: string }) => c.name === 'istio-init')
      || p.annotations['sidecar.istio.io/status'] !== undefined;
    if (injected && nsInjects(p.namespace) && p.labels['sidecar.istio.io/inject'] !== 'false') {
      report('MESH016', p.owner, `the pod is already injected (istio-proxy, istio-init or sidecar.istio.io/status) and namespace ${p.namespace} injects automatically: it would get a second proxy and crash; apply the plain manifest, or label the pod sidecar.istio.io/inject=false`);
    }
  }

  // --- routing
  const routedHosts = new Set<string>();
  const meshHostOwners = new Map<string, Manifest>();
  const reported007 = new Set<string>();
  const gwName = (g: string, ns: string) => (g.includes('/') ? g : `${ns}/${g}`);
  const gatewayByName = new Map(gateways.map((g) => [`${nsOf(g.obj)}/${g.obj.metadata.name}`, g]));
  // A VirtualService may bind to a Gateway API Gateway (Istio's own controller serves both kinds).
  const k8sGateways = new Map(of((o) => o.kind === 'Gateway' && /^gateway\.networking\.k8s\.io\//.test(o.apiVersion)).map((g) => [`${nsOf(g.obj)}/${g.obj.metadata.name}`, g]));
  // Where a VirtualService applies (exportTo): '*' for every namespace, else the namespaces named ('.' its own).
  const exportedTo = (vs: Manifest): Set<string> | '*' => {
    const to: string[] = vs.obj.spec?.exportTo ?? ['*'];
    return to.includes('*') ? '*' : new Set(to.map((x) => (x === '.' ? nsOf(vs.obj) : x)));
  };
  const overlap = (a: Manifest, b: Manifest) => {
    const x = exportedTo(a);
    const y = exportedTo(b);
    return x === '*' || y === '*' || [...x].some((n) => y.has(n));
  };
  // host -> subsets that mesh routes send traffic to (weight above 0).
  const routedSubsets = new Map<string, Set<string>>();
  for (const vs of vss) {
    for (const rule of vs.obj.spec?.http ?? []) {
      const route: Array<{ destination?: { host?: string; subset?: string }; weight?: number }> = rule.route ?? [];
      for (const r of route) {
        if (!r.destination?.host || !r.destination.subset || (route.length > 1 && !(Number(r.weight) > 0))) continue;
        const host = fqdn(r.destination.host, nsOf(vs.obj));
        routedSubsets.set(host, new Set([...(routedSubsets.get(host) ?? []), r.destination.subset]));
      }
    }
  }
  for (const vs of vss) {
    const ns = nsOf(vs.obj);
    const spec = vs.obj.spec ?? {};
    const bound: string[] = spec.gateways ?? [];
    const inMeshVs = bound.length === 0 || bound.includes('mesh');
    for (const h of spec.hosts ?? []) {
      const host = fqdn(h, ns);
      if (!inMeshVs) continue;
      if (typeof h === 'string' && !h.includes('.') && h !== '*' && !serviceByHost.has(host)) {
        const elsewhere = services.filter((s) => s.obj.metadata.name === h && nsOf(s.obj) !== ns);
        if (elsewhere.length) report('MESH011', vs, `host ${h} is a short name, which resolves in namespace ${ns} (${host}); the Service is in ${elsewhere.map((s) => nsOf(s.obj)).join(', ')}, so these rules never apply to it: write ${h}.${nsOf(elsewhere[0].obj)}.svc.cluster.local or move the VirtualService there`);
      }
      routedHosts.add(host);
      const prev = meshHostOwners.get(host);
      // Two rules for one host clash only where both are visible (exportTo), as istioctl judges.
      if (prev && prev !== vs && overlap(prev, vs)) {
        // Both sides are told, as istioctl does: either may be the one to change.
        if (!reported007.has(`${host}|${prev.path}|${prev.obj.metadata.name}`)) {
          reported007.add(`${host}|${prev.path}|${prev.obj.metadata.name}`);
          report('MESH007', prev, `host ${host} is also routed by VirtualService ${nsOf(vs.obj)}/${vs.obj.metadata.name}; sidecars use only one of them: merge the rules`);
        }
        report('MESH007', vs, `host ${host} is also routed by VirtualService ${nsOf(prev.obj)}/${prev.obj.metadata.name}; sidecars use only one of them: merge the rules`);
      } else if (!prev) meshHostOwners.set(host, vs);
    }
    // As istioctl (IST0132): each gateway the rule binds to must serve at least one of its hosts; a
    // server host "ns/host" serves only rules of that namespace ("." the gateway's own).
    const matchHost = (gh: string, h: string) => gh === '*' || gh === h || (gh.startsWith('*.') && (h.endsWith(gh.slice(1)) || h === gh));
    for (const g of bound.filter((x) => x !== 'mesh')) {
      const name = gwName(g, ns);
      const gw = gatewayByName.get(name);
      let gwHosts: string[];
      if (gw) {
        gwHosts = (gw.obj.spec?.servers ?? []).flatMap((x: { hosts?: string[] }) => x.hosts ?? []).flatMap((x: string) => {
          if (!x.includes('/')) return [x];
          const [hostNs, h] = x.split('/');
          return hostNs === '*' || hostNs === ns || (hostNs === '.' && nsOf(gw.obj) === ns) ? [h] : [];
        });
      } else if (k8sGateways.has(name)) {
        gwHosts = (k8sGateways.get(name)!.obj.spec?.listeners ?? []).map((l: { hostname?: string }) => l.hostname ?? '*');
      } else {
        // Istio's generated names for Gateway API Gateways are not to be referenced (istioctl: IST0166).
        if (!g.includes('~istio-autogenerated-k8s-gateway')) report('MESH023', vs, `gateway ${g} does not exist (looked for ${name}); the rules would never be served`);
        continue;
      }
      const hosts: string[] = spec.hosts ?? [];
      if (hosts.length && !hosts.some((h) => gwHosts.some((gh) => matchHost(gh, h)))) {
        report('MESH009', vs, `none of the hosts ${hosts.join(', ')} is among the hosts of gateway ${name} (${gwHosts.join(', ') || 'none for this namespace'}); add one there or bind the rule to another gateway`);
      }
    }
    if (!inMeshVs) {
      const warned = new Set<string>();
      for (const rule of spec.http ?? []) {
        for (const r of rule.route ?? []) {
          const d = r.destination;
          if (!d?.host || d.subset) continue;
          const host = fqdn(d.host, ns);
          const split = routedSubsets.get(host);
          if (!split || split.size < 2 || warned.has(host)) continue;
          warned.add(host);
          report('MESH030', vs, `routes ingress traffic to ${d.host} without a subset, while the mesh route of ${host} splits it (${[...split].join(', ')}): the gateway's requests go to every pod and skip the split; route to the subsets here too (IngressGateway routes can attach a CanaryRelease)`);
        }
      }
    }
    const http: K8s['spec'][] = spec.http ?? [];
    // Match blocks seen so far, as JSON, with the rule that had them first (istioctl compares the same way).
    const seenMatches = new Map<string, number>();
    const prefixes: Array<{ rule: number; block: number; prefix: string; rest: string }> = [];
    http.forEach((rule, i) => {
      const catchAllBefore = http.slice(0, i).findIndex((r) => !r.match || r.match.length === 0);
      if (catchAllBefore >= 0) report('MESH008', vs, `http[${i}] can never match: http[${catchAllBefore}] has no match and takes every request; reorder the rules`);
      else if ((rule.match ?? []).length) {
        let dup = 0;
        (rule.match as Array<Record<string, unknown>>).forEach((m, j) => {
          const { name: _n, ...cond } = m;
          const key = canonical(cond);
          const first = seenMatches.get(key);
          if (first !== undefined) {
            dup++;
            report('MESH027', vs, `http[${i}].match[${j}] repeats a match of http[${first}], which takes those requests first; remove it`);
            return;
          }
          seenMatches.set(key, i);
          const uri = cond.uri as { prefix?: string } | undefined;
          if (uri?.prefix !== undefined) {
            const { uri: _u, ...others } = cond;
            const rest = canonical(others);
            const cover = prefixes.find((p) => p.rest === rest && p.prefix !== uri.prefix && uri.prefix!.startsWith(p.prefix));
            if (cover) report('MESH027', vs, `http[${i}].match[${j}] (uri prefix ${uri.prefix}) is covered by http[${cover.rule}].match[${cover.block}] (uri prefix ${cover.prefix}) with the same other conditions; put the longer prefix first`);
            prefixes.push({ rule: i, block: j, prefix: uri.prefix, rest });
          }
        });
        if (dup === rule.match.length) report('MESH008', vs, `http[${i}] can never match: earlier rules have every one of its matches; remove it or change its matches`);
      }
      const dests = [...(rule.route ?? []).map((r: { destination: unknown }) => r.destination), ...(rule.mirror ? [rule.mirror] : [])];
      for (const d of dests) {
        if (!d?.host) continue;
        const host = fqdn(d.host, ns);
        const svc = serviceByHost.get(host);
        const external = !host.endsWith('.svc.cluster.local');
        if (!svc && !external && !serviceEntryHosts.has(d.host) && !serviceEntryHosts.has(host)) {
          const elsewhere = !d.host.includes('.') ? services.filter((s) => s.obj.metadata.name === d.host && nsOf(s.obj) !== ns) : [];
          if (elsewhere.length) report('MESH011', vs, `destination ${d.host} is a short name, which resolves in namespace ${ns}; the Service is in ${elsewhere.map((s) => nsOf(s.obj)).join(', ')}: write ${d.host}.${nsOf(elsewhere[0].obj)}.svc.cluster.local`);
          else report('MESH003', vs, `destination host ${d.host} (${host}) is not a Service in these manifests; fix the name or add the Service`);
        }
        if (d.subset) {
          const rule2 = drs.find((dr) => fqdn(dr.obj.spec?.host ?? '', nsOf(dr.obj)) === host);
          const subsets: string[] = (rule2?.obj.spec?.subsets ?? []).map((s: { name: string }) => s.name);
          if (!subsets.includes(d.subset)) report('MESH004', vs, `subset ${d.subset} of ${d.host} is not defined by a DestinationRule${rule2 ? ` (${rule2.obj.metadata.name} defines ${subsets.join(', ') || 'none'})` : ''}; define it or route without it`);
        }
        if (svc && !d.port && (svc.obj.spec?.ports ?? []).length > 1) report('MESH006', vs, `destination ${d.host} has no port and the Service has several (${svc.obj.spec.ports.map((p: { port: number }) => p.port).join(', ')}); set port.number`);
      }
      const weights: number[] = (rule.route ?? []).map((r: { weight?: number }) => r.weight ?? 0);
      if ((rule.route ?? []).length > 1) {
        const total = weights.reduce((a, b) => a + (typeof b === 'number' ? b : NaN), 0);
        if (weights.some((w) => typeof w !== 'number' || w < 0)) report('MESH019', vs, `http[${i}] weights ${JSON.stringify(weights)} must be non-negative integers`);
        else if (total === 0) report('MESH019', vs, `http[${i}] weights are all zero: no destination would get traffic`);
        else if (total !== 100) report('MESH019', vs, `http[${i}] weights add up to ${total}; make them add up to 100`);
      }
      const pct = (v: unknown, what: string) => {
        if (v !== undefined && (typeof v !== 'number' || v < 0 || v > 100)) report('MESH020', vs, `http[${i}] ${what} is ${JSON.stringify(v)}; expected a percentage from 0 to 100`);
      };
      pct(rule.fault?.delay?.percentage?.value, 'fault.delay.percentage');
      pct(rule.fault?.abort?.percentage?.value, 'fault.abort.percentage');
      pct(rule.mirrorPercentage?.value, 'mirrorPercentage');
      const dur = (v: unknown, what: string) => {
        if (v === undefined) return;
        let ok = typeof v === 'string';
        if (ok) { try { ok = Duration.parse(v as string).nanos >= 1_000_000; } catch { ok = false; } }
        if (!ok) report('MESH021', vs, `http[${i}] ${what} is ${JSON.stringify(v)}; expected a duration of at least 1ms such as "0.002s", "7s" or "1m"`);
      };
      // Istio's VirtualService validation (its webhook refuses these; model/host-header.ts).
      for (const p of hostHeaderProblems(rule.headers, rule.rewrite?.authority ?? undefined)) {
        report('MESH033', vs, p.kind === 'removed' ? `http[${i}] headers.request.remove removes Host; Istio refuses it: change Host with rewrite.authority instead`
          : p.kind === 'on-response' ? `http[${i}] headers.response.${p.op} names Host; a response has no Host header (Istio refuses it)`
            : `http[${i}] sets Host ${p.count} times (rewrite.authority, headers.request.set/add); Istio allows one`);
      }
      dur(rule.timeout, 'timeout');
      dur(rule.retries?.perTryTimeout, 'retries.perTryTimeout');
      dur(rule.fault?.delay?.fixedDelay, 'fault.delay.fixedDelay');
      (rule.match ?? []).forEach((m: Record<string, any>, j: number) => {
        const regexes: Array<[string, unknown]> = [['uri', m.uri?.regex], ['method', m.method?.regex],
          ...Object.entries(m.headers ?? {}).map(([k, v]) => [`headers.${k}`, (v as { regex?: string }).regex] as [string, unknown]),
          ...Object.entries(m.queryParams ?? {}).map(([k, v]) => [`queryParams.${k}`, (v as { regex?: string }).regex] as [string, unknown])];
        for (const [field, re] of regexes) {
          if (re === undefined) continue;
          if (!isRe2(String(re))) report('MESH022', vs, `http[${i}].match[${j}].${field} regex ${JSON.stringify(re)} is not valid RE2 (Envoy's engine: no lookaround or backreferences)`);
        }
      });
    });
  }
  for (const dr of drs) {
    const host = fqdn(dr.obj.spec?.host ?? '', nsOf(dr.obj));
    const tlsChecks: Array<[string, { mode?: string; caCertificates?: string; credentialName?: string } | undefined]> = [
      ['trafficPolicy.tls', dr.obj.spec?.trafficPolicy?.tls],
      ...(dr.obj.spec?.trafficPolicy?.portLevelSettings ?? []).map((p: { port?: { number?: number }; tls?: object }, i: number) => [`trafficPolicy.portLevelSettings[${i}] (port ${p.port?.number}) tls`, p.tls] as [string, undefined]),
      ...(dr.obj.spec?.subsets ?? []).map((s: { name: string; trafficPolicy?: { tls?: object } }) => [`subset ${s.name} tls`, s.trafficPolicy?.tls] as [string, undefined]),
    ];
    for (const [where, tls] of tlsChecks) {
      if ((tls?.mode === 'SIMPLE' || tls?.mode === 'MUTUAL') && !tls.caCertificates && !(tls.credentialName && dr.obj.spec?.workloadSelector)) {
        report('MESH028', dr, `${where} is ${tls.mode} without caCertificates: the proxy does not verify ${dr.obj.spec?.host}'s server certificate; set caCertificates (or use ISTIO_MUTUAL inside the mesh)`);
      }
    }
    const svc = serviceByHost.get(host);
    if (!svc) {
      // A rule with a workloadSelector applies to those workloads' calls, often to hosts outside the manifests.
      if (host.endsWith('.svc.cluster.local') && !dr.obj.spec?.workloadSelector && !serviceEntryHosts.has(dr.obj.spec?.host) && !serviceEntryHosts.has(host)) report('MESH026', dr, `host ${dr.obj.spec?.host} (${host}) is not a Service in these manifests: the rule applies to nothing; fix the host or add the Service`);
      continue;
    }
    for (const s of dr.obj.spec?.subsets ?? []) {
      const podLabels = Object.fromEntries(Object.entries((s.labels ?? {}) as Record<string, string>).filter(([k]) => !isTopologyLabel(k)));
      const selected = Object.keys(podLabels).length ? podsOf(svc.obj).filter((p) => matches(podLabels, p.labels)) : podsOf(svc.obj);
      if (selected.length) continue;
      if (routedSubsets.get(host)?.has(s.name)) report('MESH025', dr, `subset ${s.name} (${JSON.stringify(s.labels)}) selects no pod behind ${svc.obj.metadata.name}, yet routes send it traffic: those requests fail with 503 (no healthy upstream); fix the labels or deploy that version`);
      else report('MESH005', dr, `subset ${s.name} (${JSON.stringify(s.labels)}) selects no pod behind ${svc.obj.metadata.name}; nothing routes to it yet, but a route that does will fail: fix the labels, deploy the version or drop the subset`);
    }
  }
  // Gateway ports the Service in front of its pods does not expose (only when the gateway pods are in these manifests).
  for (const g of gateways) {
    const gwPods = pods.filter((p) => matches(g.obj.spec?.selector, p.labels));
    if (!gwPods.length) continue;
    const exposed = new Set<number>();
    for (const s of services) {
      if (!gwPods.some((p) => p.namespace === nsOf(s.obj) && matches(s.obj.spec?.selector, p.labels))) continue;
      for (const port of s.obj.spec?.ports ?? []) {
        // Istio proxies TCP only (a malformed protocol such as HTTP is still TCP to the proxy).
        if (port.protocol === 'UDP' || port.protocol === 'SCTP') continue;
        exposed.add(port.port);
        if (typeof port.targetPort === 'number') exposed.add(port.targetPort);
      }
    }
    for (const srv of g.obj.spec?.servers ?? []) {
      if (srv.port?.number !== undefined && !exposed.has(srv.port.number)) {
        report('MESH029', g, `port ${srv.port.number} is not a port or targetPort of any Service in front of the gateway pods (${gwPods.map((p) => p.owner.obj.metadata.name).join(', ')}): clients cannot reach that listener; add it to the Service`);
      }
    }
  }
  // One TLS credential on two Gateways of one namespace whose pods overlap (one selector within
  // the other, as istioctl judges): once per pair, on the later one, naming both.
  const within = (x: Record<string, string>, y: Record<string, string>) => Object.entries(x).every(([k, v]) => y[k] === v);
  const credentialsOf = (g: Manifest) => new Set<string>((g.obj.spec?.servers ?? []).map((srv: { tls?: { credentialName?: string } }) => srv.tls?.credentialName).filter(Boolean));
  gateways.forEach((g, i) => {
    const mine = credentialsOf(g);
    for (const prev of gateways.slice(0, i)) {
      const a = prev.obj.spec?.selector ?? {};
      const b = g.obj.spec?.selector ?? {};
      if (nsOf(prev.obj) !== nsOf(g.obj) || !(within(a, b) || within(b, a))) continue;
      const shared = [...credentialsOf(prev)].find((c) => mine.has(c));
      if (shared) report('MESH032', g, `credential ${shared} is also served by gateway ${prev.obj.metadata.name} on the same pods: browsers reuse an HTTP/2 connection for both hosts and get 404s from the wrong gateway; use one Gateway or separate certificates`);
    }
  });
  // Gateways that claim one host on one port of the same gateway pods (equal selectors, or
  // selectors that both match a pod of the input, as istioctl judges): once per pair, on the
  // later one, naming both (three gateways on one host are three pairs, not six findings).
  const samePods = (a: Manifest, b: Manifest) => {
    const x = a.obj.spec?.selector ?? {};
    const y = b.obj.spec?.selector ?? {};
    if (JSON.stringify(Object.entries(x).sort()) === JSON.stringify(Object.entries(y).sort())) return true;
    return pods.some((p) => matches(x, p.labels) && matches(y, p.labels));
  };
  const claimsOf = (g: Manifest) => (g.obj.spec?.servers ?? []).flatMap((s: { port?: { number?: number }; hosts?: string[] }) => (s.hosts ?? []).map((h) => ({ port: s.port?.number, host: h })));
  gateways.forEach((g, i) => {
    for (const prev of gateways.slice(0, i)) {
      if (!samePods(prev, g)) continue;
      const theirs = claimsOf(prev);
      const clash = claimsOf(g).find((c: { port?: number; host: string }) => theirs.some((t: { port?: number; host: string }) => t.port === c.port && t.host === c.host));
      if (clash) report('MESH010', g, `gateways ${prev.obj.metadata.name} and ${g.obj.metadata.name} both claim host ${clash.host} on port ${clash.port} of the same gateway pods; merge them or use distinct hosts`);
    }
  });

  // --- who is in the mesh
  for (const p of pods) {
    const calls = (p.annotations[CALLS_ANNOTATION] ?? '').split(',').map((x) => x.trim()).filter(Boolean);
    const routed = calls.map((c) => fqdn(c.split(':')[0], p.namespace)).filter((h) => routedHosts.has(h));
    if (routed.length && !inMesh(p)) {
      report('MESH017', p.owner, `calls ${routed.join(', ')}, which VirtualServices route, but the pod is not in the mesh: its requests bypass the rules; inject it (namespace label or pod label sidecar.istio.io/inject=true)`);
    }
  }
  // --- progressive delivery (Argo Rollouts, Flagger)
  const deploymentIn = (name: string | undefined, ns: string) => valid.some((m) => m.obj.kind === 'Deployment' && m.obj.metadata.name === name && nsOf(m.obj) === ns);
  const nodeSidecar = valid.some((m) => m.obj.kind === 'ConfigMap' && m.obj.metadata.labels?.['mesh.cdk8s.io/route-table'] === 'true');
  const exported = nodeSidecar ? NODE_SIDECAR_METRICS : ISTIO_STANDARD_METRICS;
  for (const r of of((o) => o.kind === 'Rollout' && /^argoproj\.io\//.test(o.apiVersion))) {
    const ns = nsOf(r.obj);
    const ref = r.obj.spec?.workloadRef;
    if (ref && (ref.kind !== 'Deployment' || !deploymentIn(ref.name, ns))) {
      report('MESH038', r, `workloadRef names ${ref.kind} ${ns}/${ref.name}, which is not a Deployment of these manifests: the Rollout has no template to roll out`);
    }
    const canary = r.obj.spec?.strategy?.canary ?? {};
    const plugin = canary.trafficRouting?.plugins?.['argoproj-labs/gatewayAPI'];
    if (plugin) {
      const routeNs = plugin.namespace ?? ns;
      const routes: string[] = [...(plugin.httpRoute ? [plugin.httpRoute] : []), ...(plugin.httpRoutes ?? []).map((x: { name: string }) => x.name)];
      for (const name of routes) {
        if (!valid.some((m) => m.obj.kind === 'HTTPRoute' && m.obj.metadata.name === name && nsOf(m.obj) === routeNs)) report('MESH036', r, `the Gateway API plugin names HTTPRoute ${routeNs}/${name}, which is not in these manifests: Argo Rollouts cannot set its weights`);
      }
      for (const k of ['stableService', 'canaryService']) {
        if (canary[k] && !services.some((m) => m.obj.metadata.name === canary[k] && nsOf(m.obj) === ns)) report('MESH037', r, `${k} ${ns}/${canary[k]} is not a Service of these manifests: the plugin weighs the HTTPRoute's backends by it`);
      }
    }
    const istio = canary.trafficRouting?.istio;
    if (!istio) continue;
    for (const v of istio.virtualServices ?? (istio.virtualService ? [istio.virtualService] : [])) {
      const target = vss.find((m) => m.obj.metadata.name === v.name && nsOf(m.obj) === ns);
      const names: string[] = (target?.obj.spec?.http ?? []).map((h: { name?: string }) => h.name ?? '');
      if (!target) report('MESH036', r, `trafficRouting names VirtualService ${ns}/${v.name}, which is not in these manifests: Argo Rollouts cannot set its weights`);
      else if (!v.routes?.length && names.length !== 1) report('MESH036', r, `VirtualService ${ns}/${v.name} has ${names.length} HTTP routes and the Rollout names none: name the route it should set (routes: [...])`);
      else for (const route of v.routes ?? []) if (!names.includes(route)) report('MESH036', r, `VirtualService ${ns}/${v.name} has no HTTP route named "${route}" (it has ${names.filter(Boolean).map((n) => `"${n}"`).join(', ') || 'no named route'}): Argo Rollouts cannot set its weights`);
    }
    const d = istio.destinationRule;
    if (d) {
      const target = drs.find((m) => m.obj.metadata.name === d.name && nsOf(m.obj) === ns);
      const subsets: string[] = (target?.obj.spec?.subsets ?? []).map((x: { name: string }) => x.name);
      const missing = [d.stableSubsetName, d.canarySubsetName].filter((x: string) => !subsets.includes(x));
      if (!target) report('MESH037', r, `trafficRouting names DestinationRule ${ns}/${d.name}, which is not in these manifests`);
      else if (missing.length) report('MESH037', r, `DestinationRule ${ns}/${d.name} has no subset ${missing.map((x: string) => `"${x}"`).join(' or ')} (it has ${subsets.map((x) => `"${x}"`).join(', ') || 'none'}): Argo Rollouts labels those subsets with its pod-template hash`);
    }
  }
  for (const c of of((o) => o.kind === 'Canary' && /^flagger\.app\//.test(o.apiVersion))) {
    const ref = c.obj.spec?.targetRef;
    if (!ref || ref.kind !== 'Deployment' || !deploymentIn(ref.name, nsOf(c.obj))) {
      report('MESH038', c, `targetRef names ${ref?.kind ?? 'nothing'} ${nsOf(c.obj)}/${ref?.name ?? ''}, which is not a Deployment of these manifests: Flagger has nothing to copy into -primary`);
    }
    if (nodeSidecar) {
      const builtin = (c.obj.spec?.analysis?.metrics ?? []).filter((m: { name: string; templateRef?: unknown }) => !m.templateRef && ['request-success-rate', 'request-duration'].includes(m.name));
      if (builtin.length) report('MESH039', c, `Flagger's built-in ${builtin.map((m: { name: string }) => m.name).join(' and ')} read reporter="destination" series, which the node sidecar does not write (it reports as the caller, reporter="source")`);
    }
  }
  const queries: Array<[Manifest, string]> = [
    ...of((o) => o.kind === 'AnalysisTemplate' && /^argoproj\.io\//.test(o.apiVersion))
      .flatMap((m) => (m.obj.spec?.metrics ?? []).map((x: any) => [m, String(x.provider?.prometheus?.query ?? '')] as [Manifest, string])),
    ...of((o) => o.kind === 'MetricTemplate' && /^flagger\.app\//.test(o.apiVersion)).map((m) => [m, String(m.obj.spec?.query ?? '')] as [Manifest, string]),
  ];
  for (const [m, q] of queries) {
    // istio_* beyond the standard set; envoy_* off Envoy; mesh_proxy_* off the node sidecar.
    const unknown = meshMetricsIn(q).filter((n) => (n.startsWith('istio_') ? !exported.includes(n) : n.startsWith('envoy_') ? nodeSidecar : !nodeSidecar));
    if (unknown.length) report('MESH039', m, `the query reads ${unknown.join(', ')}, which the ${nodeSidecar ? 'node sidecar' : 'Istio data plane'} does not export (it exports ${exported.join(', ')}): the analysis would find no data and fail`);
    else if (nodeSidecar && /reporter\s*=\s*"destination"/.test(q)) report('MESH039', m, 'the query reads reporter="destination" series, which the node sidecar does not write (it reports as the caller, reporter="source")');
  }

  for (const [ns, m] of namespaces) {
    if (nsInjects(ns)) continue;
    const routedPods = pods.filter((p) => p.namespace === ns && !inMesh(p)
      && services.some((s) => nsOf(s.obj) === ns && routedHosts.has(`${s.obj.metadata.name}.${ns}.svc.cluster.local`) && matches(s.obj.spec?.selector, p.labels)));
    if (routedPods.length) {
      report('MESH018', m, `namespace ${ns} has no istio-injection=enabled label, yet ${routedPods.map((p) => p.owner.obj.metadata.name).join(', ')} serve hosts the mesh routes; label the namespace`);
    }
  }
  return out;
}

/** One line per finding, for terminals. */
export function formatText(findings: readonly Finding[]): string {
  return findings.map((f) => `${f.severity.toUpperCase().padEnd(7)} ${f.code} ${f.object.kind} ${f.object.namespace ? `${f.object.namespace}/` : ''}${f.object.name}${f.path ? ` (${f.path})` : ''}: ${f.message}`).join('\n');
}
