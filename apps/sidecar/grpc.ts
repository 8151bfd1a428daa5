// gRPC through the node sidecar: a gRPC client that uses the proxy opens a CONNECT tunnel
// (gRPC libraries honour HTTPS_PROXY / HTTP_PROXY / grpc_proxy that way). When the tunnel's
// destination port is declared HTTP/2 or gRPC (its name, appProtocol or a ServiceEntry's
// protocol), the proxy does not pass the bytes through: it serves HTTP/2 in cleartext inside
// the tunnel and routes each request (each RPC) by the rules of the tunnel's host, as Envoy
// routes gRPC: matches on :path and headers, weights, timeouts, retries with the gRPC retryOn
// conditions, header operations, faults answered with a gRPC status. Upstream: HTTP/2
// cleartext (h2c), one session per endpoint. The host is the tunnel's (what the outbound
// policy admitted), never a client's :authority.
import * as http2 from 'node:http2';
import * as net from 'node:net';
import type { Socket } from 'node:net';
import { randomUUID } from 'node:crypto';
import type { RtHeaderOps, RtRoute, RtStringMatch } from '../../model/route-table';
import type { Cluster, Host } from './clusters';
import { NO_HEALTHY_UPSTREAM } from './clusters';
import type { DestinationLabels } from './istio-metrics';
import type { ProxyMetrics } from './metrics';
import type { RequestView } from './table';
import { DEFAULT_RETRIES, rewritePath } from './proxy';
import { isOwnAddress, Upstreams } from './upstream';

/** The route for one RPC, or the proxy's own answer (an HTTP status, mapped to a gRPC status). */
export type GrpcRouting =
  | { readonly route: RtRoute; readonly dest: { readonly host: string; readonly port?: number }; readonly uri?: RtStringMatch; readonly virtualHost: string; readonly labels: DestinationLabels; readonly port: number; readonly cluster?: Cluster }
  | { readonly status: number; readonly reason: string; readonly flags?: string };

/** What the gRPC side needs from the proxy. */
export interface GrpcHost {
  grpcRoute(host: string, port: number, view: RequestView): GrpcRouting;
  /** The route's header operations as [name, value] pairs and the names they replace or remove. */
  headerOps(ops: RtHeaderOps | undefined): { drop: ReadonlySet<string>; pairs: readonly string[] } | undefined;
  /** The proxy's Via value (loop detection). */
  readonly proxyVia: string;
  /** A uniform number in [0, 1) (the proxy's random source: faults, backoff jitter). */
  uniform(): number;
  log(level: 'info' | 'warn' | 'error', msg: string, extra?: Record<string, unknown>): void;
}

/** Envoy's (and gRPC's) mapping of an HTTP status the proxy answers with to a gRPC status. */
export function httpToGrpcStatus(status: number): number {
  switch (status) {
    case 400: return 13; // INTERNAL
    case 401: return 16; // UNAUTHENTICATED
    case 403: return 7; // PERMISSION_DENIED
    case 404: return 12; // UNIMPLEMENTED
    case 429: case 502: case 503: case 504: return 14; // UNAVAILABLE
    default: return 2; // UNKNOWN
  }
}

/** Envoy's gRPC retryOn conditions and the statuses they name. */
const GRPC_RETRY_ON: Readonly<Record<string, number>> = { cancelled: 1, 'deadline-exceeded': 4, 'resource-exhausted': 8, internal: 13, unavailable: 14 };

/** Whether a gRPC status (from response headers: a trailers-only answer) is one `retryOn` covers. */
export function grpcRetriable(retryOn: readonly string[], grpcStatus: number): boolean {
  return retryOn.some((c) => GRPC_RETRY_ON[c] === grpcStatus);
}

// Hop-by-hop and the proxy's own: never forwarded from the client (HTTP/2 forbids the first kind anyway).
const DROP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host', 'via', 'x-request-id']);
const TARGET = Symbol('mesh-proxy grpc tunnel target');

interface TunnelTarget { readonly host: string; readonly port: number }

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The HTTP/2 side of the proxy: one server for every gRPC tunnel, one client session per upstream endpoint. */
export class GrpcTunnels {
  private readonly server: http2.Http2Server;
  private readonly sessions = new Map<string, http2.ClientHttp2Session>();
  private pending?: TunnelTarget;

