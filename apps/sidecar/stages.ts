// The request path in stages, each a small function tested alone (test/sidecar-stages.test.ts),
// run by MeshProxy.serve in this order, as Envoy's HTTP connection manager runs its filters:
//   requestTarget -> loopGuard -> selectHost -> matchRoute -> pickDestination -> faultDelay /
//   faultAbort -> redirectReply -> upstreamOf -> admitToCluster -> upstreamHead -> bodyPlan
//   -> (mirror, attempts with retries: MeshProxy) -> responseHeaders.
// A stage that answers the request itself returns { reply }: the status, body and headers the
// proxy sends, and the response flag Envoy would log.
import type { IncomingMessage } from 'node:http';
import { DATA_PLANE_HEADERS, hostRewrite } from '../../model/host-header';
import type { OutboundTrafficPolicy, RtDestination, RtGatewayServer, RtHeaderOps, RtRoute, RtStringMatch } from '../../model/route-table';

type RtRedirect = NonNullable<RtRoute['redirect']>;
import { CompiledRoute, CompiledTable, CompiledVirtualHost, externalFor, RequestView, selectRoute } from './table';
import { TraceContext } from './tracing';
import { isLoopback } from './upstream';

/** The proxy's own answer: what it sends, and Envoy's response flag for the access log and metrics. */
export interface LocalReply {
  readonly status: number;
  readonly body: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly flags?: string;
  /** Refused by REGISTRY_ONLY: counted against Istio's BlackHoleCluster. */
  readonly blackhole?: boolean;
}
/** A stage's result when the proxy answers by itself. */
export interface Replied { readonly reply: LocalReply }
const reply = (status: number, body: string, extra: Omit<LocalReply, 'status' | 'body'> = {}): Replied => ({ reply: { status, body, ...extra } });

// Hop-by-hop headers (RFC 9110 7.6.1) and proxy credentials never travel on.
// `expect` too: Node already answered 100-continue to the client.
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authorization', 'proxy-authenticate', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'expect']);
/**
 * Request headers the proxy writes itself: the client's copies are dropped. Content-Length
 * too: the proxy frames every body it forwards from what it read (request smuggling
 * through framing the proxy did not make is then impossible).
 */
