import { Lazy } from 'cdk8s';
import { Construct } from 'constructs';
import { allRefusals, Check, Duration, HeaderMatchModel, hostFor, HttpHeaders, MatchModel, MeshValidationError, RuleModel, ServiceRef, StringMatchModel } from '../../model';
import { hostRewrite } from '../../model/host-header';
import { IstioRenderer, renderTrafficPolicy } from '../istio/renderer';
import { DestinationRule } from '../istio/resources';
import { DataPlane, DestinationPolicyRendering, GatewayApiOptions, GatewayRendering, MeshChart, MeshRenderer, RolloutRendering, RouteRendering, ServiceEntryRendering, TracingRendering } from '../mesh';
import { renderArgoRollout } from '../progressive/argo-rollouts';
import type { MeshNamespace } from '../mesh-namespace';
import type { MeshWorkload } from '../mesh-workload';
import { findChartService, renderSubsetServices, subsetServiceName } from '../subset-services';
import {
  GATEWAY_API_GROUP, GatewayApiGateway, GwBackendRef, GwHeaderModifier, GwHttpRouteFilter, GwHttpRouteMatch, GwHttpRouteRule,
  GwListener, GwParentRef, GwPathModifier, GwValueMatch, HttpRoute, ReferenceGrant,
} from './resources';

/** Gateway API's PreciseHostname: a DNS name, lower case, no port or wildcard. */
const GW_HOSTNAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** Methods an HTTPRouteMatch accepts (its enum). */
const GW_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'];
/** Istio's ambient mode: the namespace (or pod) label that puts workloads in the mesh. */
export const ISTIO_AMBIENT_LABEL = 'istio.io/dataplane-mode';
/** Linkerd's injection annotation. */
export const LINKERD_INJECT_ANNOTATION = 'linkerd.io/inject';

/** An RE2 pattern matching `s` literally. */
function literal(s: string): string {
  return s.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
}

/**
 * A Gateway API Duration (GEP-2257: up to four `<n>h|m|s|ms` parts, n at most 5 digits).
 * Sub-millisecond precision has no Gateway API form.
 */
