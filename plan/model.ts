// The traffic plan of one chart: what routes where, read from its objects (the Istio
// data plane's VirtualServices, DestinationRules and Gateways, with the Services and
// Deployments they lead to). Plain data in, plain data out; no cdk8s here, so a plan can
// be made from YAML files as well as from a synthesized chart.
import { CALLS_ANNOTATION, hostCandidates } from '../model';
import { analyze, Finding, K8s, Manifest } from '../lint/analyze';

export interface PlanDestination { readonly host: string; readonly subset?: string; readonly port?: number; readonly percent: number }

export interface PlanRule {
  readonly name?: string;
  /** Each entry is one match block in words (its conditions joined by "and"); any may match. Empty: every request. */
  readonly match: readonly string[];
  readonly destinations: readonly PlanDestination[];
  /** Timeout, retries, fault, mirror, rewrite, redirect, header changes, CORS: one line each, in words. */
  readonly policies: readonly string[];
}

export interface PlanHost {
  readonly host: string;
  /** "mesh" (sidecars of the mesh), or the gateways it is bound to. */
  readonly bindings: readonly string[];
  readonly virtualService: string;
  readonly rules: readonly PlanRule[];
}

export interface PlanSubset { readonly name: string; readonly labels: Readonly<Record<string, string>>; readonly workloads: readonly string[]; readonly policies: readonly string[] }

export interface PlanPolicy { readonly host: string; readonly destinationRule: string; readonly policies: readonly string[]; readonly subsets: readonly PlanSubset[] }

export interface PlanGateway {
  readonly name: string;
  readonly selector: Readonly<Record<string, string>>;
  readonly servers: ReadonlyArray<{ readonly port: string; readonly hosts: readonly string[]; readonly tls?: string }>;
}

export interface PlanCall { readonly from: string; readonly to: string; readonly inMesh: boolean }

export interface PlanService { readonly host: string; readonly ports: readonly number[]; readonly workloads: readonly string[] }

/** A ServiceEntry: hosts outside the cluster's registry, and how the proxies reach them. */
export interface PlanExternal {
  readonly serviceEntry: string;
  readonly hosts: readonly string[];
  /** "443/HTTPS", ... */
  readonly ports: readonly string[];
  readonly location: string;
  readonly resolution: string;
  /** Endpoint addresses (STATIC, DNS with endpoints); empty: the host as asked. */
  readonly endpoints: readonly string[];
  readonly addresses: readonly string[];
  /** Namespaces that see it; absent: all. */
  readonly exportTo?: readonly string[];
}

/** A Telemetry's tracing: which extension providers get spans, for how many requests. */
export interface PlanTracing { readonly telemetry: string; readonly namespace: string; readonly providers: readonly string[]; readonly samplingPercentage?: number }

/** One feature a chart's data plane does not carry, dropped as the chart allowed. */
export interface PlanNotApplied { readonly path: string; readonly field: string; readonly value: string; readonly feature: string; readonly why: string }

export interface TrafficPlan {
  readonly hosts: readonly PlanHost[];
  readonly tracing: readonly PlanTracing[];
  readonly policies: readonly PlanPolicy[];
  readonly gateways: readonly PlanGateway[];
  readonly services: readonly PlanService[];
  /** ServiceEntries: the external hosts the mesh may call. */
  readonly externals: readonly PlanExternal[];
  readonly calls: readonly PlanCall[];
  readonly findings: readonly Finding[];
  /** What the chart let its data plane drop (MeshChartProps.dropUnsupported); absent for plans of YAML. */
  readonly notApplied?: readonly PlanNotApplied[];
  /** Releases a controller steps (Argo Rollouts' Rollouts, Flagger's Canaries). */
  readonly progressive: readonly PlanProgressive[];
  /** Objects by kind, for the header. */
  readonly counts: Readonly<Record<string, number>>;
}