const REPLACED_REQUEST = new Set([...HOP_BY_HOP, 'content-length', 'host', 'via', 'x-request-id', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid']);
/**
 * Names a Connection header may not nominate as hop-by-hop: framing, the authority and what
 * the proxy writes itself (`Connection: content-length` must not strip the body's framing).
 */
const NEVER_NOMINATED = new Set([...REPLACED_REQUEST, 'x-forwarded-for', 'x-forwarded-proto', 'x-envoy-external-address', 'x-b3-sampled']);
/** Names a route's header operations cannot set (the table check refuses them): framing and connection management are the proxy's. */
const NOT_SETTABLE = new Set([...HOP_BY_HOP, ...DATA_PLANE_HEADERS]);

/** A gateway port: the servers of the Gateways that share it, and which Gateway each belongs to. */
export interface GatewayListener {
  readonly port: number;
  readonly protocol: 'HTTP' | 'HTTPS';
  readonly servers: ReadonlyArray<{ readonly gateway: string; readonly server: RtGatewayServer }>;
}

/** The server of a listener whose hosts name `host` (exact, then wildcard, then "*"); else the first, which answers 404. */
export function serverFor<T extends { readonly server: RtGatewayServer }>(servers: readonly T[], host: string | undefined): T {
  const name = (host ?? '').toLowerCase().replace(/\.$/, '');
  return servers.find((s) => s.server.hosts.includes(name))
    ?? servers.find((s) => s.server.hosts.some((h) => h.startsWith('*.') && name.endsWith(h.slice(1))))
    ?? servers.find((s) => s.server.hosts.includes('*'))
    ?? servers[0];
}

/** One of the proxy's own request headers, unless the route's operations set or remove it. */
export function headerLine(lines: string, drop: Set<string> | undefined, name: string, value: string): string {
  return drop?.has(name) ? lines : `${lines}${name}: ${value}\r\n`;
}

/**
 * The header names a Connection header lists (hop-by-hop too, RFC 9110 7.6.1), added to
 * `into`; names already in HOP_BY_HOP are left out, so `keep-alive` and `close` make no set,
 * and so are those no client or upstream may nominate (framing, Host, the proxy's own).
 */
export function connectionNamed(value: string | string[] | undefined, into?: Set<string>): Set<string> | undefined {
  if (value === undefined) return into;
  const v = String(value).toLowerCase();
  if (v === 'keep-alive' || v === 'close') return into;
  for (const t of v.split(',')) { const n = t.trim(); if (n && !HOP_BY_HOP.has(n) && !NEVER_NOMINATED.has(n)) (into ??= new Set()).add(n); }
  return into;
}

/** A header-operations block as the request path applies it, made once per block. */
export interface HeaderOpsPlan {
  /** Lower-case names whose incoming (and proxy-made) copies are dropped: set or removed. */
  readonly drop: Set<string>;
  /** The values to write, flat [name, value, ...]: `set` then `add`, minus removed names (removal wins, as before). */
  readonly pairs: readonly string[];
  /** The same as request header lines, without Host. */
  readonly lines: string;
  /** Host: the value `set` or `add` gives it (Istio's authority rewrite; the table allows one, never a removal), undefined when untouched. */
  readonly host: string | undefined;
}
const opsPlans = new WeakMap<RtHeaderOps, HeaderOpsPlan>();
export function opsPlan(ops: RtHeaderOps | undefined): HeaderOpsPlan | undefined {
  if (!ops) return undefined;
  let plan = opsPlans.get(ops);
  if (!plan) {
    const removed = new Set((ops.remove ?? []).map((k) => k.toLowerCase()));
    const pairs: string[] = [];
    let lines = '';
    for (const [k, v] of [...Object.entries(ops.set ?? {}), ...Object.entries(ops.add ?? {})]) {
      const l = k.toLowerCase();
      // The table check refuses these; a table made some other way still cannot reframe a message.
      if (removed.has(l) || NOT_SETTABLE.has(l)) continue;
      pairs.push(k, v);
      if (l !== 'host') lines += `${k}: ${v}\r\n`;
    }
    plan = { drop: new Set([...Object.keys(ops.set ?? {}).map((k) => k.toLowerCase()), ...removed]), pairs, lines, host: hostRewrite(ops) };
    opsPlans.set(ops, plan);
  }
  return plan;
}

/**
 * The response head for the client, as a flat [name, value, ...] list: the upstream's
 * headers in their order and case, minus hop-by-hop ones (and those its Connection header
 * names), with this proxy on Via and the route's header operations applied.
 */
export function responseHeaders(raw: readonly string[], via: string, ops: RtHeaderOps | undefined, close: boolean): string[] {
  let named: Set<string> | undefined;
  let chunked = false;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i].length;
    if (n === 10 && raw[i].toLowerCase() === 'connection') named = connectionNamed(raw[i + 1], named);
    else if (n === 17 && raw[i].toLowerCase() === 'transfer-encoding') chunked = true;
  }
  // A body read by its Transfer-Encoding has no trustworthy Content-Length: Node frames it anew.
  if (chunked) (named ??= new Set()).add('content-length');
  const plan = opsPlan(ops);
  const drop = plan?.drop;
  const out: string[] = [];
  let upVia: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const l = raw[i].toLowerCase();
    if (HOP_BY_HOP.has(l) || named?.has(l) || drop?.has(l)) continue;
    if (l === 'via') { upVia = upVia === undefined ? raw[i + 1] : `${upVia}, ${raw[i + 1]}`; continue; }
    out.push(raw[i], raw[i + 1]);
  }
  if (!drop?.has('via')) out.push('via', upVia === undefined ? via : `${upVia}, ${via}`);
  if (plan) for (const x of plan.pairs) out.push(x);
  if (close) out.push('connection', 'close');
  return out;
}