export function gatewayApiDuration(check: Check, field: string, d: Duration): string {
  if (d.nanos % 1_000_000 !== 0) check.fail(field, d.toIstio(), 'a whole number of milliseconds (Gateway API durations have millisecond precision)');
  let ms = d.nanos / 1_000_000;
  if (ms <= 99_999 && ms % 1000 !== 0) return `${ms}ms`;
  const parts: string[] = [];
  for (const [unit, size] of [['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    const n = Math.floor(ms / size);
    if (n > 0) parts.push(`${n}${unit}`);
    ms -= n * size;
  }
  return parts.join('') || '0s';
}

/** Precedence of a match block as Gateway API ranks rules (GEP-2 "Matching precedence"): larger wins. */
function precedence(m: MatchModel | undefined): number[] {
  const uri = m?.uri;
  const path = !uri ? [2, 1] : uri.kind === 'exact' ? [3, uri.value.length] : uri.kind === 'prefix' ? [2, uri.value.length] : [1, 0];
  return [...path, m?.method ? 1 : 0, m ? Object.keys(m.headers).length : 0, m ? Object.keys(m.queryParams).length : 0];
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/** Could one request satisfy both blocks? (Conservative: true unless provably disjoint.) */
function mayOverlap(a: MatchModel | undefined, b: MatchModel | undefined): boolean {
  if (!a || !b) return true;
  const ua = a.uri; const ub = b.uri;
  if (ua && ub && ua.kind !== 'regex' && ub.kind !== 'regex') {
    if (ua.kind === 'exact' && ub.kind === 'exact' && ua.value !== ub.value) return false;
    if (ua.kind === 'exact' && ub.kind === 'prefix' && !ua.value.startsWith(ub.value)) return false;
    if (ub.kind === 'exact' && ua.kind === 'prefix' && !ub.value.startsWith(ua.value)) return false;
    if (ua.kind === 'prefix' && ub.kind === 'prefix' && !ua.value.startsWith(ub.value) && !ub.value.startsWith(ua.value)) return false;
  }
  if (a.method?.kind === 'exact' && b.method?.kind === 'exact' && a.method.value !== b.method.value) return false;
  for (const [name, ha] of Object.entries(a.headers)) {
    const hb = b.headers[name];
    if (ha.kind === 'exact' && hb?.kind === 'exact' && ha.value !== hb.value) return false;
  }
  for (const [name, qa] of Object.entries(a.queryParams)) {
    const qb = b.queryParams[name];
    if (qa.kind === 'exact' && qb?.kind === 'exact' && qa.value !== qb.value) return false;
  }
  return true;
}

function describeMatch(m: MatchModel | undefined): string {
  if (!m) return 'any request';
  const parts = [m.uri ? `uri ${m.uri.kind} ${m.uri.value}` : undefined, m.method ? `method ${m.method.value}` : undefined,
    ...Object.entries(m.headers).map(([k, v]) => `header ${k} ${v.kind}${v.kind === 'present' ? '' : ` ${v.value}`}`),
    ...Object.entries(m.queryParams).map(([k, v]) => `query ${k} ${v.kind} ${v.value}`)].filter(Boolean);
  return parts.join(', ') || 'any request';
}

/**
 * Kubernetes Gateway API: mesh routes as GAMMA HTTPRoutes (parentRef: the Service),
 * gateway routes as HTTPRoutes bound to Gateway listeners, subsets as per-version
 * Services (backendRefs name Services, as ambient and GAMMA require). What HTTPRoute
 * cannot express (fault injection, withoutHeaders, retries on the standard channel,
 * Istio's non-status retry conditions, traffic policies, rule order that Gateway API's
 * specificity ranking would change) is refused at synth with the construct's path.
 */
export class GatewayApiRenderer implements MeshRenderer {
  readonly dataPlane = DataPlane.GATEWAY_API;
  readonly rolloutTrafficRouter = true;
  private readonly options: GatewayApiOptions;
  private readonly istio = new IstioRenderer();
  /** Gateways of this chart by `namespace/name`: their listeners, for sectionName binding. */
  private readonly gateways = new Map<string, { listeners: Array<GwListener & { hosts: string[]; redirect: boolean }> }>();
  /** Gateways (`namespace/name`) that routes from other namespaces bind to. */
  private readonly foreignBound = new Set<string>();
  private readonly grants = new Set<string>();

  constructor(private readonly chart: MeshChart) {
    this.options = chart.gatewayApi;
    const check: Check = new Check(chart.node.path);
    if (this.options.gatewayClassName !== undefined) {
      check.nonEmptyString('gatewayApi.gatewayClassName', this.options.gatewayClassName);
      if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(this.options.gatewayClassName) || this.options.gatewayClassName.length > 253) {
        check.fail('gatewayApi.gatewayClassName', this.options.gatewayClassName, 'a GatewayClass name (DNS subdomain)');
      }
    }
    if (this.options.channel !== undefined) check.oneOf('gatewayApi.channel', this.options.channel, ['standard', 'experimental']);
    if (this.options.mesh !== undefined) check.oneOf('gatewayApi.mesh', this.options.mesh, ['istio', 'istio-ambient', 'linkerd', 'none']);
    if (this.options.trafficPolicies !== undefined) check.oneOf('gatewayApi.trafficPolicies', this.options.trafficPolicies, ['error', 'istio']);
  }

  private ns(namespace: string | undefined): string {
    return namespace ?? this.chart.namespace ?? 'default';
  }

  enrollNamespace(ns: MeshNamespace): void {
    switch (this.options.mesh ?? 'istio') {
      case 'istio': return this.istio.enrollNamespace(ns);
      case 'istio-ambient': return void ns.resource.metadata.addLabel(ISTIO_AMBIENT_LABEL, ns.injects ? 'ambient' : 'none');
      case 'linkerd': return void ns.resource.metadata.addAnnotation(LINKERD_INJECT_ANNOTATION, ns.injects ? 'enabled' : 'disabled');
      default: return undefined;
    }
  }

  enrollWorkload(w: MeshWorkload): void {
    const nsInjects = w.meshNamespace?.injects ?? false;
    switch (this.options.mesh ?? 'istio') {
      case 'istio': return this.istio.enrollWorkload(w);
      case 'istio-ambient':
        if (w.inMesh !== nsInjects) w.addPodLabel(ISTIO_AMBIENT_LABEL, w.inMesh ? 'ambient' : 'none');
        return undefined;
      case 'linkerd':
        if (w.inMesh !== nsInjects) w.addPodAnnotation(LINKERD_INJECT_ANNOTATION, w.inMesh ? 'enabled' : 'disabled');
        return undefined;
      default: return undefined;
    }
  }

  renderRoute(scope: Construct, id: string, r: RouteRendering): void {
    const check: Check = new Check(scope.node.path);
    const routeNs = this.ns(r.namespace);
    const gateways = r.model.gateways.filter((g) => g !== 'mesh');
    const mesh = r.model.gateways.length === 0 || r.model.gateways.includes('mesh');
    const rules = this.rules(check, r.model.http, routeNs);
    if (mesh) {
      // GAMMA: the route attaches to the Services its hosts name.
      const parentRefs = r.model.hosts.map((h) => this.serviceParent(check, h, routeNs));
      new HttpRoute(scope, id, { metadata: { name: r.name, namespace: r.namespace }, spec: { parentRefs, rules } });
    }
    if (gateways.length) {
      const hosts = r.model.hosts.map((h) => (typeof h === 'string' ? h : hostFor(h, r.namespace)));
      const hostnames = hosts.includes('*') ? undefined : hosts;
      const refs = gateways.map((g) => {
        const [gwNs, gwName] = g.includes('/') ? g.split('/') : [routeNs, g];
        if (gwNs !== routeNs) this.foreignBound.add(`${gwNs}/${gwName}`);
        return { key: `${gwNs}/${gwName}`, ref: { group: GATEWAY_API_GROUP, kind: 'Gateway' as const, name: gwName, ...(gwNs !== routeNs ? { namespace: gwNs } : {}) } };
      });
      // Bound to the listeners that serve the route's hosts; resolved at synth, when every gateway exists.
      const parentRefs = Lazy.any({
        produce: () => refs.flatMap(({ key, ref }) => {
          const gw = this.gateways.get(key);
          if (!gw) return [ref]; // a Gateway outside this chart: bind to all its listeners
          const listeners = gw.listeners.filter((l) => !l.redirect && hosts.some((h) => l.hosts.some((lh) => hostsOverlap(h, lh))));
          if (listeners.length === 0) {
            throw new MeshValidationError(scope.node.path, 'hosts', hosts, `a host that a non-redirecting server of gateway ${key} serves (its servers: ${gw.listeners.map((l) => `${l.name} ${l.hosts.join(',')}`).join('; ')})`);
          }
          return listeners.map((l) => ({ ...ref, sectionName: l.name }));
        }),
      });
      new HttpRoute(scope, mesh ? `${id}-gateways` : id, {
        metadata: { name: mesh ? `${r.name}-gateways` : r.name, namespace: r.namespace },
        spec: { parentRefs: parentRefs as unknown as GwParentRef[], ...(hostnames ? { hostnames } : {}), rules },
      });
    }
  }

  /** Names of ServiceEntries only an Istio mesh reads: refused, saying so, on the others. */
  private needsIstio(check: Check, field: string, host: string): void {
    const mesh = this.options.mesh ?? 'istio';
    if (mesh !== 'istio' && mesh !== 'istio-ambient') {
      check.fail(field, host, `a Service: ${host} is a ServiceEntry host, which only gatewayApi.mesh "istio" or "istio-ambient" routes to (mesh is "${mesh}"); or DataPlane.ISTIO or NODE_SIDECAR`);
    }
  }

  /** A GAMMA parentRef: the Service a mesh host names, or the ServiceEntry that declares it (Istio). */
  private serviceParent(check: Check, h: ServiceRef | string, routeNs: string): GwParentRef {
    let name: string;
    let namespace: string;
    if (typeof h !== 'string' && h.serviceEntryRef) {
      this.needsIstio(check, 'hosts', h.serviceName);
      const ns = h.serviceEntryRef.namespace ?? routeNs;
      return { group: ISTIO_GROUP, kind: 'ServiceEntry', name: h.serviceEntryRef.name, ...(ns !== routeNs ? { namespace: ns } : {}) };
    }
    if (typeof h !== 'string') {
      name = h.serviceName;
      namespace = h.serviceNamespace ?? routeNs;
    } else {
      // A host that is not a Service (an external name) is refused by the capability gate.
      const parts = h.toLowerCase().replace(/\.$/, '').split('.');
      name = parts[0];
      namespace = parts[1] ?? routeNs;
    }
    return { group: '', kind: 'Service', name, ...(namespace !== routeNs ? { namespace } : {}) };
  }

  private rules(check: Check, http: readonly RuleModel[], routeNs: string): GwHttpRouteRule[] {
    // Gateway API picks the most specific rule, not the first: refuse orders it would change.
    const blocks = http.flatMap((r, i) => (r.match.length ? r.match : [undefined]).map((m) => ({ i, m })));
    const order = blocks.flatMap((a) => blocks
      .filter((b) => b.i > a.i && mayOverlap(a.m, b.m) && compare(precedence(b.m), precedence(a.m)) > 0)
      .map((b) => () => check.fail(`http[${b.i}].match`, describeMatch(b.m),
        `a rule that does not outrank the earlier http[${a.i}] (${describeMatch(a.m)}) for requests both match: Gateway API chooses the most specific rule (exact path, longest prefix, method, most headers, most query parameters), not the first; put http[${b.i}] first or make the matches exclusive`)));
    return allRefusals([...order, ...http.map((r, i) => () => this.rule(check, `http[${i}]`, r, routeNs))]).flat();
  }

  private rule(check: Check, f: string, r: RuleModel, routeNs: string): GwHttpRouteRule[] {
    const [matches, backendRefs, mirror] = allRefusals<unknown>([
      () => allRefusals(r.match.map((m, k) => () => this.match(check, `${f}.match[${k}]`, m))),
      () => allRefusals(r.route.map((d, k) => () => ({ ...this.backend(check, `${f}.route[${k}]`, d, routeNs), ...(r.route.length > 1 ? { weight: d.weight } : {}) }))),
      () => r.mirror && this.backend(check, `${f}.mirror`, r.mirror, routeNs),
    ]) as [GwHttpRouteMatch[], GwBackendRef[], GwBackendRef | undefined];
    const filters: GwHttpRouteFilter[] = [];
    // Host set or added is Istio's authority rewrite: on Gateway API that is URLRewrite's
    // hostname (the model allows one Host per rule, and never with rewrite.authority).
    const hostname = hostRewrite(r.headers?.request);
    if (hostname !== undefined && !GW_HOSTNAME.test(hostname)) {
      check.fail(`${f}.headers.request Host`, hostname, 'a host name without port or wildcard (on Gateway API a Host rewrite is URLRewrite hostname)');
    }
    const notHost = ([name]: [string, string]) => name.toLowerCase() !== 'host';
    const headerOps = (h: HttpHeaders['request']): GwHeaderModifier | undefined => {
      if (!h) return undefined;
      const set = Object.entries(h.set ?? {}).filter(notHost);
      const add = Object.entries(h.add ?? {}).filter(notHost);
      const out: GwHeaderModifier = {
        ...(set.length ? { set: set.map(([name, value]) => ({ name, value })) } : {}),
        ...(add.length ? { add: add.map(([name, value]) => ({ name, value })) } : {}),
        ...(h.remove?.length ? { remove: [...h.remove] } : {}),
      };
      return Object.keys(out).length ? out : undefined;
    };
    const req = headerOps(r.headers?.request);
    if (req) filters.push({ type: 'RequestHeaderModifier', requestHeaderModifier: req });
    if (hostname !== undefined && !r.rewrite) filters.push({ type: 'URLRewrite', urlRewrite: { hostname } });
    const res = headerOps(r.headers?.response);
    if (res) filters.push({ type: 'ResponseHeaderModifier', responseHeaderModifier: res });
    if (r.redirect) {
      const rd = r.redirect;
      filters.push({
        type: 'RequestRedirect',
        requestRedirect: {
          ...(rd.scheme ? { scheme: rd.scheme } : {}), ...(rd.authority ? { hostname: rd.authority } : {}),
          ...(rd.uri ? { path: { type: 'ReplaceFullPath', replaceFullPath: rd.uri } } : {}), ...(rd.port ? { port: rd.port } : {}),
          statusCode: rd.redirectCode ?? 301,
        },
      });
    }
    if (r.mirror) {
      const percent = r.mirror.percentage;
      if (!Number.isInteger(percent)) check.fail(`${f}.mirror.percentage`, percent, 'a whole percentage (HTTPRoute RequestMirror percent is an integer)');
      filters.push({ type: 'RequestMirror', requestMirror: { backendRef: mirror!, ...(percent !== 100 ? { percent } : {}) } });
    }
    const timeouts = {
      ...(r.timeout ? { request: gatewayApiDuration(check, `${f}.timeout`, r.timeout) } : {}),
      ...(r.retries?.perTryTimeout ? { backendRequest: gatewayApiDuration(check, `${f}.retries.perTryTimeout`, r.retries.perTryTimeout) } : {}),
    };
    const retry = r.retries && r.retries.attempts > 0 ? this.retry(check, `${f}.retries`, r.retries) : undefined;
    const base: GwHttpRouteRule = {
      ...(backendRefs.length ? { backendRefs } : {}),
      ...(Object.keys(timeouts).length ? { timeouts } : {}),
      ...(retry ? { retry } : {}),
    };
    if (!r.rewrite) return [{ ...(matches.length ? { matches } : {}), ...(filters.length ? { filters } : {}), ...base }];
    // URLRewrite: a prefix match swaps the prefix (ReplacePrefixMatch needs exactly one PathPrefix
    // match per rule, so blocks become rules of their own), other matches replace the whole path.
    const blocks = r.match.length ? r.match : [undefined];
    return blocks.map((m, k) => {
      const gm: GwHttpRouteMatch = matches[k] ?? {};
      let path: GwPathModifier | undefined;
      let match = gm;
      if (r.rewrite!.uri !== undefined) {
        if (!m?.uri || m.uri.kind === 'prefix') {
          path = { type: 'ReplacePrefixMatch', replacePrefixMatch: r.rewrite!.uri };
          match = { ...gm, path: gm.path ?? { type: 'PathPrefix', value: '/' } };
        } else {
          path = { type: 'ReplaceFullPath', replaceFullPath: r.rewrite!.uri };
        }
      }
      const authority = r.rewrite!.authority ?? hostname;
      const rewrite: GwHttpRouteFilter = { type: 'URLRewrite', urlRewrite: { ...(authority ? { hostname: authority } : {}), ...(path ? { path } : {}) } };
      return { ...(Object.keys(match).length ? { matches: [match] } : {}), filters: [...filters, rewrite], ...base };
    });
  }

  private match(check: Check, f: string, m: MatchModel): GwHttpRouteMatch {
    // withoutHeaders, ignoreUriCase and a port match are refused by the capability gate.
    const path = m.uri && { type: m.uri.kind === 'exact' ? 'Exact' as const : m.uri.kind === 'prefix' ? 'PathPrefix' as const : 'RegularExpression' as const, value: m.uri.value };
    if (m.method && (m.method.kind !== 'exact' || !GW_METHODS.includes(m.method.value))) {
      check.fail(`${f}.method`, m.method.value, `an exact method, one of ${GW_METHODS.join(', ')} (HTTPRoute matches methods exactly)`);
    }
    const values = (map: Readonly<Record<string, HeaderMatchModel | StringMatchModel>>): GwValueMatch[] => Object.entries(map).map(([name, v]) => (
      v.kind === 'exact' ? { type: 'Exact', name, value: v.value }
        // RE2, whole value: a prefix is the literal followed by anything; presence is any value.
        : v.kind === 'prefix' ? { type: 'RegularExpression', name, value: `${literal(v.value)}.*` }
          : v.kind === 'present' ? { type: 'RegularExpression', name, value: '.*' }
            : { type: 'RegularExpression', name, value: v.value }));
    const headers = values(m.headers);
    const queryParams = values(m.queryParams);
    return {
      ...(path ? { path } : {}),
      ...(headers.length ? { headers } : {}),
      ...(queryParams.length ? { queryParams } : {}),
      ...(m.method ? { method: m.method.value } : {}),
    };
  }

  private retry(check: Check, f: string, r: NonNullable<RuleModel['retries']>): GwHttpRouteRule['retry'] {
    if ((this.options.channel ?? 'standard') !== 'experimental') {
      check.fail(f, `${r.attempts} attempts`, 'no retries on the Gateway API standard channel (HTTPRoute retry is experimental: set gatewayApi.channel to "experimental" if the cluster has the experimental CRDs)');
    }
    const codes = new Set<number>();
    const other: string[] = [];
    // Unset retryOn: Istio's retriable status code, 503.
    for (const c of r.retryOn ?? ['503']) {
      if (/^\d{3}$/.test(c)) codes.add(Number(c));
      else if (c === 'gateway-error') [502, 503, 504].forEach((x) => codes.add(x));
      else if (c !== 'retriable-status-codes') other.push(c);
    }
    if (other.length) {
      check.fail(`${f}.retryOn`, other.join(','), 'status codes only (HTTPRoute retry has codes; Envoy conditions such as connect-failure or reset have no Gateway API form)');
    }
    return { attempts: r.attempts, ...(codes.size ? { codes: [...codes].sort((a, b) => a - b) } : {}) };
  }

  /** A Service backendRef (a subset is its per-version Service), with a ReferenceGrant when it is in another namespace. */
  private backend(check: Check, f: string, d: { to: ServiceRef; subset?: string; port?: number }, routeNs: string): GwBackendRef {
    if (d.to.serviceEntryRef) {
      // Istio's synthetic Hostname kind: a ServiceEntry host (no namespace: hosts are global).
      this.needsIstio(check, `${f}.to`, d.to.serviceName);
      const port = d.port ?? (d.to.servicePorts?.length === 1 ? d.to.servicePorts[0] : undefined);
      if (port === undefined) check.fail(`${f}.port`, d.port, `a port: ServiceEntry ${d.to.serviceEntryRef.name} has ports ${(d.to.servicePorts ?? []).join(', ')}, and a backendRef needs one`);
      if (d.subset) check.fail(`${f}.subset`, d.subset, 'no subset: a Hostname backendRef has no per-version Service to name');
      return { group: ISTIO_GROUP, kind: 'Hostname', name: d.to.serviceName, port };
    }
    const ns = d.to.serviceNamespace ?? routeNs;
    const name = d.subset ? subsetServiceName(d.to.serviceName, d.subset) : d.to.serviceName;
    let port = d.port ?? (d.to.servicePorts?.length === 1 ? d.to.servicePorts[0] : undefined);
    if (port === undefined) {
      const svc = findChartService(this.chart, d.to.serviceName, ns);
      const ports = ((svc?.toJson().spec as { ports?: Array<{ port: number }> } | undefined)?.ports ?? []).map((p) => p.port);
      if (ports.length === 1) port = ports[0];
      else check.fail(`${f}.port`, d.port, `a port: ${d.to.serviceName} has ${ports.length ? `ports ${ports.join(', ')}` : 'no port this chart knows'}, and a backendRef to a Service needs one`);
    }
    if (ns !== routeNs) this.grant(ns, routeNs);
    return { name, ...(ns !== routeNs ? { namespace: ns } : {}), port };
  }

  /** Routes in `from` may forward to Services in `to`: one ReferenceGrant per namespace pair. */
  private grant(to: string, from: string): void {
    const key = `${to}<-${from}`;
    if (this.grants.has(key)) return;
    this.grants.add(key);
    new ReferenceGrant(this.chart, `ReferenceGrant-${to}-from-${from}`, {
      metadata: { name: `httproutes-from-${from}`, namespace: to },
      spec: { from: [{ group: GATEWAY_API_GROUP, kind: 'HTTPRoute', namespace: from }], to: [{ group: '', kind: 'Service' }] },
    });
  }

  /** Gateway API has no tracing resource; Istio (sidecar or ambient) reads its Telemetry for Gateway API traffic too. */
  renderTracing(scope: Construct, id: string, t: TracingRendering): void {
    const mesh = this.options.mesh ?? 'istio';
    if (mesh !== 'istio' && mesh !== 'istio-ambient') {
      new Check(scope.node.path).fail('dataPlane', `gateway-api with mesh "${mesh}"`, 'gatewayApi.mesh "istio" or "istio-ambient" for MeshTracing (Gateway API has no tracing resource; the Istio Telemetry is emitted as its extension)');
    }
    this.istio.renderTracing(scope, id, t);
  }

  /** Gateway API has no registry of external hosts; Istio's (sidecar or ambient) ServiceEntry serves Gateway API traffic too. */
  /**
   * Argo's Gateway API plugin: the HTTPRoute's weights between the per-subset Services. Its
   * analysis reads Istio's standard metrics, which only an Istio mesh writes.
   */
  renderRollout(scope: Construct, id: string, r: RolloutRendering): void {
    const mesh = this.options.mesh ?? 'istio';
    if (mesh !== 'istio' && mesh !== 'istio-ambient') {
      new Check(scope.node.path).fail('progressiveDelivery', r.pd.title, `a mesh whose metrics the analysis reads: with gatewayApi.mesh "${mesh}" there are no Istio standard metrics; use gatewayApi.mesh "istio" or "istio-ambient", or DataPlane.ISTIO`);
    }
    renderArgoRollout(scope, id, r, 'gateway-api');
  }

  renderServiceEntry(scope: Construct, id: string, e: ServiceEntryRendering): void {
    const mesh = this.options.mesh ?? 'istio';
    if (mesh !== 'istio' && mesh !== 'istio-ambient') {
      new Check(scope.node.path).fail('dataPlane', `gateway-api with mesh "${mesh}"`, 'gatewayApi.mesh "istio" or "istio-ambient" for a ServiceEntry (Gateway API has no resource for external hosts; Istio\'s ServiceEntry is emitted for those meshes), or DataPlane.ISTIO or NODE_SIDECAR');
    }
    this.istio.renderServiceEntry(scope, id, e);
  }

  renderDestinationPolicy(scope: Construct, id: string, p: DestinationPolicyRendering): void {
    renderSubsetServices(scope, this.chart, p, 'Gateway API');
    const policies = [{ field: 'trafficPolicy', host: p.service, policy: p.trafficPolicy },
      ...p.subsets.map((s) => ({ field: `subsets.${s.name}.trafficPolicy`, host: { ...p.service, serviceName: subsetServiceName(p.service.serviceName, s.name) }, policy: s.trafficPolicy ?? p.trafficPolicy }))]
      .filter((x) => x.policy !== undefined);
    // Without gatewayApi.trafficPolicies "istio" the capability gate has refused these, or dropped them as the chart allowed.
    if (policies.length === 0) return;
    // Istio applies DestinationRules to Gateway API traffic: one per Service host (subsets are Services here).
    for (const x of policies) {
      new DestinationRule(scope, x.host === p.service ? id : `${id}-${x.host.serviceName}`, {
        metadata: { name: x.host === p.service ? p.name : `${p.name}-${x.host.serviceName.slice(p.service.serviceName.length + 1)}`, namespace: p.namespace },
        spec: { host: hostFor(x.host, p.namespace), trafficPolicy: renderTrafficPolicy(x.policy) },
      });
    }
  }

  renderGateway(scope: Construct, id: string, g: GatewayRendering): void {
    const namespace = this.ns(g.namespace);
    const listeners: Array<GwListener & { hosts: string[]; redirect: boolean }> = [];
    g.servers.forEach((s) => {
      // Protocols other than HTTP(S), TLS modes other than SIMPLE and "ns/host" hosts are refused by the capability gate.
      const hosts = s.hosts.map((h) => (h.includes('/') ? h.split('/')[1] : h));
      const named = hosts.includes('*') ? ['*'] : hosts;
      named.forEach((h, j) => listeners.push({
        name: named.length === 1 ? s.name : `${s.name}-${j}`,
        ...(h === '*' ? {} : { hostname: h }),
        port: s.port,
        protocol: s.protocol as 'HTTP' | 'HTTPS',
        ...(s.tls ? { tls: { mode: 'Terminate' as const, certificateRefs: [{ kind: 'Secret', name: s.tls.credentialName! }] } } : {}),
        hosts: [h],
        redirect: s.httpsRedirect,
      }));
    });
    const key = `${namespace}/${g.name}`;
    this.gateways.set(key, { listeners });
    new GatewayApiGateway(scope, id, {
      metadata: { name: g.name, namespace: g.namespace },
      spec: {
        gatewayClassName: this.options.gatewayClassName ?? 'istio',
        // Routes from other namespaces bind as they do to an Istio Gateway: allowed once one does.
        listeners: Lazy.any({
          produce: () => listeners.map(({ hosts: _h, redirect: _r, ...l }) => ({ ...l, ...(this.foreignBound.has(key) ? { allowedRoutes: { namespaces: { from: 'All' } } } : {}) })),
        }) as unknown as GwListener[],
      },
    });
    // httpsRedirect: the listener's requests all get a 301 to https, as the Istio server does.
    const redirecting = listeners.filter((l) => l.redirect);
    if (redirecting.length) {
      new HttpRoute(scope, `${id}-https-redirect`, {
        metadata: { name: `${g.name}-https-redirect`, namespace: g.namespace },
        spec: {
          parentRefs: redirecting.map((l) => ({ group: GATEWAY_API_GROUP, kind: 'Gateway', name: g.name, sectionName: l.name })),
          rules: [{ filters: [{ type: 'RequestRedirect', requestRedirect: { scheme: 'https', statusCode: 301 } }] }],
        },
      });
    }
  }
}

/** Istio's networking API group: its ServiceEntry kind and synthetic Hostname kind in Gateway API references. */
const ISTIO_GROUP = 'networking.istio.io';

/** Does a route host fall under a listener host (both may be `*` or `*.suffix`)? */
function hostsOverlap(route: string, listener: string): boolean {
  if (route === '*' || listener === '*' || route === listener) return true;
  const under = (h: string, wild: string) => wild.startsWith('*.') && h.endsWith(wild.slice(1));
  return under(route, listener) || under(listener, route);
}

/** Throws unless `chart` is a MeshChart (the renderer reads the chart's Services and options). */
export function gatewayApiRenderer(chart?: MeshChart): GatewayApiRenderer {
  if (!chart) throw new MeshValidationError('(no chart)', 'dataPlane', DataPlane.GATEWAY_API, 'constructs inside a MeshChart');
  return new GatewayApiRenderer(chart);
}