/** A release a progressive-delivery controller drives: what it moves, through which steps, judged how. */
export interface PlanProgressive {
  readonly controller: 'Argo Rollouts' | 'Flagger';
  /** "Rollout ns/name" or "Canary ns/name". */
  readonly object: string;
  /** The Deployment it adopts or targets. */
  readonly workload: string;
  /** The canary's weight at each step, ending at 100 (the promotion); or the A/B or blue/green run in words. */
  readonly steps: string;
  readonly analysis: string;
  /** What the controller writes to move traffic. */
  readonly moves: string;
  /** The VirtualService whose weights the controller changes ("ns/name"), if the chart writes it. */
  readonly managedVirtualService?: string;
}

/** Argo's successCondition or Flagger's thresholdRange in words, for the metrics cdk8s-mesh writes; others as written. */
function metricInWords(name: string, condition: string): string {
  const m = /^result\[0\] (>=|<=) ([0-9.]+)$/.exec(condition);
  if (m && /success/.test(name) && m[1] === '>=') return `success >= ${Math.round(Number(m[2]) * 1e4) / 100}%`;
  if (m && /latency|duration/.test(name) && m[1] === '<=') return `p99 <= ${m[2]} ms`;
  return `${name}: ${condition}`;
}

function progressiveOf(objs: readonly K8s[]): PlanProgressive[] {
  const out: PlanProgressive[] = [];
  for (const r of objs.filter((o) => o.kind === 'Rollout' && o.apiVersion.startsWith('argoproj.io/'))) {
    const c = r.spec?.strategy?.canary ?? {};
    const weights = (c.steps ?? []).filter((s: any) => typeof s?.setWeight === 'number').map((s: any) => s.setWeight as number);
    const header = (c.steps ?? []).find((s: any) => s?.setHeaderRoute?.match)?.setHeaderRoute;
    const templates = (c.analysis?.templates ?? []).map((t: any) => objs.find((o) => o.kind === 'AnalysisTemplate' && o.metadata.name === t.templateName && nsOf(o) === nsOf(r)));
    const metrics = templates.flatMap((t: any) => t?.spec?.metrics ?? []);
    const checks = metrics.map((m: any) => metricInWords(m.name, String(m.successCondition ?? '')));
    const interval = metrics[0]?.interval;
    const limit = metrics[0]?.failureLimit;
    const istio = c.trafficRouting?.istio;
    const plugin = c.trafficRouting?.plugins?.['argoproj-labs/gatewayAPI'];
    const httpRoutes: string[] = plugin ? [...(plugin.httpRoute ? [plugin.httpRoute] : []), ...(plugin.httpRoutes ?? []).map((x: any) => x.name)] : [];
    out.push({
      controller: 'Argo Rollouts',
      object: `Rollout ${id(r)}`,
      workload: r.spec?.workloadRef ? `${r.spec.workloadRef.kind} ${nsOf(r)}/${r.spec.workloadRef.name}` : `its own template`,
      steps: [...weights, 100].join(' -> ') + (header ? `; ${header.match.map((m: any) => `${m.headerName} ${Object.entries(m.headerValue ?? {}).map(([k, v]) => `${k} ${v}`).join('')}`).join(' or ')} on the canary from the first step` : ''),
      analysis: checks.length ? `${checks.join(', ')}${interval ? `, every ${interval}` : ''}${limit !== undefined ? `; rolls back after ${limit + 1} failed checks` : ''}` : 'none',
      moves: istio
        ? `weights of route ${(istio.virtualService?.routes ?? []).join(', ')} in VirtualService ${nsOf(r)}/${istio.virtualService?.name}; subsets ${istio.destinationRule?.stableSubsetName}/${istio.destinationRule?.canarySubsetName} of DestinationRule ${nsOf(r)}/${istio.destinationRule?.name}`
        : plugin ? `weights of HTTPRoute ${httpRoutes.map((n) => `${plugin.namespace ?? nsOf(r)}/${n}`).join(', ')} between Services ${c.stableService} and ${c.canaryService} (its Gateway API plugin)`
          : c.trafficRouting ? 'its traffic router' : 'replica counts only (no traffic router): the split follows the pods',
      // A Gateway API chart's plan shows its routes as the Istio objects of the same model: the HTTPRoute is the VirtualService of its name.
      managedVirtualService: istio?.virtualService?.name ? `${nsOf(r)}/${istio.virtualService.name}` : httpRoutes.length ? `${plugin.namespace ?? nsOf(r)}/${httpRoutes[0]}` : undefined,
    });
  }
  for (const k of objs.filter((o) => o.kind === 'Canary' && o.apiVersion.startsWith('flagger.app/'))) {
    const a = k.spec?.analysis ?? {};
    const weights: number[] = a.stepWeights ?? (a.stepWeight ? Array.from({ length: Math.floor((a.maxWeight ?? 50) / a.stepWeight) }, (_, i) => (i + 1) * a.stepWeight) : []);
    const steps = a.iterations !== undefined
      ? `${a.iterations} iterations, ${a.match ? `A/B on ${a.match.map((m: any) => Object.entries(m.headers ?? {}).map(([h, v]) => `${h} ${Object.entries(v as object).map(([x, y]) => `${x} ${y}`).join('')}`).join(' and ')).join(' or ')}` : a.mirror ? 'blue/green with the traffic mirrored' : 'blue/green'}, then 100`
      : [...weights, 100].join(' -> ');
    const checks = (a.metrics ?? []).map((m: any) => (m.name === 'request-success-rate' && m.thresholdRange?.min !== undefined ? `success >= ${m.thresholdRange.min}%`
      : m.name === 'request-duration' && m.thresholdRange?.max !== undefined ? `p99 <= ${m.thresholdRange.max} ms`
        : `${m.name}: ${JSON.stringify(m.thresholdRange ?? {})}`));
    const svc = k.spec?.service?.name ?? k.spec?.targetRef?.name;
    out.push({
      controller: 'Flagger',
      object: `Canary ${id(k)}`,
      workload: `${k.spec?.targetRef?.kind} ${nsOf(k)}/${k.spec?.targetRef?.name}`,
      steps,
      analysis: `${checks.join(', ') || 'none'}, every ${a.interval ?? '1m'}; rolls back after ${a.threshold ?? '?'} failed checks${(a.webhooks ?? []).length ? `; webhooks ${(a.webhooks ?? []).map((w: any) => `${w.name} (${w.type ?? 'rollout'})`).join(', ')}` : ''}`,
      moves: `the objects Flagger writes for ${svc}.${nsOf(k)}: Services ${svc}, ${svc}-primary, ${svc}-canary, VirtualService ${svc}, DestinationRules ${svc}-primary, ${svc}-canary`,
    });
  }
  return out;
}