  constructor(private readonly host: GrpcHost, private readonly metrics: ProxyMetrics, private readonly upstreams: Upstreams, private readonly opts: { maxBufferBytes: number; accessLog: boolean }) {
    this.server = http2.createServer({ maxSessionMemory: 16 });
    this.server.on('session', (session: http2.ServerHttp2Session) => {
      (session as unknown as Record<symbol, TunnelTarget | undefined>)[TARGET] = this.pending;
      session.on('error', () => session.destroy());
    });
    this.server.on('stream', (stream, headers) => {
      const target = (stream.session as unknown as Record<symbol, TunnelTarget | undefined> | undefined)?.[TARGET];
      if (!target) { stream.close(http2.constants.NGHTTP2_REFUSED_STREAM); return; }
      this.rpc(stream, headers, target).catch((err) => {
        this.host.log('error', 'gRPC request failed', { error: String(err) });
        localReply(stream, 500, 'internal proxy error');
      });
    });
  }

  /** Serve HTTP/2 on a tunnel's client socket (the 200 to the CONNECT is already written). */
  serve(socket: Socket, head: Buffer, target: TunnelTarget): void {
    if (head.length) socket.unshift(head);
    this.pending = target;
    try { this.server.emit('connection', socket); } finally { this.pending = undefined; }
  }

  private session(address: string, port: number): http2.ClientHttp2Session {
    const key = `${address}:${port}`;
    let s = this.sessions.get(key);
    if (s && !s.closed && !s.destroyed) return s;
    const lookup = this.upstreams.lookupFor(port);
    s = http2.connect(`http://${address.includes(':') ? `[${address}]` : address}:${port}`, {
      createConnection: () => net.connect({ host: address, port, ...(lookup ? { lookup: lookup as unknown as net.LookupFunction } : {}) }),
    });
    const made = s;
    made.on('error', () => { if (this.sessions.get(key) === made) this.sessions.delete(key); });
    made.on('close', () => { if (this.sessions.get(key) === made) this.sessions.delete(key); });
    // Idle sessions do not keep the process alive.
    made.unref();
    this.sessions.set(key, made);
    return made;
  }

