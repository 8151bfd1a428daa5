// The request path: find the rules for a request, apply them, forward it.
import { randomBytes, randomUUID } from 'node:crypto';
import * as http from 'node:http';
import { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { ISTIO_DEFAULT_RETRY_ATTEMPTS, ISTIO_DEFAULT_RETRY_ON, OutboundTrafficPolicy, RtHeaderOps, RtRoute, RtStringMatch } from '../../model/route-table';
import type { DestinationLabels } from './istio-metrics';
import { ProxyMetrics } from './metrics';
import { Binding, CompiledRoute, CompiledTable, externalFor, hostCandidates, RequestView, selectRoute } from './table';
import { TraceContext, traceContext, Tracer } from './tracing';
import { Downstream, OVERLOADED } from './downstream';
import { Attempt, cutOff, isOwnAddress, UpstreamError, UpstreamResponse, Upstreams } from './upstream';
import { Cluster, Clusters, Host, NO_HEALTHY_UPSTREAM } from './clusters';
import type { GrpcRouting } from './grpc';

import {
  admitToCluster, bodyPlan, destinationPort, OVERFLOW_BODY, faultAbort, faultDelay, GatewayListener, HostSelection, LocalReply, lookupHost, matchRoute, opsPlan, pickDestination,
  redirectReply, requestProblem, requestTarget, responseHeaders, rewritePath, selectHost, Target, upstreamHead, upstreamOf, loopGuard,
} from './stages';

export { OVERLOADED };
// The stages' helpers other modules and tests use by this module's name.
export { destinationPort, normalizePath, parseTarget, requestProblem, responseHeaders, rewritePath, serverFor } from './stages';
export type { GatewayListener, Target } from './stages';

/** Istio's retry policy for routes that set none: 2 retries on connection trouble and 503. */
export const DEFAULT_RETRIES: NonNullable<RtRoute['retries']> = { attempts: ISTIO_DEFAULT_RETRY_ATTEMPTS, retryOn: ISTIO_DEFAULT_RETRY_ON };
const DEFAULT_RETRIABLE_CODES = [503];


export interface ProxyOptions {
  /** The pod's namespace: short host names resolve in it. */
  readonly namespace: string;
  readonly binding: Binding;
  /** Overrides the table's outboundTrafficPolicy. @default - the table's */
  readonly outboundTrafficPolicy?: OutboundTrafficPolicy;
  /** `host:port` of this proxy's own listeners: never forwarded to. */
  readonly ownEndpoints: Set<string>;
  /** Request bodies up to this size are buffered so that retries and mirrors can resend them. */
  readonly maxBufferBytes: number;
  readonly accessLog: boolean;
  /** More request headers than this: 431 (Envoy's max_headers_count). The server must parse at least one more. */
  readonly maxHeadersCount: number;
  /** Istio's pathNormalization: base (default), merge-slashes, or none. */
  readonly pathNormalization: 'base' | 'merge-slashes' | 'none';
  readonly random?: () => number;
  /** Span export (the route table's `tracing`); absent: tracing headers travel, no spans are sent. */
  readonly tracer?: Tracer;
  /** Gateway mode: keep an external client's x-request-id (Envoy's preserve_external_request_id). @default false */
  readonly preserveExternalRequestId?: boolean;
  /** Serves pipelined requests one at a time and keeps track of idle connections. @default - each request as it comes */
  readonly downstream?: Downstream;
  /** Endpoints, load balancing, outlier detection and pools per Service. @default - every request to the Service's name (ClusterIP) */
  readonly clusters?: Clusters;
  /** A WebSocket with no bytes either way for this long is closed. @default 3600000 (Istio's idle timeout) */
  readonly upgradeIdleTimeoutMs?: number;
}

/** A WebSocket handshake's sockets, from the server's 'upgrade' event to the upstream's 101. */
interface UpgradeState { readonly socket: Socket; readonly head: Buffer; upgraded: boolean }
const UPGRADES = new WeakMap<IncomingMessage, UpgradeState>();
const tokensOf = (v: string | string[] | undefined) => String(v ?? '').toLowerCase().split(',').map((t) => t.trim()).filter(Boolean);


/** What the attempts need: the route, where to, the request as it goes upstream, the retry policy and the cluster. */
interface ForwardPlan {
  readonly route: RtRoute;
  readonly host: string;
  readonly port: number;
  readonly method: string;
  readonly path: string;
  readonly head: string;
  readonly body: Buffer | IncomingMessage | undefined;
  readonly bodyLength: number | undefined;
  readonly policy: NonNullable<RtRoute['retries']>;
  /** Retries allowed (0 when the body is streamed). */
  readonly attempts: number;
  readonly cluster: Cluster | undefined;
  readonly hash: number | undefined;
  readonly setCookie: string | undefined;
}

/** What one request did, filled in along the request path: metrics, access log and span read it at the end. */
interface RequestRecord {
  virtual_host: string;
  destination: string;
  /** Envoy's response flags: NR no route, FI/DI fault abort/delay, UT upstream timeout, UF connect failure, UO overflow, URX retries exhausted, DC client gone. */
  flags?: string;
  trace?: TraceContext;
  /** `outbound|<port>|<subset>|<host>`, as Istio names Envoy's clusters. */
  upstreamCluster?: string;
  /** The request as routed (the span's URL and name are made from it only when a span is recorded). */
  target?: Target;
  knownHost?: string;
  requestId?: string;
  /** The upstream attempt in flight and the response being passed on: freed when the client's side closes first. */
  current?: Attempt;
  upstreamRes?: UpstreamResponse;
  /** The route's overall timeout. */
  timer?: NodeJS.Timeout;
  /** Istio's destination labels for this request (unknown until a destination is known). */
  istio?: DestinationLabels;
  /** The request body's size as sent upstream (streamed bodies count as they go). */
  body?: { bytes: number };
  /** The cluster the request went to, and the endpoint of the attempt in flight (their in-flight counts). */
  cluster?: Cluster;
  host?: Host;
  /** A retry of this request is in flight (counted in the cluster's retries). */
  retrying?: boolean;
  /** A WebSocket handshake's upstream request (or, after the 101, its socket): destroyed when the client's side closes. */
  abort?: () => void;
}

/** Istio's request_protocol: grpc by content type, else http (the proxy speaks HTTP/1.1). */
function protocolOf(req: IncomingMessage): string {
  const ct = req.headers['content-type'];
  return ct !== undefined && ct.startsWith('application/grpc') ? 'grpc' : 'http';
}

/** The request line and header block as received (Istio's request size counts headers and body). */
function headBytes(req: IncomingMessage): number {
  const raw = req.rawHeaders;
  let n = (req.method?.length ?? 0) + (req.url?.length ?? 0) + 13; // "M U HTTP/1.1\r\n" and the blank line
  for (let i = 0; i < raw.length; i++) n += raw[i].length + 2; // ": " after a name, "\r\n" after a value
  return n;
}

/** A route destination's metric label and Envoy cluster name, per port. */

/** The response in flight on a downstream socket (for the stream idle timeout). */
const CURRENT = Symbol('mesh-proxy current response');

type ErrorKind = 'connect-failure' | 'reset' | 'per-try-timeout' | 'overflow' | 'self' | 'other';

function classify(err: unknown): ErrorKind {
  const code = (err as { code?: string })?.code ?? '';
  if (err instanceof UpstreamError) {
    return code === 'MESH_PER_TRY_TIMEOUT' ? 'per-try-timeout' : code === 'MESH_OVERFLOW' ? 'overflow' : code === 'MESH_SELF' ? 'self' : 'connect-failure';
  }
  if (['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN', 'EADDRNOTAVAIL'].includes(code)) return 'connect-failure';
  if (['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'HPE_INVALID_CONSTANT', 'HPE_INVALID_STATUS'].includes(code) || code.startsWith('HPE_')) return 'reset';
  return 'other';
}

/** retryOn lists as sets, once per list (the route table's arrays live as long as the table). */
const retryOnCache = new WeakMap<readonly string[], { on: Set<string>; codes: number[] }>();

/** Does Envoy's retryOn list cover this failed attempt? */
export function retriable(retryOn: readonly string[], outcome: { status?: number; error?: ErrorKind }): boolean {
  let c = retryOnCache.get(retryOn);
  if (!c) {
    c = { on: new Set(retryOn), codes: retryOn.filter((x) => /^\d{3}$/.test(x)).map(Number) };
    retryOnCache.set(retryOn, c);
  }
  const { on, codes } = c;
  if (outcome.error) {
    const e = outcome.error;
    if (on.has('5xx')) return e !== 'other';
    if (e === 'connect-failure') return on.has('connect-failure') || on.has('gateway-error');
    if (e === 'reset') return on.has('reset') || on.has('gateway-error');
    if (e === 'per-try-timeout') return on.has('gateway-error') || on.has('reset') || on.has('deadline-exceeded');
    return false;
  }
  const s = outcome.status!;
  if (on.has('5xx') && s >= 500) return true;
  if (on.has('gateway-error') && (s === 502 || s === 503 || s === 504)) return true;
  if (on.has('retriable-4xx') && s === 409) return true;
  if (codes.includes(s)) return true;
  if (on.has('retriable-status-codes') && (codes.length ? codes : DEFAULT_RETRIABLE_CODES).includes(s)) return true;
  return false;
}

const ERROR_BODY: Record<ErrorKind, string> = {
  'connect-failure': 'upstream connect error or disconnect/reset before headers. reset reason: connection failure',
  reset: 'upstream connect error or disconnect/reset before headers. reset reason: connection termination',
  'per-try-timeout': 'upstream request timeout',
  overflow: OVERFLOW_BODY,
  self: "mesh-proxy: refusing to forward to the proxy's own port",
  other: 'upstream request failed',
};

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
// Trace and span ids come from a pooled random buffer: one getrandom call per 512 ids, not two per request.
let pool = Buffer.alloc(0);
let poolAt = 0;
function hex(bytes: number): string {
  if (poolAt + bytes > pool.length) { pool = randomBytes(4096); poolAt = 0; }
  poolAt += bytes;
  return pool.toString('hex', poolAt - bytes, poolAt);
}



function shadowAuthority(authority: string): string {
  const i = authority.lastIndexOf(':');
  return i > 0 && !authority.endsWith(']') ? `${authority.slice(0, i)}-shadow${authority.slice(i)}` : `${authority}-shadow`;
}


/** The rules, the proxy's state and the request handler. */
export class MeshProxy {
  table: CompiledTable;
  draining = false;
  inflight = 0;
  /** performance.now() of the last request received (the drain waits until they stop). */
  lastRequestAt = -Infinity;
  private readonly via: string;
  private readonly random: () => number;
  private readonly unbufferedLogged = new WeakSet<RtRoute>();

  constructor(private readonly opts: ProxyOptions, private readonly upstreams: Upstreams, private readonly metrics: ProxyMetrics, table: CompiledTable) {
    this.table = table;
    // A per-process token: a request that comes back with it has looped.
    this.via = `1.1 mesh-proxy-${hex(4)}`;
    this.random = opts.random ?? Math.random;
    metrics.trackInflight(() => this.inflight);
  }

  /** The names a request host may stand for, per host, for the table in use (bounded: clients choose the hosts). */
  private readonly candidates = new Map<string, string[]>();
  private candidatesTable?: CompiledTable;
  private candidatesOf(host: string, table: CompiledTable): string[] {
    if (this.candidatesTable !== table) { this.candidates.clear(); this.candidatesTable = table; }
    let c = this.candidates.get(host);
    if (!c) {
      if (this.candidates.size >= 4096) this.candidates.clear();
      c = hostCandidates(host, this.opts.namespace, table.table.clusterDomain);
      this.candidates.set(host, c);
    }
    return c;
  }

  /**
   * Whether a tunnel (CONNECT) to `host:port` may open: the Service or ServiceEntry host it is
   * (its metrics and cluster), or why REGISTRY_ONLY refuses it. Same admission as a plain request
   * to a host without rules.
   */
  admit(host: string, port: number): { known?: string; refusal?: string } {
    const table = this.table;
    const { knownHost, otherPortOf } = this.lookupHost(host, port, table);
    if (knownHost) return { known: knownHost };
    if (externalFor(table.externals, host, port)) return {};
    if (this.outboundPolicy !== 'REGISTRY_ONLY') return {};
    return {
      refusal: otherPortOf
        ? `port ${port} is not a port of service ${otherPortOf} (it has ${table.services.get(otherPortOf)!.join(', ')}) and outboundTrafficPolicy is REGISTRY_ONLY`
        : `${host} is not a service of this mesh (nor a ServiceEntry host) and outboundTrafficPolicy is REGISTRY_ONLY`,
    };
  }

  /** The names `host` stands for on `port` (the stages' lookupHost, with this proxy's cache of candidates). */
  private lookupHost(host: string, port: number, table: CompiledTable): HostSelection {
    return lookupHost(host, port, table, (h) => this.candidatesOf(h, table));
  }

  get proxyVia(): string { return this.via; }
  uniform(): number { return this.random(); }
  headerOps(ops: RtHeaderOps | undefined): { drop: ReadonlySet<string>; pairs: readonly string[] } | undefined { return opsPlan(ops); }

  /** The port's protocol as the table declares it (a Service port's name or appProtocol, a ServiceEntry's protocol); HTTP when unsaid. */
  protocolOf(host: string, port: number): string {
    const svc = this.table.table.services.find((s) => s.host === host);
    const i = svc ? svc.ports.indexOf(port) : -1;
    return (i >= 0 && svc?.protocols?.[i]) || 'HTTP';
  }

  /**
   * The route of one gRPC call in a tunnel to `host:port` (the tunnel's host, which the outbound
   * policy admitted): the rules of its virtual host, else the host itself; its destination, port,
   * cluster and Istio labels. Or the proxy's own answer when no rule matches.
   */
  grpcRoute(host: string, port: number, view: RequestView): GrpcRouting {
    const table = this.table;
    const { vh, knownHost } = this.lookupHost(host, port, table);
    let route: RtRoute;
    let picked: CompiledRoute | undefined;
    let uri: RtStringMatch | undefined;
    if (vh) {
      const sel = selectRoute(vh, view);
      if (!sel) return { status: 404, reason: `no route of ${vh.vh.name} matches ${view.method} ${view.path}`, flags: 'NR' };
      picked = sel.route;
      route = sel.route.route;
      uri = sel.uri;
    } else {
      route = { match: [], destinations: [{ host: knownHost ?? host, weight: 1 }] };
    }
    const dest = route.destinations.length ? route.destinations[picked?.picker ? picked.picker.next() : 0] : { host: knownHost ?? host };
    const upstreamPort = destinationPort(dest, port, table.services, vh === undefined && knownHost === undefined);
    if (upstreamPort === undefined) return { status: 503, reason: `destination ${dest.host} has no port and is not a service with a single port (or the request's port)` };
    const labels = vh || knownHost ? this.metrics.istio.destination(dest.host, table.table) : this.metrics.istio.passthrough;
    let cluster: Cluster | undefined;
    if (this.opts.clusters && (vh || knownHost)) {
      this.opts.clusters.setTable(table.table);
      cluster = this.opts.clusters.get(dest.host, upstreamPort);
    }
    return { route, dest, uri, virtualHost: vh?.vh.name ?? knownHost ?? 'PassthroughCluster', labels, port: upstreamPort, ...(cluster ? { cluster } : {}) };
  }

  /** A tunnel was asked for: counts as activity for the drain's quiet period. */
  touch(): void {
    this.lastRequestAt = performance.now();
  }

  /** Istio's destination labels for a tunnel: the known host's, else PassthroughCluster (no client-chosen name as a label). */
  destinationLabels(known: string | undefined): DestinationLabels {
    return known ? this.metrics.istio.destination(known, this.table.table) : this.metrics.istio.passthrough;
  }

  private get outboundPolicy(): OutboundTrafficPolicy {
    return this.opts.outboundTrafficPolicy ?? this.table.table.outboundTrafficPolicy;
  }

  /**
   * The http.Server 'request' listener. `listener` is set in gateway mode. A pipelined
   * request waits for the ones before it on its connection (Envoy's HTTP/1 codec) before
   * anything is set up for it: a waiting request costs only Node's own objects.
   */
  handle(req: IncomingMessage, res: ServerResponse, listener?: GatewayListener): void {
    if (this.opts.downstream) this.opts.downstream.run(req.socket, res, () => this.begin(req, res, listener));
    else this.begin(req, res, listener);
  }

  private begin(req: IncomingMessage, res: ServerResponse, listener?: GatewayListener): void {
    // Monotonic milliseconds with microsecond resolution; with timeOrigin also the span's wall-clock
    // start in microseconds (Date.now() has only milliseconds, which misorders nested spans).
    const started = performance.now();
    this.lastRequestAt = started;
    this.inflight++;
    const labels: RequestRecord = { virtual_host: 'none', destination: 'none' };
    const socket = req.socket as Socket & { [CURRENT]?: ServerResponse };
    // Pipelined requests are answered one at a time (Downstream), so the socket's bytes since now are this response's.
    const written = socket.bytesWritten;
    // One listener for the end of the exchange ('close' comes once): free the upstream side,
    // then count, trace and log.
    res.on('close', () => {
      this.inflight--;
      if (labels.cluster) { labels.cluster.active--; if (labels.retrying) labels.cluster.retries--; }
      if (labels.host) labels.host.active--;
      if (socket[CURRENT] === res) socket[CURRENT] = undefined;
      if (labels.timer) clearTimeout(labels.timer);
      // The client went away, or the proxy answered by itself (408, 504): free the upstream
      // request unless its whole response was passed on.
      if (!labels.upstreamRes?.complete) { labels.current?.destroy(); labels.upstreamRes?.destroy(); }
      labels.abort?.();
      const upgraded = UPGRADES.get(req)?.upgraded === true;
      const code = res.headersSent || upgraded ? String(res.statusCode) : '0';
      const seconds = (performance.now() - started) / 1e3;
      this.metrics.record(labels.virtual_host, labels.destination, code, seconds);
      // The client left before the whole response was written: Envoy's DC.
      if (!res.writableFinished && !upgraded) labels.flags ??= 'DC';
      this.metrics.istio.record(labels.istio ?? this.metrics.istio.unknown, code, labels.flags ?? '-', protocolOf(req),
        seconds * 1e3, headBytes(req) + (labels.body?.bytes ?? 0), socket.bytesWritten - written);
      if (labels.trace?.sampled && this.opts.tracer) {
        this.opts.tracer.record({
          ctx: labels.trace, kind: listener ? 'SERVER' : 'CLIENT', name: labels.target ? `${labels.knownHost ?? labels.target.host}:${labels.target.port}/*` : `${labels.virtual_host}/*`,
          startUs: Math.round((performance.timeOrigin + started) * 1e3), durationUs: Math.round(seconds * 1e6),
          tags: {
            'http.method': req.method ?? 'GET', 'http.url': labels.target ? `${listener?.protocol === 'HTTPS' ? 'https' : 'http'}://${labels.target.authority}${labels.target.path}` : String(req.url), 'http.protocol': `HTTP/${req.httpVersion}`,
            'http.status_code': code, response_flags: labels.flags ?? '-', upstream_cluster: labels.upstreamCluster ?? labels.destination,
            'guid:x-request-id': labels.requestId ?? '', user_agent: String(req.headers['user-agent'] ?? '-'),
            'peer.address': req.socket.remoteAddress ?? '', ...(Number(code) >= 500 || code === '0' ? { error: 'true' } : {}),
          },
          ...(labels.destination.includes(':') ? { remote: { serviceName: labels.destination.slice(0, labels.destination.lastIndexOf(':')), port: Number(labels.destination.slice(labels.destination.lastIndexOf(':') + 1)) } } : {}),
        });
      }
      if (this.opts.accessLog) {
        process.stdout.write(`${JSON.stringify({
          time: new Date().toISOString(), method: req.method, url: req.url, host: req.headers.host, code: Number(code),
          virtualHost: labels.virtual_host, destination: labels.destination, ms: Math.round(seconds * 1e6) / 1e3,
          requestId: labels.requestId ?? req.headers['x-request-id'], complete: res.writableFinished,
        })}\n`);
      }
    });
    if (this.draining) res.shouldKeepAlive = false;
    if ((req.socket as unknown as Record<symbol, boolean>)[OVERLOADED]) {
      this.metrics.overflows.inc({ limit: 'downstream_connections' });
      res.shouldKeepAlive = false;
      return this.reply(res, 503, 'mesh-proxy: overloaded: too many downstream connections', { 'x-envoy-overloaded': 'true', connection: 'close' });
    }
    const problem = requestProblem(req, this.opts.maxHeadersCount);
    if (problem) {
      this.metrics.clientErrors.inc({ code: String(problem[0]) });
      res.shouldKeepAlive = false;
      return this.reply(res, problem[0], `mesh-proxy: ${problem[1]}`, { connection: 'close' });
    }
    // The request being served on this connection (for the stream idle timeout).
    socket[CURRENT] = res;
    this.serve(req, res, labels, listener).catch((err) => {
      this.log('error', 'request failed', { error: String(err), url: req.url });
      if (!res.headersSent) this.reply(res, 500, 'internal proxy error');
      else cutOff(res);
    });
  }

  /**
   * Envoy's stream_idle_timeout: the server's socket timeout (set once per connection, see
   * main.ts; reads and writes restart it) fired: nothing from the client and nothing to it
   * for that long. A request in flight gets a 408 (or is cut off if its response started);
   * an idle connection is closed.
   */
  streamIdle(socket: Socket): void {
    const res = (socket as Socket & { [CURRENT]?: ServerResponse })[CURRENT];
    if (!res) { socket.destroy(); return; }
    this.metrics.clientErrors.inc({ code: '408' });
    if (res.headersSent) { socket.destroy(); return; }
    res.shouldKeepAlive = false;
    res.once('finish', () => socket.destroy());
    this.reply(res, 408, 'mesh-proxy: stream idle timeout', { connection: 'close' });
  }

  private reply(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
    if (res.headersSent || res.destroyed) return;
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) + 1, via: this.via, ...headers });
    res.end(`${body}\n`);
  }

  private chance(percentage: number): boolean {
    return percentage >= 100 || (percentage > 0 && this.random() * 100 < percentage);
  }

  /** Send a stage's own answer (LocalReply): its flag on the record, BlackHoleCluster for a REGISTRY_ONLY refusal. */
  private answer(res: ServerResponse, labels: RequestRecord, r: LocalReply): void {
    if (r.flags) labels.flags = r.flags;
    if (r.blackhole) { labels.destination = 'BlackHoleCluster'; labels.istio = this.metrics.istio.blackhole; }
    this.reply(res, r.status, r.body, r.headers as Record<string, string> | undefined);
  }

  /** The request path: the stages of stages.ts in order, then the body, the mirror and the attempts. */
  private async serve(req: IncomingMessage, res: ServerResponse, labels: RequestRecord, listener?: GatewayListener): Promise<void> {
    if (res.destroyed) return;
    const t = requestTarget(req.url ?? '/', req.headers.host, listener, this.opts.pathNormalization);
    if ('reply' in t) return this.answer(res, labels, t.reply);
    const { target, bound } = t;
    const server = bound?.server;
    const via = req.headers.via;
    const loop = loopGuard(via, this.via);
    if (loop) return this.answer(res, labels, loop.reply);
    const table = this.table;
    // The trace context first: a request the proxy answers itself (404, fault, 504) is traced too.
    labels.trace = this.opts.tracer ? this.opts.tracer.context(req.headers, hex) : traceContext(req.headers, hex);
    // An edge request gets a fresh id (Envoy regenerates x-request-id for external requests).
    const rid = req.headers['x-request-id'];
    labels.requestId = (!server || this.opts.preserveExternalRequestId) && typeof rid === 'string' && rid ? rid : randomUUID();
    labels.target = target;

    const sel = selectHost(target, bound, table, (h) => this.candidatesOf(h, table), this.opts.ownEndpoints);
    if ('reply' in sel) return this.answer(res, labels, sel.reply);
    // Envoy names a span after the service it resolved the request to, not the name as written.
    labels.knownHost = sel.knownHost;
    if (sel.vh) labels.virtual_host = sel.vh.vh.name;
    const view: RequestView = { method: req.method ?? 'GET', path: target.path, headers: req.headers, port: target.port };
    const choice = matchRoute(sel, view, target, table, this.outboundPolicy);
    if ('reply' in choice) return this.answer(res, labels, choice.reply);
    labels.virtual_host = choice.virtualHost;
    const route = choice.route;
    const dest = pickDestination(choice);
    if (dest) labels.istio = sel.vh || sel.knownHost ? this.metrics.istio.destination(dest.host, table.table) : this.metrics.istio.passthrough;

    const delayMs = faultDelay(route, (p) => this.chance(p));
    if (delayMs !== undefined) {
      this.metrics.faults.inc({ kind: 'delay' });
      labels.flags = 'DI';
      await sleep(delayMs);
      if (res.destroyed) return;
    }
    const abort = faultAbort(route, (p) => this.chance(p));
    if (abort) {
      this.metrics.faults.inc({ kind: 'abort' });
      return this.answer(res, labels, abort.reply);
    }
    const redirect = redirectReply(route.redirect, server, target);
    if (redirect) return this.answer(res, labels, redirect.reply);

    const up = upstreamOf(dest, target, table, sel);
    if ('reply' in up) return this.answer(res, labels, up.reply);
    const upstreamPort = up.port;
    labels.destination = up.destination;
    labels.upstreamCluster = up.cluster;

    // The Service's cluster: its endpoints, balancer, outlier detection and circuit breakers.
    const clusters = this.opts.clusters;
    let cluster: Cluster | undefined;
    let hash: number | undefined;
    let setCookie: string | undefined;
    if (clusters && (sel.vh || sel.knownHost)) {
      clusters.setTable(table.table);
      cluster = clusters.get(up.host, upstreamPort);
    }
    if (cluster) {
      const full = admitToCluster(cluster);
      if (full) {
        this.metrics.overflows.inc({ limit: 'upstream_requests' });
        return this.answer(res, labels, full.reply);
      }
      cluster.active++;
      labels.cluster = cluster;
      if (cluster.policy.consistentHash) ({ hash, setCookie } = cluster.hashOf({ headers: req.headers, path: target.path, remoteAddress: req.socket.remoteAddress }));
    }

    const { lines, authority } = upstreamHead({
      rawHeaders: req.rawHeaders, connection: req.headers.connection, via, ownVia: this.via, requestId: labels.requestId, trace: labels.trace,
      edge: server ? { remoteAddress: req.socket.remoteAddress ?? '', forwardedFor: req.headers['x-forwarded-for'], https: server.protocol === 'HTTPS' } : undefined,
      ops: route.headers?.request, authority: target.authority, rewriteAuthority: route.rewrite?.authority,
    });
    const path = route.rewrite?.uri ? rewritePath(target.path, choice.uriMatch, route.rewrite.uri) : target.path;

    const policy = route.retries ?? DEFAULT_RETRIES;
    let attempts = policy.attempts;
    const bp = bodyPlan(req.headers, attempts > 0 || route.mirror !== undefined, this.opts.maxBufferBytes);
    let body: Buffer | IncomingMessage | undefined;
    if (bp.mode === 'buffer') {
      body = await readBody(req, bp.length!);
      if (res.destroyed) return;
    } else if (bp.mode === 'stream') {
      body = req;
      attempts = 0;
      if (bp.unbuffered) {
        // Too large (or of unknown length) to keep: one try, no mirror. Counted, and said once per route.
        this.metrics.unbuffered.inc({ virtual_host: labels.virtual_host });
        if (!this.unbufferedLogged.has(route)) {
          this.unbufferedLogged.add(route);
          this.log('warn', 'request body not buffered: sent once, without retries or mirror', {
            virtualHost: labels.virtual_host, route: route.name, contentLength: bp.length ?? 'chunked', maxBufferBytes: this.opts.maxBufferBytes,
          });
        }
      }
    }

    // The body's framing is the proxy's own: Content-Length from what was read (or the
    // client's validated length while streaming), chunked when the length is unknown.
    const bodyLength = Buffer.isBuffer(body) ? body.length : bp.length;
    if (body !== undefined) labels.body = { bytes: bodyLength ?? 0 };
    if (route.mirror && !UPGRADES.has(req) && this.chance(route.mirror.percentage)) this.mirror(route, target, view.method, path, authority, lines, body, bodyLength);
    const head = `host: ${authority}\r\n${lines}`;

    // Attempts, under the route's overall timeout.
    return this.forward(req, res, labels, {
      route, host: up.host, port: upstreamPort, method: view.method, path, head, body, bodyLength, policy, attempts, cluster, hash, setCookie,
    });
  }

  /**
   * The attempts: the route's overall timeout over them, per-try timeouts, another endpoint
   * for each retry (Istio's previous_hosts), Envoy's retryOn and backoff, the retry budget of
   * the cluster; then the response passed on (or the upgrade's tunnel).
   */
  private async forward(req: IncomingMessage, res: ServerResponse, labels: RequestRecord, f: ForwardPlan): Promise<void> {
    const { route, policy, attempts, cluster, hash, path, head, body, bodyLength } = f;
    const upstreamPort = f.port;
    let timedOut = false;
    if (route.timeoutMs !== undefined) {
      labels.timer = setTimeout(() => {
        timedOut = true;
        labels.flags = 'UT';
        labels.current?.destroy();
        labels.abort?.();
        if (!res.headersSent) this.reply(res, 504, 'upstream request timeout');
        else cutOff(res);
      }, route.timeoutMs);
    }
    const deadline = route.timeoutMs === undefined ? undefined : Date.now() + route.timeoutMs;
    const responseOps = route.headers?.response;
    const upgrade = UPGRADES.get(req);
    if (upgrade) return this.upgradeUpstream(req, res, upgrade, labels, { host: f.host, port: upstreamPort, path, head, responseOps, cluster, hash });

    // Hosts earlier attempts failed on: a retry goes to another (Istio's previous_hosts predicate).
    let tried: Set<Host> | undefined;
    const ended = (host: Host | undefined) => {
      if (labels.retrying) { cluster!.retries--; labels.retrying = false; }
      if (host && labels.host === host) { host.active--; labels.host = undefined; }
    };
    for (let attempt = 0; ; attempt++) {
      const left = deadline === undefined ? undefined : Math.max(1, deadline - Date.now());
      const perTry = policy.perTryTimeoutMs === undefined ? left : Math.min(policy.perTryTimeoutMs, left ?? Infinity);
      // Envoy's max_retries: retries in flight to the cluster, all requests together.
      const mayRetry = attempt < attempts && (!cluster || cluster.retries < cluster.maxRetries);
      let host: Host | undefined;
      if (cluster) {
        const picked = cluster.pick(hash, tried);
        if (picked === NO_HEALTHY_UPSTREAM) {
          ended(undefined);
          labels.flags = 'UH';
          return this.reply(res, 503, 'no healthy upstream');
        }
        host = picked;
        if (host) { host.active++; labels.host = host; }
      }
      let reason: string;
      try {
        const up = await this.upstreams.send(
          {
            host: f.host, port: upstreamPort, method: f.method, path, head, body, bodyLength, headersTimeoutMs: perTry, counter: bodyLength === undefined ? labels.body : undefined,
            endpoint: host?.endpoint, pool: cluster?.pool,
          },
          labels,
        );
        if (timedOut || res.destroyed) { up.destroy(); return; }
        const status = up.statusCode;
        if (host) cluster!.record(host, status, false);
        if (mayRetry && retriable(policy.retryOn, { status })) {
          up.discard(); // read and dropped, so the connection can be reused
          ended(host);
          if (host) (tried ??= new Set()).add(host);
          reason = String(status);
        } else {
          if (labels.retrying) { cluster!.retries--; labels.retrying = false; }
          // Retries spent on a retriable answer: Envoy passes the last one on, flagged URX.
          if (attempt > 0 && retriable(policy.retryOn, { status })) labels.flags = 'URX';
          labels.upstreamRes = up;
          const headers = responseHeaders(up.rawHeaders, this.via, responseOps, this.draining);
          if (f.setCookie) headers.push('set-cookie', f.setCookie);
          res.writeHead(status, headers);
          // The body streams through; an upstream that dies mid-body cuts the client off too.
          up.pipe(res);
          return;
        }
      } catch (err) {
        if (timedOut || res.destroyed) return;
        if (res.headersSent) { cutOff(res); return; }
        const kind = classify(err);
        // A failure of the endpoint itself counts toward its ejection (Envoy counts local-origin failures as 5xx).
        if (host && (kind === 'connect-failure' || kind === 'reset' || kind === 'per-try-timeout')) cluster!.record(host, 0, true);
        ended(host);
        if (host) (tried ??= new Set()).add(host);
        if (kind !== 'self') this.metrics.upstreamFailures.inc({ kind });
        // Every resend is the retry policy's decision, as in Envoy: a reset on a reused
        // keep-alive connection may have reached the upstream, so it is resent only when
        // retryOn allows `reset` (Istio's default policy does not).
        if (kind === 'self') return this.reply(res, 508, ERROR_BODY[kind]);
        labels.flags = kind === 'overflow' ? 'UO' : kind === 'per-try-timeout' ? 'UT' : kind === 'connect-failure' ? 'UF' : kind === 'reset' ? 'UC' : undefined;
        if (kind === 'overflow') {
          this.metrics.overflows.inc({ limit: 'upstream_pending' });
          return this.reply(res, 503, ERROR_BODY[kind], { 'x-envoy-overloaded': 'true' });
        }
        if (!(mayRetry && retriable(policy.retryOn, { error: kind }))) {
          if (attempt > 0 && retriable(policy.retryOn, { error: kind })) labels.flags = labels.flags ? `${labels.flags},URX` : 'URX';
          return this.reply(res, kind === 'per-try-timeout' ? 504 : 503, ERROR_BODY[kind]);
        }
        reason = kind;
      }
      this.metrics.retries.inc({ reason });
      // Envoy's backoff: 25ms base, doubling, jittered, at most 250ms.
      await sleep(Math.min(250, 25 * 2 ** attempt) * (0.5 + this.random() / 2));
      if (res.destroyed || timedOut) return;
      if (cluster) { cluster.retries++; labels.retrying = true; }
    }
  }

  /**
   * The http.Server 'upgrade' listener. A WebSocket handshake (GET, Connection: upgrade,
   * Upgrade: websocket) is routed by the rules like any request (Istio allows WebSocket
   * upgrades by default) and, once the upstream answers 101, tunnelled both ways; another
   * upgrade is refused with 403, as Envoy refuses upgrades it is not configured for.
   */
  upgrade(req: IncomingMessage, socket: Socket, head: Buffer, listener?: GatewayListener): void {
    // The socket is ours now, without Node's error handling: a reset must not crash the process.
    socket.on('error', () => socket.destroy());
    const res = new ServerResponse(req);
    res.assignSocket(socket);
    res.shouldKeepAlive = false;
    const state: UpgradeState = { socket, head, upgraded: false };
    // A reply of the proxy's own (404, 403, 503, a fault) ends the connection once written.
    res.once('finish', () => { if (!state.upgraded) socket.end(); });
    const protocols = tokensOf(req.headers.upgrade);
    // After an upgrade the bytes behind the head belong to the new protocol: a declared body makes them ambiguous.
    if (req.headers['transfer-encoding'] !== undefined || (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0')) {
      this.metrics.upgrades.inc({ result: 'refused' });
      this.metrics.clientErrors.inc({ code: '400' });
      return this.reply(res, 400, 'mesh-proxy: an upgrade request with a body (the bytes after its head would be read as the new protocol)', { connection: 'close' });
    }
    // h2c: the upgrade is dropped and the request served as HTTP/1.1 (Envoy strips h2c upgrades too).
    if (protocols.length === 1 && protocols[0] === 'h2c') {
      this.metrics.upgrades.inc({ result: 'h2c_stripped' });
      return this.handle(req, res, listener);
    }
    if (req.method !== 'GET' || protocols.length !== 1 || protocols[0] !== 'websocket' || !tokensOf(req.headers.connection).includes('upgrade')) {
      this.metrics.upgrades.inc({ result: 'refused' });
      this.metrics.clientErrors.inc({ code: '403' });
      return this.reply(res, 403, `mesh-proxy: upgrade to ${JSON.stringify(String(req.headers.upgrade ?? '').slice(0, 64))} by ${String(req.method).slice(0, 16)} is not carried (WebSocket only: GET with Connection: upgrade and Upgrade: websocket)`, { connection: 'close' });
    }
    UPGRADES.set(req, state);
    this.handle(req, res, listener);
  }

  /** The upstream half of a WebSocket handshake: one attempt (no body to resend), then a tunnel on 101. */
  private upgradeUpstream(
    req: IncomingMessage, res: ServerResponse, state: UpgradeState, labels: RequestRecord,
    to: { host: string; port: number; path: string; head: string; responseOps: RtHeaderOps | undefined; cluster: Cluster | undefined; hash: number | undefined },
  ): void {
    let host: Host | undefined;
    if (to.cluster) {
      const picked = to.cluster.pick(to.hash, undefined);
      if (picked === NO_HEALTHY_UPSTREAM) { labels.flags = 'UH'; return this.reply(res, 503, 'no healthy upstream'); }
      host = picked;
      if (host) { host.active++; labels.host = host; }
    }
    const target = this.upstreams.target(to.host, to.port, host?.endpoint);
    if (this.upstreams.isOwnPort(target.port) && isOwnAddress(target.host)) { this.metrics.upgrades.inc({ result: 'refused' }); return this.reply(res, 508, ERROR_BODY.self); }
    // The request head as for any request (the proxy's own lines), then the upgrade's hop-by-hop pair.
    const headers: string[] = [];
    for (const line of to.head.split('\r\n')) {
      const i = line.indexOf(': ');
      if (i > 0) headers.push(line.slice(0, i), line.slice(i + 2));
    }
    headers.push('connection', 'upgrade', 'upgrade', 'websocket');
    const up = http.request({
      host: target.host, port: target.port, method: 'GET', path: to.path, headers, agent: false, setHost: false,
      lookup: this.upstreams.lookupFor(target.port), maxHeaderSize: this.upstreams.maxHeaderBytes,
    });
    labels.abort = () => up.destroy();
    const idleMs = this.opts.upgradeIdleTimeoutMs ?? 3_600_000;
    up.on('upgrade', (ures: IncomingMessage, usock: Socket, uhead: Buffer) => {
      usock.on('error', () => { usock.destroy(); state.socket.destroy(); });
      if (res.destroyed || state.socket.destroyed) { usock.destroy(); return; }
      if (labels.timer) { clearTimeout(labels.timer); labels.timer = undefined; }
      if (host) to.cluster!.record(host, 101, false);
      state.upgraded = true;
      res.statusCode = 101;
      this.metrics.upgrades.inc({ result: 'tunnelled' });
      // The upstream's head minus hop-by-hop headers, with Via and the route's operations, and the upgrade pair again.
      const out = responseHeaders(ures.rawHeaders, this.via, to.responseOps, false);
      let text = `HTTP/1.1 101 Switching Protocols\r\n`;
      for (let i = 0; i < out.length; i += 2) text += `${out[i]}: ${out[i + 1]}\r\n`;
      text += `connection: upgrade\r\nupgrade: ${String(ures.headers.upgrade ?? 'websocket')}\r\n\r\n`;
      const client = state.socket;
      client.write(text);
      if (uhead.length) client.write(uhead);
      if (state.head.length) usock.write(state.head);
      labels.abort = () => usock.destroy();
      // Idle: nothing either way for idleMs (writes to the client count as activity on its socket).
      client.setTimeout(idleMs, () => { labels.flags = 'SI'; client.destroy(); usock.destroy(); });
      client.pipe(usock);
      usock.pipe(client);
      usock.once('close', () => { client.end(); setTimeout(() => client.destroy(), 1000).unref(); });
    });
    up.on('response', (ures: IncomingMessage) => {
      // Declined (a 4xx, or a server that does not speak WebSocket): passed on as a response, then the connection ends.
      if (host) to.cluster!.record(host, ures.statusCode ?? 0, false);
      this.metrics.upgrades.inc({ result: 'declined' });
      if (res.destroyed) { ures.destroy(); return; }
      if (labels.timer) { clearTimeout(labels.timer); labels.timer = undefined; }
      res.writeHead(ures.statusCode ?? 502, responseHeaders(ures.rawHeaders, this.via, to.responseOps, true));
      ures.pipe(res);
    });
    up.on('error', (err: NodeJS.ErrnoException) => {
      if (res.destroyed || state.upgraded) return;
      if (res.headersSent) { cutOff(res); return; }
      const kind = (err as { code?: string }).code === 'MESH_SELF' ? 'self' : classify(err);
      if (host && kind !== 'self') to.cluster!.record(host, 0, true);
      this.metrics.upstreamFailures.inc({ kind });
      labels.flags = kind === 'connect-failure' ? 'UF' : kind === 'reset' ? 'UC' : labels.flags;
      this.reply(res, kind === 'self' ? 508 : 503, ERROR_BODY[kind === 'per-try-timeout' || kind === 'overflow' ? 'other' : kind]);
    });
    up.end();
  }

  /** Fire and forget: a copy to the mirror, never awaited, never delaying the response. */
  private mirror(route: RtRoute, target: Target, method: string, path: string, authority: string, lines: string, body: Buffer | IncomingMessage | undefined, length: number | undefined): void {
    const m = route.mirror!;
    if (body !== undefined && !Buffer.isBuffer(body)) {
      this.metrics.mirrors.inc({ result: 'skipped' });
      return;
    }
    // Istio's mirror gets the host with `-shadow` appended.
    const head = `host: ${shadowAuthority(authority)}\r\n${lines}`;
    const port = destinationPort(m, target.port, this.table.services, false);
    if (port === undefined) { this.metrics.mirrors.inc({ result: 'failed' }); return; }
    this.upstreams.send({ host: m.host, port, method, path, head, body, bodyLength: length, headersTimeoutMs: route.timeoutMs ?? 10_000 })
      .then((r) => { this.metrics.mirrors.inc({ result: 'sent' }); r.discard(); })
      .catch(() => this.metrics.mirrors.inc({ result: 'failed' }));
  }

  log(level: 'info' | 'warn' | 'error', msg: string, extra: Record<string, unknown> = {}): void {
    process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...extra })}\n`);
  }
}

async function readBody(req: IncomingMessage, length: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  for await (const c of req) {
    chunks.push(c as Buffer);
    got += (c as Buffer).length;
    if (got > length) break;
  }
  return Buffer.concat(chunks, got);
}