const nsOf = (o: K8s) => o.metadata.namespace ?? 'default';
const id = (o: K8s) => `${nsOf(o)}/${o.metadata.name}`;

/** A host as written, made fully qualified in the object's namespace when it is short (the DNS search path's first name). */
export function fqdn(host: string, namespace: string): string {
  return host.includes('*') ? host : hostCandidates(host, namespace, 'cluster.local')[0];
}

/** A string match in words: "exact /productpage", "prefix /api", "regex ^/v[0-9]". */
function stringMatch(m: Record<string, string> | undefined): string {
  if (!m) return 'present';
  const [k, v] = Object.entries(m)[0] ?? ['present', ''];
  return k === 'exact' ? `= ${v}` : k === 'present' ? 'present' : `${k} ${v}`;
}

/** One HTTPMatchRequest in words, its conditions joined by "and". */
export function matchInWords(m: any): string {
  const parts: string[] = [];
  if (m.uri) parts.push(`uri ${stringMatch(m.uri)}`);
  if (m.method) parts.push(`method ${stringMatch(m.method)}`);
  if (m.authority) parts.push(`authority ${stringMatch(m.authority)}`);
  for (const [k, v] of Object.entries(m.headers ?? {})) parts.push(`header ${k} ${stringMatch(v as Record<string, string>)}`);
  for (const [k, v] of Object.entries(m.withoutHeaders ?? {})) parts.push(`no header ${k} ${stringMatch(v as Record<string, string>)}`);
  for (const [k, v] of Object.entries(m.queryParams ?? {})) parts.push(`query ${k} ${stringMatch(v as Record<string, string>)}`);
  if (m.port !== undefined) parts.push(`port ${m.port}`);
  if (m.sourceLabels) parts.push(`from pods ${Object.entries(m.sourceLabels).map(([k, v]) => `${k}=${v}`).join(',')}`);
  if (m.sourceNamespace) parts.push(`from namespace ${m.sourceNamespace}`);
  if (m.gateways) parts.push(`via ${m.gateways.join(', ')}`);
  if (m.ignoreUriCase) parts.push('uri case ignored');
  return parts.join(' and ') || 'every request';
}