  private async rpc(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, target: TunnelTarget): Promise<void> {
    const started = performance.now();
    const method = String(headers[':method'] ?? 'POST');
    const path = String(headers[':path'] ?? '/');
    const plain: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(headers)) if (!k.startsWith(':') && v !== undefined) plain[k] = v as string | string[];
    const view: RequestView = { method, path, headers: plain, port: target.port };
    const routing = this.host.grpcRoute(target.host, target.port, view);
    let flags = '-';
    let grpcStatus = '';
    let labels: DestinationLabels | undefined;
    let requestBytes = 0;
    let code = '200';
    // The gRPC status and bytes of the upstream's answer, as they arrive (trailers come last).
    const rec = { grpcStatus: '', bytes: 0 };
    stream.on('close', () => {
      grpcStatus ||= rec.grpcStatus;
      if (labels) this.metrics.istio.record(labels, code, flags, 'grpc', performance.now() - started, requestBytes, rec.bytes, grpcStatus);
      if (this.opts.accessLog) {
        process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), method, path, authority: `${target.host}:${target.port}`, protocol: 'HTTP/2', code: Number(code), grpcStatus, flags, ms: Math.round((performance.now() - started) * 1e3) / 1e3 })}\n`);
      }
    });
    const answer = (status: number, reason: string) => { grpcStatus = String(httpToGrpcStatus(status)); localReply(stream, status, reason); };
    if ('status' in routing) { if (routing.flags) flags = routing.flags; return answer(routing.status, routing.reason); }
    const { route, dest } = routing;
    labels = routing.labels;
    if (route.fault?.delay && chance(route.fault.delay.percentage, this.host)) {
      flags = 'DI';
      await sleep(route.fault.delay.fixedDelayMs);
      if (stream.destroyed) return;
    }
    if (route.fault?.abort && chance(route.fault.abort.percentage, this.host)) { flags = 'FI'; return answer(route.fault.abort.httpStatus, 'fault filter abort'); }
    if (route.redirect) return answer(404, 'a redirect route does not apply to gRPC');

    // The request head for the upstream: the client's headers minus hop-by-hop and the proxy's own, then the route's operations.
    const ops = this.host.headerOps(route.headers?.request);
    const out: http2.OutgoingHttpHeaders = {
      ':method': method, ':scheme': 'http', ':path': route.rewrite?.uri ? rewritePath(path, routing.uri, route.rewrite.uri) : path,
      ':authority': route.rewrite?.authority ?? `${target.host}:${target.port}`,
    };
    for (const [k, v] of Object.entries(plain)) if (!DROP.has(k) && !ops?.drop.has(k)) out[k] = v;
    out['x-request-id'] = typeof plain['x-request-id'] === 'string' ? plain['x-request-id'] : randomUUID();
    out.via = this.host.proxyVia;
    if (ops) for (let i = 0; i < ops.pairs.length; i += 2) out[ops.pairs[i].toLowerCase() === 'host' ? ':authority' : ops.pairs[i]] = ops.pairs[i + 1];
    const responseOps = this.host.headerOps(route.headers?.response);

    // The body streams through as it comes; up to maxBufferBytes is also kept, so that a retry can resend it.
    const chunks: Buffer[] = [];
    let kept = 0;
    let ended = false;
    let overflow = false;
    let current: http2.ClientHttp2Stream | undefined;
    stream.on('data', (c: Buffer) => {
      requestBytes += c.length;
      if (!overflow) { kept += c.length; if (kept <= this.opts.maxBufferBytes) chunks.push(c); else { overflow = true; chunks.length = 0; } }
      current?.write(c);
    });
    stream.on('end', () => { ended = true; current?.end(); });
    // The client gone (cancelled, its deadline passed): the upstream stream is cancelled too.
    stream.on('close', () => { if (current && !current.closed) current.close(http2.constants.NGHTTP2_CANCEL); });

    let timedOut = false;
    const timer = route.timeoutMs === undefined ? undefined : setTimeout(() => {
      timedOut = true;
      flags = 'UT';
      if (current && !current.closed) current.close(http2.constants.NGHTTP2_CANCEL);
      if (!stream.headersSent) answer(504, 'upstream request timeout');
      else stream.close(http2.constants.NGHTTP2_CANCEL);
    }, route.timeoutMs);
    stream.once('close', () => { if (timer) clearTimeout(timer); });

    const policy = route.retries ?? DEFAULT_RETRIES;
    const cluster = routing.cluster;
    let tried: Set<Host> | undefined;
    for (let attempt = 0; ; attempt++) {
      if (stream.destroyed || timedOut) return;
      // Retries need the whole request kept (a unary call's; a long stream is sent once).
      const mayRetry = attempt < policy.attempts && !overflow;
      let host: Host | undefined;
      if (cluster) {
        const picked = cluster.pick(undefined, tried);
        if (picked === NO_HEALTHY_UPSTREAM) { flags = 'UH'; return answer(503, 'no healthy upstream'); }
        host = picked;
      }
      const t = this.upstreams.target(dest.host, routing.port, host?.endpoint);
      if (this.upstreams.isOwnPort(t.port) && isOwnAddress(t.host)) return answer(403, "refusing to forward to the proxy's own port");
      const outcome = await this.attempt(stream, out, t, chunks, () => ended, (x) => { current = x; }, responseOps, rec);
      if (stream.destroyed || timedOut) { if (outcome.kind === 'held') outcome.discard(); return; }
      if (host) cluster!.record(host, outcome.kind === 'error' ? 0 : outcome.status, outcome.kind === 'error');
      if (outcome.kind === 'sent') { code = String(outcome.status); if (attempt > 0 && outcome.grpcStatus !== undefined && grpcRetriable(policy.retryOn, outcome.grpcStatus)) flags = 'URX'; return; }
      // A trailers-only answer with an error status (held back), or no answer at all.
      const retriable = outcome.kind === 'held'
        ? grpcRetriable(policy.retryOn, outcome.grpcStatus)
        : outcome.refused ? policy.retryOn.includes('refused-stream') : policy.retryOn.includes('connect-failure') || policy.retryOn.includes('reset');
      if (!(mayRetry && retriable && ended)) {
        if (outcome.kind === 'held') {
          if (attempt > 0 && retriable) flags = 'URX';
          code = String(outcome.status);
          outcome.forward();
          return;
        }
        flags = outcome.refused ? 'UC' : 'UF';
        return answer(503, `upstream connect error or disconnect/reset before headers. reset reason: ${outcome.refused ? 'remote refused stream reset' : 'connection failure'}`);
      }
      if (outcome.kind === 'held') outcome.discard();
      if (host) (tried ??= new Set()).add(host);
      this.metrics.retries.inc({ reason: outcome.kind === 'held' ? `grpc-${outcome.grpcStatus}` : 'connect-failure' });
      await sleep(Math.min(250, 25 * 2 ** attempt) * (0.5 + this.host.uniform() / 2));
    }
  }

  /**
   * One upstream attempt, settled once its response headers arrive (or it fails). A
   * trailers-only answer with an error gRPC status is held back, so the caller may retry;
   * any other answer is passed to the client at once ('sent').
   */
  private attempt(
    client: http2.ServerHttp2Stream, head: http2.OutgoingHttpHeaders, t: { host: string; port: number }, chunks: readonly Buffer[], ended: () => boolean,
    setCurrent: (s: http2.ClientHttp2Stream) => void, responseOps: { drop: ReadonlySet<string>; pairs: readonly string[] } | undefined,
    rec: { grpcStatus: string; bytes: number },
  ): Promise<
    | { kind: 'sent'; status: number; grpcStatus?: number }
    | { kind: 'held'; status: number; grpcStatus: number; forward(): void; discard(): void }
    | { kind: 'error'; refused: boolean }
  > {
    return new Promise((resolve) => {
      let settled = false;
      let forwarding = false;
      let up: http2.ClientHttp2Stream;
      try {
        up = this.session(t.host, t.port).request(head);
      } catch {
        resolve({ kind: 'error', refused: false });
        return;
      }
      setCurrent(up);
      for (const c of chunks) up.write(c);
      if (ended()) up.end();
      up.on('error', () => undefined);
      up.once('close', () => {
        if (!settled) { settled = true; resolve({ kind: 'error', refused: up.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM }); return; }
        // The upstream reset mid-response: so is the client's stream.
        if (forwarding && !client.destroyed && !client.writableEnded) client.close(up.rstCode || http2.constants.NGHTTP2_INTERNAL_ERROR);
      });
      const outHeaders = (src: http2.IncomingHttpHeaders, withStatus: boolean): http2.OutgoingHttpHeaders => {
        const o: http2.OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(src)) if ((withStatus ? !k.startsWith(':') || k === ':status' : !k.startsWith(':')) && !DROP.has(k) && !(withStatus && responseOps?.drop.has(k))) o[k] = v;
        if (withStatus) {
          if (responseOps) for (let i = 0; i < responseOps.pairs.length; i += 2) o[responseOps.pairs[i]] = responseOps.pairs[i + 1];
          o.via = this.host.proxyVia;
        }
        return o;
      };
      up.on('response', (h, flags) => {
        settled = true;
        const status = Number(h[':status'] ?? 0);
        // END_STREAM on the headers frame: a trailers-only answer (its gRPC status is in these headers).
        const trailersOnly = (flags & http2.constants.NGHTTP2_FLAG_END_STREAM) !== 0;
        const gs = h['grpc-status'] === undefined ? undefined : Number(h['grpc-status']);
        if (gs !== undefined) rec.grpcStatus = String(gs);
        const forward = () => {
          forwarding = true;
          if (client.destroyed) { up.close(http2.constants.NGHTTP2_CANCEL); return; }
          if (trailersOnly) { client.respond(outHeaders(h, true), { endStream: true }); return; }
          let trailers: http2.IncomingHttpHeaders | undefined;
          client.respond(outHeaders(h, true), { waitForTrailers: true });
          client.once('wantTrailers', () => {
            if (trailers?.['grpc-status'] !== undefined) rec.grpcStatus = String(trailers['grpc-status']);
            client.sendTrailers(outHeaders(trailers ?? {}, false));
          });
          up.on('trailers', (tr) => { trailers = tr; });
          up.on('data', (d: Buffer) => { rec.bytes += d.length; client.write(d); });
          up.on('end', () => client.end());
        };
        if (trailersOnly && gs !== undefined && gs !== 0) {
          resolve({ kind: 'held', status, grpcStatus: gs, forward, discard: () => { if (!up.closed) up.close(http2.constants.NGHTTP2_CANCEL); } });
          return;
        }
        forward();
        resolve({ kind: 'sent', status, grpcStatus: gs });
      });
    });
  }

  close(): void {
    this.server.close();
    for (const s of this.sessions.values()) s.destroy();
    this.sessions.clear();
  }
}

/** A gRPC answer of the proxy's own: :status 200 and a gRPC status mapped from the HTTP one, as Envoy's local replies for gRPC. */
function localReply(stream: http2.ServerHttp2Stream, status: number, reason: string): void {
  if (stream.destroyed || stream.headersSent) { if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR); return; }
  stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(httpToGrpcStatus(status)), 'grpc-message': grpcMessage(`mesh-proxy: ${reason}`) }, { endStream: true });
}

/** grpc-message as the gRPC spec encodes it: bytes outside 0x20-0x7E, and "%", percent-encoded (UTF-8). */
export function grpcMessage(text: string): string {
  let out = '';
  for (const b of Buffer.from(text, 'utf8')) out += b >= 0x20 && b <= 0x7e && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  return out;
}

function chance(percentage: number, host: GrpcHost): boolean {
  return percentage >= 100 || (percentage > 0 && host.uniform() * 100 < percentage);
}