/** Why a request cannot be proxied at all (status and reason), before any routing. */
export function requestProblem(req: IncomingMessage, maxHeadersCount: number): [number, string] | undefined {
  if (req.httpVersionMajor !== 1) return [505, `HTTP/${req.httpVersion} is not supported; this proxy speaks HTTP/1.1`];
  if (req.rawHeaders.length / 2 > maxHeadersCount) return [431, `more than ${maxHeadersCount} request headers`];
  let hosts = 0;
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (req.rawHeaders[i].length === 4 && req.rawHeaders[i].toLowerCase() === 'host') hosts++;
  if (hosts > 1) return [400, 'more than one Host header (RFC 9112 3.2)'];
  // RFC 9112 6.1: HTTP/1.0 has no Transfer-Encoding; its framing is to be treated as faulty.
  if (req.httpVersionMinor === 0 && req.headers['transfer-encoding'] !== undefined) return [400, 'Transfer-Encoding on an HTTP/1.0 request (RFC 9112 6.1)'];
  return undefined;
}

/**
 * rewrite.uri as Istio configures Envoy: a prefix match swaps the matched prefix; a rule
 * without a uri match is Istio's prefix `/` match, so only the leading `/` is swapped
 * (`/something` with rewrite `/v2` is `/v2something`); exact and regex matches swap the
 * whole path. The query stays.
 */
export function rewritePath(path: string, uri: RtStringMatch | undefined, to: string): string {
  const q = path.indexOf('?');
  const p = q < 0 ? path : path.slice(0, q);
  const query = q < 0 ? '' : path.slice(q);
  const prefix = uri === undefined ? '/' : uri.kind === 'prefix' ? uri.value : undefined;
  if (prefix !== undefined && p.toLowerCase().startsWith(prefix.toLowerCase())) return to + p.slice(prefix.length) + query;
  return to + query;
}

export interface Target { host: string; port: number; authority: string; path: string }

const UNRESERVED = /[A-Za-z0-9\-._~]/;

/**
 * The path as Istio normalises it by default (BASE: Envoy's normalize_path): percent-encoded
 * unreserved characters decoded (`%2e` is `.`, `%7E` is `~`), other escapes upper-cased
 * (`%2f` stays encoded as `%2F`), then RFC 3986 dot segments removed, so `/public/../admin`
 * and `/public/%2e%2e/admin` are both `/admin`, for matching and upstream. With
 * `mergeSlashes`, `//` becomes `/` too (Istio's MERGE_SLASHES). A backslash is a slash
 * (Envoy's normalize_path, so `/public\..\admin` is `/admin`, not a `/public` path). The
 * query is left as sent; `..` at the root stays at the root.
 */
export function normalizePath(pathAndQuery: string, mergeSlashes = false): string {
  const q = pathAndQuery.indexOf('?');
  let path = q < 0 ? pathAndQuery : pathAndQuery.slice(0, q);
  const query = q < 0 ? '' : pathAndQuery.slice(q);
  if (path.includes('\\')) path = path.replace(/\\/g, '/');
  if (path.includes('%')) {
    path = path.replace(/%([0-9A-Fa-f]{2})/g, (_m, hex: string) => {
      const c = String.fromCharCode(parseInt(hex, 16));
      return UNRESERVED.test(c) ? c : `%${hex.toUpperCase()}`;
    });
  }
  if (mergeSlashes) path = path.replace(/\/{2,}/g, '/');
  if (path.includes('/.')) {
    const out: string[] = [];
    const segments = path.split('/');
    for (let i = 1; i < segments.length; i++) {
      const seg = segments[i];
      const last = i === segments.length - 1;
      if (seg === '.') { if (last) out.push(''); continue; }
      if (seg === '..') { out.pop(); if (last) out.push(''); continue; }
      out.push(seg);
    }
    path = `/${out.join('/')}`;
  }
  return path + query;
}

const HOST_RE = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+)(?::(\d{1,5}))?$/;