const pct = (p: any) => (typeof p === 'object' && p !== null ? p.value : p) ?? 100;

function httpPolicies(r: any): string[] {
  const out: string[] = [];
  if (r.timeout) out.push(`timeout ${r.timeout}`);
  if (r.retries) {
    const t = r.retries;
    out.push(t.attempts === 0 ? 'retries off' : `retries ${t.attempts ?? 2}${t.perTryTimeout ? `, ${t.perTryTimeout} per try` : ''}${t.retryOn ? ` on ${t.retryOn}` : ''}`);
  }
  if (r.fault?.delay) out.push(`fault: delay ${r.fault.delay.fixedDelay} for ${pct(r.fault.delay.percentage)}%`);
  if (r.fault?.abort) out.push(`fault: abort HTTP ${r.fault.abort.httpStatus} for ${pct(r.fault.abort.percentage)}%`);
  if (r.mirror) out.push(`mirror to ${r.mirror.host}${r.mirror.subset ? ` ${r.mirror.subset}` : ''} (${pct(r.mirrorPercentage ?? r.mirrorPercent ?? 100)}%)`); // mirrorPercent: Istio's deprecated integer field, still served
  if (r.rewrite) out.push(`rewrite ${[r.rewrite.uri && `uri to ${r.rewrite.uri}`, r.rewrite.authority && `authority to ${r.rewrite.authority}`].filter(Boolean).join(', ')}`);
  if (r.redirect) out.push(`redirect to ${[r.redirect.scheme && `${r.redirect.scheme}://`, r.redirect.authority, r.redirect.uri].filter(Boolean).join('') || 'same URL'}${r.redirect.redirectCode ? ` (${r.redirect.redirectCode})` : ''}`);
  for (const side of ['request', 'response'] as const) {
    const h = r.headers?.[side];
    if (!h) continue;
    for (const [k, v] of Object.entries(h.set ?? {})) out.push(`${side} header ${k} set to ${v}`);
    for (const [k, v] of Object.entries(h.add ?? {})) out.push(`${side} header ${k} add ${v}`);
    for (const k of h.remove ?? []) out.push(`${side} header ${k} removed`);
  }
  if (r.corsPolicy) out.push('CORS policy');
  return out;
}

function trafficPolicies(p: any): string[] {
  if (!p) return [];
  const out: string[] = [];
  if (p.loadBalancer) {
    const lb = p.loadBalancer;
    out.push(`load balancer ${lb.simple ?? (lb.consistentHash ? `consistent hash on ${Object.entries(lb.consistentHash).map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(', ')}` : JSON.stringify(lb))}`);
  }
  if (p.connectionPool) {
    const c = p.connectionPool;
    const bits = [c.tcp?.maxConnections !== undefined && `max ${c.tcp.maxConnections} connections`, c.tcp?.connectTimeout && `connect timeout ${c.tcp.connectTimeout}`,
      c.http?.http1MaxPendingRequests !== undefined && `max ${c.http.http1MaxPendingRequests} pending`, c.http?.http2MaxRequests !== undefined && `max ${c.http.http2MaxRequests} requests`,
      c.http?.maxRequestsPerConnection !== undefined && `max ${c.http.maxRequestsPerConnection} requests per connection`, c.http?.maxRetries !== undefined && `max ${c.http.maxRetries} retries`].filter(Boolean);
    out.push(`connection pool: ${bits.join(', ') || 'set'}`);
  }
  if (p.outlierDetection) {
    const o = p.outlierDetection;
    out.push(`outlier detection: eject after ${o.consecutive5xxErrors ?? o.consecutiveErrors ?? 5} consecutive 5xx${o.interval ? ` per ${o.interval}` : ''}${o.baseEjectionTime ? ` for ${o.baseEjectionTime}` : ''}${o.maxEjectionPercent !== undefined ? `, at most ${o.maxEjectionPercent}%` : ''}`);
  }
  if (p.tls) out.push(`TLS ${p.tls.mode}${p.tls.sni ? ` (SNI ${p.tls.sni})` : ''}`);
  return out;
}

const selects = (selector: Record<string, string> | undefined, labels: Record<string, string> | undefined) =>
  selector !== undefined && Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);