/** The request's host, port and path, from an absolute-form URL or the Host header. */
export function parseTarget(url: string, hostHeader: string | undefined, defaultPort: number): Target | string {
  let authority: string | undefined;
  let path: string;
  if (url.startsWith('/')) {
    authority = hostHeader;
    path = url;
  } else if (url.slice(0, 7).toLowerCase() === 'http://') {
    const rest = url.slice(7);
    const end = rest.search(/[/?#]/);
    authority = end < 0 ? rest : rest.slice(0, end);
    path = end < 0 ? '/' : rest.slice(end);
    if (!path.startsWith('/')) path = `/${path}`;
  } else {
    return `request target ${JSON.stringify(url.slice(0, 100))} is neither a path nor an http:// URL`;
  }
  if (!authority) return 'no Host header';
  // Envoy refuses a fragment in the request target (RFC 9112 3.2 has none): stripping it
  // would route one path and log another, keeping it would let `/private#x` miss `/private`.
  if (path.includes('#')) return `request target ${JSON.stringify(url.slice(0, 100))} has a #fragment`;
  // Istio refuses an encoded NUL whatever the normalization.
  if (/%00/.test(path)) return 'the path has an encoded NUL (%00)';
  const m = HOST_RE.exec(authority);
  if (!m) return `Host ${JSON.stringify(authority.slice(0, 100))} is not a host name or address`;
  const port = m[2] === undefined ? defaultPort : Number(m[2]);
  if (port < 1 || port > 65535) return `port ${m[2]} is out of range`;
  return { host: m[1].toLowerCase().replace(/^\[|\]$/g, ''), port, authority, path };
}

/**
 * The port to connect to: the destination's own, else its Service's single port (Istio
 * requires a port when a Service has several), else the request's port when it is one of
 * the Service's. Only a pass-through request (no rules, unknown host) keeps the port it
 * asked for.
 */
export function destinationPort(dest: { host: string; port?: number }, requestPort: number, services: ReadonlyMap<string, readonly number[]>, passthrough: boolean): number | undefined {
  if (dest.port !== undefined) return dest.port;
  if (passthrough) return requestPort;
  const ports = services.get(dest.host);
  if (ports?.length === 1) return ports[0];
  if (ports?.includes(requestPort)) return requestPort;
  return undefined;
}

// ---------------------------------------------------------------------------
// The stages, in the order serve() runs them.

/** Stage 1: the request's authority and path (absolute form, else Host), the gateway server bound to it, the path normalised. */
export function requestTarget(
  url: string, hostHeader: string | undefined, listener: GatewayListener | undefined, normalization: 'base' | 'merge-slashes' | 'none',
): { target: Target; bound?: GatewayListener['servers'][number] } | Replied {
  const target = parseTarget(url, hostHeader, listener?.servers[0].server.port ?? 80);
  if (typeof target === 'string') return reply(400, `mesh-proxy: bad request: ${target}`);
  // One authority for everything: the request target's when absolute, else Host (as Envoy
  // does), for the server (httpsRedirect, hosts), the route and the upstream.
  const bound = listener ? serverFor(listener.servers, target.host) : undefined;
  // Rules see, and the upstream gets, the normalised path: `/a/../admin` is `/admin`.
  if (normalization !== 'none') target.path = normalizePath(target.path, normalization === 'merge-slashes');
  return bound ? { target, bound } : { target };
}

/** Stage 2: a request that already passed through this proxy (its Via token) is a loop. */
export function loopGuard(via: string | string[] | undefined, ownVia: string): Replied | undefined {
  if (via !== undefined && String(via).includes(ownVia.slice(4))) return reply(508, 'mesh-proxy: request loop: this request already passed through this proxy');
  return undefined;
}

/** Where the request's host led: its rules, the Service it names on this port, or the Service that has it on another port. */
export interface HostSelection {
  readonly vh?: CompiledVirtualHost;
  readonly knownHost?: string;
  readonly otherPortOf?: string;
}

/**
 * Stage 3: the rules for the host. At a gateway: the server's httpsRedirect and hosts, then
 * only the rules bound to that server's own Gateway (a VirtualService of an internal Gateway
 * is not served on a public one sharing the pod). In a sidecar: never the proxy's own ports,
 * then the names the host stands for (`candidates`), a Service's rules and name on its own
 * ports only (Istio builds routes per port: `known:22` is not the service `known` on 8080).
 */
export function selectHost(
  target: Target, bound: GatewayListener['servers'][number] | undefined, table: CompiledTable,
  candidates: (host: string) => readonly string[], ownEndpoints: ReadonlySet<string>,
): HostSelection | Replied {
  if (bound) {
    const server = bound.server;
    if (server.httpsRedirect) return reply(301, 'moved to https', { headers: { location: `https://${target.host}${target.path}` } });
    if (!server.hosts.some((h) => h === '*' || h === target.host || (h.startsWith('*.') && target.host.endsWith(h.slice(1))))) {
      return reply(404, `mesh-proxy: host ${target.host} is not served on port ${server.port} of this gateway`);
    }
    const vh = table.gateways.get(bound.gateway)?.get(target.host);
    return vh ? { vh } : reply(404, `mesh-proxy: no route for host ${target.host} on gateway ${bound.gateway}`);
  }
  if (isLoopback(target.host) && ownEndpoints.has(`${target.host === 'localhost' ? '127.0.0.1' : target.host}:${target.port}`)) {
    return reply(508, `mesh-proxy: refusing to forward to the proxy's own port ${target.port}`);
  }
  return lookupHost(target.host, target.port, table, candidates);
}

/** The sidecar's host lookup (selectHost's, and a tunnel's admission and gRPC routing). */
export function lookupHost(host: string, port: number, table: CompiledTable, candidates: (host: string) => readonly string[]): HostSelection {
  let vh: CompiledVirtualHost | undefined;
  let knownHost: string | undefined;
  let otherPortOf: string | undefined;
  for (const c of candidates(host)) {
    const ports = table.services.get(c);
    if (ports && !ports.includes(port)) { otherPortOf ??= c; continue; }
    vh ??= table.hosts.get(c);
    if (!knownHost && ports) knownHost = c;
  }
  return { vh, knownHost, otherPortOf };
}

/** The route a request takes: the matching rule's, or a pass-through to the host asked for. */
export interface RouteChoice {
  readonly route: RtRoute;
  /** The compiled rule (its weighted picker), when the host has rules. */
  readonly picked?: CompiledRoute;
  /** The uri condition that matched (rewrite.uri swaps its prefix). */
  readonly uriMatch?: RtStringMatch;
  /** Istio's virtual host name for metrics: the rules', the Service's, a ServiceEntry's, or PassthroughCluster. */
  readonly virtualHost: string;
}

/**
 * Stage 4: the first rule whose match holds (none: 404 NR). A host without rules goes to
 * itself: a Service, a ServiceEntry's wildcard host or address range (connected to as asked),
 * or, unless REGISTRY_ONLY refuses it (502, BlackHoleCluster), anywhere.
 */
export function matchRoute(sel: HostSelection, view: RequestView, target: Target, table: CompiledTable, policy: OutboundTrafficPolicy): RouteChoice | Replied {
  if (sel.vh) {
    const m = selectRoute(sel.vh, view);
    if (!m) return reply(404, `mesh-proxy: no route of ${sel.vh.vh.name} matches ${view.method} ${target.path}`, { flags: 'NR' });
    return { route: m.route.route, picked: m.route, uriMatch: m.uri, virtualHost: sel.vh.vh.name };
  }
  const entry = sel.knownHost ? undefined : externalFor(table.externals, target.host, target.port);
  if (policy === 'REGISTRY_ONLY' && !sel.knownHost && !entry) {
    return reply(502, sel.otherPortOf
      ? `mesh-proxy: port ${target.port} is not a port of service ${sel.otherPortOf} (it has ${table.services.get(sel.otherPortOf)!.join(', ')}) and outboundTrafficPolicy is REGISTRY_ONLY`
      : `mesh-proxy: ${target.host} is not a service of this mesh and outboundTrafficPolicy is REGISTRY_ONLY`, { blackhole: true });
  }
  return { route: { match: [], destinations: [{ host: sel.knownHost ?? target.host, weight: 1 }] }, virtualHost: sel.knownHost ?? entry ?? 'PassthroughCluster' };
}

/**
 * Stage 5: the destination, picked with the route and before faults (Envoy picks a weighted
 * cluster when it routes): an aborted request counts against the destination it would have had.
 */
export function pickDestination(choice: RouteChoice): RtDestination | undefined {
  const ds = choice.route.destinations;
  return ds.length ? ds[choice.picked?.picker ? choice.picked.picker.next() : 0] : undefined;
}

/** Stage 6a: the injected delay this request gets, in ms (`chance` draws against a percentage). */
export function faultDelay(route: RtRoute, chance: (percentage: number) => boolean): number | undefined {
  const d = route.fault?.delay;
  return d && chance(d.percentage) ? d.fixedDelayMs : undefined;
}

/** Stage 6b: the injected abort this request gets (drawn after the delay, as Envoy's fault filter does). */
export function faultAbort(route: RtRoute, chance: (percentage: number) => boolean): Replied | undefined {
  const a = route.fault?.abort;
  return a && chance(a.percentage) ? reply(a.httpStatus, 'fault filter abort', { flags: 'FI' }) : undefined;
}

/**
 * Stage 7: a redirect rule's answer. Istio's redirect.uri replaces the whole path and the
 * query stays (Envoy's default); the port is kept unless the scheme changes, and left out
 * when it is the scheme's default.
 */
export function redirectReply(r: RtRedirect | undefined, server: RtGatewayServer | undefined, target: Target): Replied | undefined {
  if (!r) return undefined;
  const own = server?.protocol === 'HTTPS' ? 'https' : 'http';
  const scheme = r.scheme ?? own;
  const port = r.port ?? (r.scheme && r.scheme !== own ? undefined : target.port);
  const host = r.authority ?? target.host;
  const defaultPort = scheme === 'https' ? 443 : 80;
  const q = target.path.indexOf('?');
  const path = r.uri ? r.uri + (q < 0 ? '' : target.path.slice(q)) : target.path;
  const location = `${scheme}://${host}${port && port !== defaultPort ? `:${port}` : ''}${path}`;
  return reply(r.code, `redirect to ${location}`, { headers: { location } });
}

// The table's destination objects outlive requests: their names are made once per port.
const destinationNames = new WeakMap<object, { host: string; port: number; destination: string; cluster: string }>();

/**
 * Stage 8: the port to connect to and the names metrics and spans give the destination
 * (`host:port`, Istio's `outbound|port||host` cluster); a pass-through is PassthroughCluster.
 */
export function upstreamOf(dest: RtDestination | undefined, target: Target, table: CompiledTable, sel: HostSelection):
  { host: string; port: number; destination: string; cluster: string } | Replied {
  if (!dest) return reply(500, 'mesh-proxy: route has neither destinations nor a redirect');
  const port = destinationPort(dest, target.port, table.services, sel.vh === undefined && sel.knownHost === undefined);
  if (port === undefined) return reply(503, `mesh-proxy: destination ${dest.host} has no port and is not a service with a single port (or the request's port)`);
  if (sel.vh) {
    let n = destinationNames.get(dest);
    if (n?.port !== port) { n = { host: dest.host, port, destination: `${dest.host}:${port}`, cluster: `outbound|${port}||${dest.host}` }; destinationNames.set(dest, n); }
    return n;
  }
  return sel.knownHost
    ? { host: dest.host, port, destination: `${dest.host}:${port}`, cluster: `outbound|${port}||${dest.host}` }
    : { host: dest.host, port, destination: 'PassthroughCluster', cluster: 'PassthroughCluster' };
}

/** Stage 9: the cluster's circuit breaker (http2MaxRequests): over it, 503 UO with x-envoy-overloaded, as Envoy. */
export function admitToCluster(cluster: { readonly active: number; readonly maxRequests: number }): Replied | undefined {
  return cluster.active >= cluster.maxRequests ? reply(503, OVERFLOW_BODY, { headers: { 'x-envoy-overloaded': 'true' }, flags: 'UO' }) : undefined;
}
export const OVERFLOW_BODY = 'upstream connect error or disconnect/reset before headers. reset reason: overflow';

/** What the upstream request head is made from. */
export interface HeadInput {
  /** The client's headers as received, flat [name, value, ...]. */
  readonly rawHeaders: readonly string[];
  readonly connection: string | string[] | undefined;
  /** The client's Via, if any. */
  readonly via: string | string[] | undefined;
  readonly ownVia: string;
  readonly requestId: string;
  readonly trace: TraceContext;
  /** At a gateway: the client's address, its X-Forwarded-For and the listener's protocol. */
  readonly edge?: { readonly remoteAddress: string; readonly forwardedFor: string | string[] | undefined; readonly https: boolean };
  /** The route's request header operations. */
  readonly ops?: RtHeaderOps;
  /** The authority asked for, and the route's authority rewrite. */
  readonly authority: string;
  readonly rewriteAuthority?: string;
}

/**
 * Stage 10: the upstream request's header lines (without Host) and its authority: the
 * client's headers in their order and case, minus hop-by-hop ones, those the proxy writes
 * itself and those the route sets or removes; then the proxy's (request id, B3 trace, Via,
 * at the edge X-Forwarded-*), then the route's operations. At the edge, what only a proxy
 * may say is dropped: Envoy's internal x-envoy-* headers, a client certificate header (XFCC:
 * Istio's SANITIZE) and the forwarding headers the gateway writes.
 */
export function upstreamHead(h: HeadInput): { lines: string; authority: string } {
  const plan = opsPlan(h.ops);
  const drop = plan?.drop;
  const named = connectionNamed(h.connection);
  const raw = h.rawHeaders;
  const trace = h.trace;
  let lines = '';
  for (let i = 0; i < raw.length; i += 2) {
    const l = raw[i].toLowerCase();
    if (REPLACED_REQUEST.has(l) || named?.has(l) || drop?.has(l)) continue;
    if (h.edge && (l === 'x-forwarded-for' || l === 'x-forwarded-proto' || l === 'x-forwarded-client-cert' || l.startsWith('x-envoy-'))) continue;
    // The caller's sampling decision travels on unless this proxy made one.
    if (l === 'x-b3-sampled' && trace.sampled !== undefined) continue;
    lines += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  lines = headerLine(lines, drop, 'x-request-id', h.requestId);
  lines = headerLine(lines, drop, 'x-b3-traceid', trace.traceId);
  lines = headerLine(lines, drop, 'x-b3-spanid', trace.spanId);
  if (trace.parentId) lines = headerLine(lines, drop, 'x-b3-parentspanid', trace.parentId);
  if (trace.sampled !== undefined) lines = headerLine(lines, drop, 'x-b3-sampled', trace.sampled ? '1' : '0');
  lines = headerLine(lines, drop, 'via', h.via === undefined ? h.ownVia : `${String(h.via)}, ${h.ownVia}`);
  if (h.edge) {
    const addr = h.edge.remoteAddress;
    lines = headerLine(lines, drop, 'x-forwarded-for', h.edge.forwardedFor ? `${String(h.edge.forwardedFor)}, ${addr}` : addr);
    lines = headerLine(lines, drop, 'x-forwarded-proto', h.edge.https ? 'https' : 'http');
    lines = headerLine(lines, drop, 'x-envoy-external-address', addr);
  }
  let authority = h.rewriteAuthority ?? h.authority;
  if (plan) {
    lines += plan.lines;
    if (plan.host !== undefined) authority = plan.host;
  }
  return { lines, authority };
}

/**
 * Stage 11: how the request body travels. Bodies stream; one of known length up to
 * `maxBufferBytes` is kept when a retry or a mirror may resend it. A larger one (or of
 * unknown length) goes once, without retries or mirror (`unbuffered`).
 */
export function bodyPlan(headers: IncomingMessage['headers'], resend: boolean, maxBufferBytes: number):
  { readonly length?: number; readonly mode: 'none' | 'buffer' | 'stream'; readonly unbuffered: boolean } {
  const length = headers['content-length'] === undefined ? undefined : Number(headers['content-length']);
  const hasBody = length === undefined ? headers['transfer-encoding'] !== undefined : length > 0;
  if (!hasBody) return { length, mode: 'none', unbuffered: false };
  if (resend && length !== undefined && length <= maxBufferBytes) return { length, mode: 'buffer', unbuffered: false };
  return { length, mode: 'stream', unbuffered: resend };
}