/** Does a Deployment's pod run a mesh proxy (Istio's injection or the node sidecar)? */
function inMesh(d: K8s, namespaces: Map<string, K8s>): boolean {
  const t = d.spec?.template ?? {};
  const podLabels = t.metadata?.labels ?? {};
  const podAnn = t.metadata?.annotations ?? {};
  if ((t.spec?.containers ?? []).some((c: any) => c.name === 'mesh-proxy' || c.name === 'istio-proxy')) return true;
  const optOut = podLabels['sidecar.istio.io/inject'] === 'false' || podAnn['sidecar.istio.io/inject'] === 'false';
  const optIn = podLabels['sidecar.istio.io/inject'] === 'true';
  const nsLabels = namespaces.get(nsOf(d))?.metadata.labels ?? {};
  // istio-injection=disabled keeps the webhook away from the namespace, whatever the pod says.
  if (optOut || nsLabels['istio-injection'] === 'disabled') return false;
  return optIn || nsLabels['istio-injection'] === 'enabled' || nsLabels['istio.io/rev'] !== undefined;
}

/** The plan of one chart's objects (or one file's). */
export function planOf(manifests: readonly Manifest[]): TrafficPlan {
  const objs = manifests.map((m) => m.obj);
  const of = (kind: string) => objs.filter((o) => o.kind === kind);
  const namespaces = new Map(of('Namespace').map((n) => [n.metadata.name, n]));
  const deployments = of('Deployment');
  const services = of('Service');
  const podsOf = (selector: Record<string, string> | undefined, ns: string) =>
    deployments.filter((d) => nsOf(d) === ns && selects(selector, d.spec?.template?.metadata?.labels)).map(id);
  const serviceByHost = new Map(services.map((s) => [`${s.metadata.name}.${nsOf(s)}.svc.cluster.local`, s]));

  // A ServiceEntry's host is a name as written ("httpbin.org" is not a Service in namespace "org").
  const entryHosts = of('ServiceEntry').flatMap((e) => (e.spec?.hosts ?? []).map(String));
  const external = (h: string) => entryHosts.some((x) => x === h || (x.startsWith('*.') && h.endsWith(x.slice(1))));
  const hostOf = (h: string, ns: string) => (external(h) ? h : fqdn(h, ns));
  const hosts: PlanHost[] = [];
  for (const vs of of('VirtualService')) {
    const ns = nsOf(vs);
    const gateways: string[] = vs.spec?.gateways ?? ['mesh'];
    const bindings = gateways.map((g) => (g === 'mesh' ? 'mesh' : g.includes('/') ? g : `${ns}/${g}`));
    const rules: PlanRule[] = (vs.spec?.http ?? []).map((r: any) => {
      const route: any[] = r.route ?? [];
      const weighted = route.some((d) => d.weight !== undefined);
      return {
        name: r.name,
        match: (r.match ?? []).map(matchInWords),
        destinations: route.map((d) => ({
          host: hostOf(d.destination.host, ns), subset: d.destination.subset, port: d.destination.port?.number,
          percent: weighted ? (d.weight ?? 0) : route.length === 1 ? 100 : Math.round(100 / route.length),
        })),
        policies: httpPolicies(r),
      };
    });
    for (const h of vs.spec?.hosts ?? []) hosts.push({ host: bindings.includes('mesh') ? hostOf(h, ns) : h, bindings, virtualService: id(vs), rules });
  }
  hosts.sort((a, b) => a.host.localeCompare(b.host) || a.virtualService.localeCompare(b.virtualService));

  const policies: PlanPolicy[] = of('DestinationRule').map((dr) => {
    const ns = nsOf(dr);
    const host = hostOf(dr.spec?.host ?? '', ns);
    const svc = serviceByHost.get(host);
    const svcSelector = svc?.spec?.selector ?? {};
    return {
      host,
      destinationRule: id(dr),
      policies: trafficPolicies(dr.spec?.trafficPolicy),
      subsets: (dr.spec?.subsets ?? []).map((s: any) => ({
        name: s.name,
        labels: s.labels ?? {},
        workloads: svc ? podsOf({ ...svcSelector, ...(s.labels ?? {}) }, nsOf(svc)) : [],
        policies: trafficPolicies(s.trafficPolicy),
      })),
    };
  }).sort((a, b) => a.host.localeCompare(b.host));

  const gateways: PlanGateway[] = of('Gateway').filter((g) => g.apiVersion.startsWith('networking.istio.io')).map((g) => ({
    name: id(g),
    selector: g.spec?.selector ?? {},
    servers: (g.spec?.servers ?? []).map((s: any) => ({
      port: `${s.port?.number}/${s.port?.protocol}`,
      hosts: s.hosts ?? [],
      tls: !s.tls ? undefined : s.tls.httpsRedirect ? 'HTTP answered with a redirect to HTTPS'
        : `${s.tls.mode ?? 'SIMPLE'}${s.tls.credentialName ? ` (secret ${s.tls.credentialName})` : ''}`,
    })),
  }));

  const calls: PlanCall[] = deployments.flatMap((d) => {
    const recorded = d.spec?.template?.metadata?.annotations?.[CALLS_ANNOTATION] as string | undefined;
    return (recorded ? recorded.split(',') : []).map((to) => ({ from: id(d), to: hostOf(to, nsOf(d)), inMesh: inMesh(d, namespaces) }));
  });

  const planServices: PlanService[] = services.map((s) => ({
    host: `${s.metadata.name}.${nsOf(s)}.svc.cluster.local`,
    ports: (s.spec?.ports ?? []).map((p: any) => p.port),
    workloads: podsOf(s.spec?.selector, nsOf(s)),
  })).sort((a, b) => a.host.localeCompare(b.host));

  const counts: Record<string, number> = {};
  for (const o of objs) counts[o.kind] = (counts[o.kind] ?? 0) + 1;
  const tracing: PlanTracing[] = of('Telemetry').flatMap((t) => (t.spec?.tracing ?? []).map((tr: any) => ({
    telemetry: id(t), namespace: nsOf(t),
    providers: (tr.providers ?? []).map((p: any) => String(p.name)),
    samplingPercentage: typeof tr.randomSamplingPercentage === 'number' ? tr.randomSamplingPercentage : undefined,
  })));
  const externals: PlanExternal[] = of('ServiceEntry').filter((e) => e.apiVersion.startsWith('networking.istio.io')).map((e) => ({
    serviceEntry: id(e),
    hosts: (e.spec?.hosts ?? []).map(String),
    ports: (e.spec?.ports ?? []).map((p: any) => `${p.number}/${p.protocol ?? 'TCP'}`),
    location: e.spec?.location ?? 'MESH_EXTERNAL',
    resolution: e.spec?.resolution ?? 'NONE',
    endpoints: (e.spec?.endpoints ?? []).map((x: any) => String(x.address)),
    addresses: (e.spec?.addresses ?? []).map(String),
    ...(e.spec?.exportTo ? { exportTo: e.spec.exportTo.map(String) } : {}),
  })).sort((a, b) => a.serviceEntry.localeCompare(b.serviceEntry));
  return { hosts, tracing, policies, gateways, services: planServices, externals, calls, findings: analyze(manifests), progressive: progressiveOf(objs), counts };
}
