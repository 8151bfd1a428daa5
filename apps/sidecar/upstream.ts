// Connections to upstreams: HTTP/1.1 on pooled net.Sockets, responses parsed by Node's
// own llhttp binding (the native parser http.request and http.Server use), body chunks
// handed straight to the client's response.
//
// Why not http.request or undici: measured side by side as reverse proxies (wrk -c32,
// 1 KB bodies, same nginx backends), a client on the native parser passed 24-29k rps at
// 66 MB peak RSS, undici's Pool 19-21k at 108-119 MB (its WASM parser and the modules it
// loads cost ~17-21 MB before the first request), http.request with pipe() 11k at 69 MB:
// ClientRequest, IncomingMessage and the stream machinery around them, per request, were
// most of the difference. The parser itself is the same llhttp either way.
import * as dns from 'node:dns';
import * as net from 'node:net';
import { Readable } from 'node:stream';
import type { ServerResponse } from 'node:http';
import { networkInterfaces } from 'node:os';

export interface UpstreamOptions {
  /** `host:port` -> `address:port` overrides, like curl's --resolve (tests, local runs). */
  readonly resolve: ReadonlyMap<string, string>;
  /** @default 10000 (Istio's connectTimeout default, 10s) */
  readonly connectTimeoutMs?: number;
  /** Connections to one destination (host:port). @default 1024 (Envoy's max_connections) */
  readonly maxConnectionsPerDestination?: number;
  /** Requests waiting for a connection to one destination. @default 1024 (Envoy's max_pending_requests) */
  readonly maxPendingPerDestination?: number;
  /** Largest upstream response head accepted. @default 61440 (Envoy's 60 KiB) */
  readonly maxHeaderBytes?: number;
  /** The proxy's own listening ports: never connected to on a loopback address. */
  readonly ownPorts?: ReadonlySet<number>;
  /** Idle connections close after this long, before Node servers' 5 s keep-alive default closes them under us. @default 4000 */
  readonly idleTimeoutMs?: number;
}

/** 127.0.0.0/8, ::1, IPv4-mapped loopback, and the unspecified addresses (which reach this host). */
export function isLoopback(address: string): boolean {
  // Most hosts are service names: a first character that no loopback spelling starts with settles it.
  const c = address.charCodeAt(0) | 0x20;
  if (c !== 0x31 && c !== 0x3a && c !== 0x30 && c !== 0x6c) return false; // 1 : 0 l
  const a = address.toLowerCase().replace(/^::ffff:/, '');
  return /^127\./.test(a) || a === '::1' || a === '0.0.0.0' || a === '::' || a === 'localhost';
}

let ownAddresses: { at: number; set: Set<string> } | undefined;
/**
 * Loopback, or an address of one of this host's interfaces (the pod IP): where the proxy's
 * own listeners are reachable. Interfaces are read again after a minute at most.
 */
export function isOwnAddress(address: string): boolean {
  if (isLoopback(address)) return true;
  const now = performance.now();
  if (!ownAddresses || now - ownAddresses.at > 60_000) {
    const set = new Set<string>();
    for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) set.add(i.address.toLowerCase());
    ownAddresses = { at: now, set };
  }
  return ownAddresses.set.has(address.toLowerCase().replace(/^::ffff:/, ''));
}

/** An upstream failure with the code the retry logic classifies. */
export class UpstreamError extends Error {
  constructor(readonly code: 'MESH_CONNECT_TIMEOUT' | 'MESH_PER_TRY_TIMEOUT' | 'MESH_OVERFLOW' | 'MESH_SELF', message: string) {
    super(message);
  }
}

/** A failure with a Node-style code (ECONNRESET, HPE_*), classified like the socket's own errors. */
function codeError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** 2^32-1: what Istio writes for a circuit breaker a DestinationRule leaves unset. */
export const UNLIMITED = 4_294_967_295;

/** Envoy's circuit breakers and connection settings for one cluster, shared by its endpoints. */
export interface PoolSettings {
  readonly maxConnections: number;
  /** Requests waiting for a connection. */
  readonly maxPending: number;
  /** 0: unlimited. */
  readonly maxRequestsPerConnection: number;
  readonly connectTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** TCP keepalive after this long idle; undefined: off. */
  readonly keepAliveMs?: number;
  /** Requests in flight (Envoy's max_requests; checked by the caller). */
  readonly maxRequests?: number;
  /** Retries in flight (Envoy's max_retries; checked by the caller). */
  readonly maxRetries?: number;
}

/** The connections of one cluster: its settings and the counts its circuit breakers read. */
export class Pool {
  connections = 0;
  pending = 0;
  /** @internal Destinations with requests waiting, served as connections free up. */
  readonly waiting = new Set<Destination>();
  /** @internal */ readonly destinations = new Set<Destination>();
  /** @internal The destination of each endpoint (endpoint objects live as long as their source's copy). */
  readonly byEndpoint = new WeakMap<object, Destination>();

  constructor(readonly settings: PoolSettings) {}

  /** A connection slot freed up: the oldest waiter of another endpoint gets it. */
  /** @internal */
  kick(): void {
    for (const d of this.waiting) {
      if (this.connections >= this.settings.maxConnections) return;
      d.openForQueue();
    }
  }

  close(): void {
    for (const d of [...this.destinations]) d.close();
  }
}

export interface UpstreamRequest {
  readonly host: string;
  readonly port: number;
  /** Connect here instead of to host:port (the endpoint a cluster picked); Host stays. */
  readonly endpoint?: { readonly address: string; readonly port: number };
  /** The cluster's pool; without one, each host:port has its own with the proxy's defaults. */
  readonly pool?: Pool;
  readonly method: string;
  /** The request line's target: a path with its query. It must hold no whitespace or control characters. */
  readonly path: string;
  /**
   * The header block: `name: value\r\n` lines, Host included, without the blank line that
   * ends it, and without Content-Length or Transfer-Encoding: the framing is written here.
   */
  readonly head: string;
  /**
   * The body: a Buffer (sent with its own length as Content-Length), or a stream sent as it
   * comes (Content-Length `bodyLength`, or chunked when that is undefined).
   */
  readonly body?: Buffer | Readable;
  /** A stream's length; without a body, a length of 0 is sent as `content-length: 0` (a POST with an empty body). */
  readonly bodyLength?: number;
  /** Time allowed until the response headers arrive. @default - none */
  readonly headersTimeoutMs?: number;
  /** Counts a chunked stream's bytes as they are sent (for the request size metric). */
  readonly counter?: { bytes: number };
}

// -----------------------------------------------------------------------------
// Node's llhttp binding, as node:_http_common exposes it (Node 20 and 22 alike).

interface HttpParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | Error;
  finish(): number | Error | undefined;
  close(): void;
  [callback: number]: unknown;
}
interface HttpParserClass {
  new(): HttpParser;
  readonly RESPONSE: number;
  readonly kOnHeaders: number;
  readonly kOnHeadersComplete: number;
  readonly kOnBody: number;
  readonly kOnMessageComplete: number;
}

function loadParser(): HttpParserClass {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const P = (require('_http_common') as { HTTPParser?: HttpParserClass }).HTTPParser;
  const shape = P && typeof P === 'function' && ['RESPONSE', 'kOnHeaders', 'kOnHeadersComplete', 'kOnBody', 'kOnMessageComplete'].every((k) => typeof (P as unknown as Record<string, unknown>)[k] === 'number');
  if (!shape) throw new Error(`this Node.js (${process.version}) does not expose the HTTP parser the proxy uses (_http_common.HTTPParser); run it on Node.js 20 or 22`);
  return P!;
}
/** The parser class; exported for the test that checks its shape on this Node.js. */
export const HTTPParser = loadParser();
const kOnHeaders = HTTPParser.kOnHeaders;
const kOnHeadersComplete = HTTPParser.kOnHeadersComplete;
const kOnBody = HTTPParser.kOnBody;
const kOnMessageComplete = HTTPParser.kOnMessageComplete;
/** kOnHeadersComplete's answer: the message has no body (HEAD, 1xx). */
const SKIP_BODY = 1;

// -----------------------------------------------------------------------------

/**
 * One attempt, from send() until its response ends: the caller keeps it to abort.
 * Aborting a queued attempt takes it off the queue; one on a connection closes the connection.
 */
export class Attempt {
  /** @internal */ conn?: Connection;
  /** @internal */ dest?: Destination;
  /** @internal */ reject?: (e: Error) => void;
  /** @internal */ resolve?: (r: UpstreamResponse) => void;
  /** @internal */ timer?: NodeJS.Timeout;
  /** @internal */ response?: UpstreamResponse;
  destroyed = false;

  constructor(readonly request: UpstreamRequest) {}

  destroy(err: Error = codeError('ECONNABORTED', 'upstream request aborted')): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.conn) this.conn.destroy(err);
    else if (this.dest) this.dest.unqueue(this);
    this.settle(err);
  }

  /** @internal */
  settle(err: Error): void {
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    const reject = this.reject;
    this.reject = this.resolve = undefined;
    if (reject) reject(err);
    else this.response?.fail();
  }
}

/**
 * A response whose headers have arrived. Its body is held until pipe() or discard() says
 * where it goes (the parser may have read all of it already), then streamed with backpressure.
 */
export class UpstreamResponse {
  /** The whole body has arrived. */
  complete = false;
  private held: Buffer[] | undefined = [];
  private sink?: ServerResponse;
  private discarding = false;
  private failed = false;

  constructor(readonly statusCode: number, readonly rawHeaders: readonly string[], private readonly conn: Connection) {}

  /** Pass the body on to the client; the caller has written the response head. */
  pipe(res: ServerResponse): void {
    this.sink = res;
    if (this.failed) { cutOff(res); return; }
    const held = this.held!;
    this.held = undefined;
    if (this.complete) {
      if (held.length === 1) res.end(held[0]);
      else { for (const c of held) res.write(c); res.end(); }
      return;
    }
    for (const c of held) this.write(c);
  }

  /** Drop the body; the connection is reused once it has been read. */
  discard(): void {
    this.discarding = true;
    this.held = undefined;
    this.conn.resume();
  }

  /** Close the connection: the client is gone, or the route gave up. */
  destroy(): void {
    if (!this.complete) this.conn.destroy(codeError('ECONNABORTED', 'response abandoned'));
  }

  /** @internal */
  push(chunk: Buffer): void {
    if (this.held) this.held.push(chunk);
    else if (this.sink) this.write(chunk);
  }

  private write(chunk: Buffer): void {
    const sink = this.sink!;
    if (!sink.write(chunk) && !this.complete) {
      this.conn.pause();
      sink.once('drain', () => this.conn.resume());
    }
  }

  /** @internal */
  end(): void {
    this.complete = true;
    if (this.sink) this.sink.end();
  }

  /** @internal The upstream died mid-body: the client is cut off too. */
  fail(): void {
    if (this.complete || this.failed) return;
    this.failed = true;
    if (this.sink && !this.discarding) cutOff(this.sink);
  }
}

/**
 * End a response whose body was cut upstream so that the client sees it fail: a TCP reset,
 * as Envoy resets the downstream. A plain close would read as the end of a body that has no
 * length (an HTTP/1.0 client's close-delimited response).
 */
export function cutOff(res: ServerResponse): void {
  const sock = res.socket;
  if (sock && !sock.destroyed) sock.resetAndDestroy();
  res.destroy();
}

/** One keep-alive connection and its parser. */
class Connection {
  readonly socket: net.Socket;
  private readonly parser: HttpParser;
  attempt?: Attempt;
  private response?: UpstreamResponse;
  private headerLines: string[] = [];
  private keepAlive = false;
  private informational = false;
  /** The request (head and body) has been written in full. */
  private sent = false;
  private messageDone = false;
  /** Detaches a streamed request body from this connection. */
  private stopStreaming?: () => void;
  idleSince = 0;
  closed = false;
  /** Inside parser.execute() or finish(): the parser must not be closed under itself. */
  private executing = false;
  connected = false;

  /** Requests started on this connection (maxRequestsPerConnection). */
  requests = 0;

  constructor(readonly dest: Destination, host: string, port: number, lookup: typeof dns.lookup | undefined, connectTimeoutMs: number, maxHeaderBytes: number, keepAliveMs?: number) {
    this.socket = net.connect({ host, port, lookup });
    this.socket.setNoDelay(true);
    if (keepAliveMs !== undefined) this.socket.setKeepAlive(true, keepAliveMs);
    const connectTimer = setTimeout(() => this.destroy(new UpstreamError('MESH_CONNECT_TIMEOUT', `connect to ${dest.key} timed out`)), connectTimeoutMs);
    this.socket.once('connect', () => { this.connected = true; clearTimeout(connectTimer); });
    this.socket.on('data', (d: Buffer) => this.onData(d));
    this.socket.on('end', () => this.onEnd());
    this.socket.on('error', (e) => this.destroy(e));
    this.socket.on('close', () => { clearTimeout(connectTimer); this.destroy(codeError('ECONNRESET', 'socket hang up')); });

    const p = new HTTPParser();
    p.initialize(HTTPParser.RESPONSE, {}, maxHeaderBytes, 0);
    // More than 32 header pairs (or trailers) come in pieces before headers-complete.
    p[kOnHeaders] = (headers: string[]) => { for (const h of headers) this.headerLines.push(h); };
    p[kOnHeadersComplete] = (_maj: number, _min: number, headers: string[] | undefined, _m: unknown, _u: unknown, status: number, _msg: unknown, _upg: boolean, keepAlive: boolean) =>
      this.onHeaders(headers ?? this.takeHeaderLines(), status, keepAlive);
    p[kOnBody] = (b: Buffer) => this.response?.push(b);
    p[kOnMessageComplete] = () => this.onMessageComplete();
    this.parser = p;
  }

  private takeHeaderLines(): string[] {
    const h = this.headerLines;
    this.headerLines = [];
    return h;
  }

  start(a: Attempt): void {
    this.requests++;
    this.attempt = a;
    a.conn = this;
    this.sent = false;
    this.messageDone = false;
    this.response = undefined;
    this.headerLines = [];
    const r = a.request;
    const chunked = r.body !== undefined && !Buffer.isBuffer(r.body) && r.bodyLength === undefined;
    // The framing is always this proxy's own, made from the body it holds or streams.
    const length = Buffer.isBuffer(r.body) ? r.body.length : r.bodyLength;
    const framing = chunked ? 'transfer-encoding: chunked\r\n' : length !== undefined ? `content-length: ${length}\r\n` : '';
    // latin1: header values arrive from Node's parser one char per byte, and go out the same way.
    const head = `${r.method} ${r.path} HTTP/1.1\r\n${r.head}${framing}\r\n`;
    if (r.body === undefined) {
      this.socket.write(head, 'latin1');
      this.sent = true;
    } else if (Buffer.isBuffer(r.body)) {
      this.socket.cork();
      this.socket.write(head, 'latin1');
      this.socket.write(r.body);
      this.socket.uncork();
      this.sent = true;
    } else {
      this.socket.write(head, 'latin1');
      this.stream(r.body, chunked ? undefined : r.bodyLength, r.counter);
    }
  }

  /**
   * A streamed request body, with backpressure both ways; a client that stops mid-body aborts
   * the attempt. With a Content-Length (`length`), exactly that many bytes go out or the
   * connection is closed: it is never reused after a body that did not match its framing.
   */
  private stream(body: Readable, length: number | undefined, counter?: { bytes: number }): void {
    const sock = this.socket;
    const chunked = length === undefined;
    let written = 0;
    const onData = (c: Buffer) => {
      if (!c.length) return;
      written += c.length;
      if (counter) counter.bytes += c.length;
      if (!chunked && written > length) { this.attempt?.destroy(codeError('ECONNABORTED', 'request body longer than its Content-Length')); return; }
      const ok = chunked ? (sock.write(`${c.length.toString(16)}\r\n`), sock.write(c), sock.write('\r\n')) : sock.write(c);
      if (!ok) body.pause();
    };
    const onDrain = () => body.resume();
    const cleanup = () => {
      this.stopStreaming = undefined;
      body.off('data', onData); body.off('end', onEnd); body.off('close', onClose); sock.off('drain', onDrain);
    };
    const onEnd = () => {
      cleanup();
      if (!chunked && written !== length) { this.attempt?.destroy(codeError('ECONNABORTED', `request body of ${written} bytes, ${length} announced`)); return; }
      if (chunked) sock.write('0\r\n\r\n');
      this.sent = true;
      if (this.messageDone && this.attempt && !this.closed) this.release();
    };
    const onClose = () => { cleanup(); if (!this.sent) this.attempt?.destroy(codeError('ECONNABORTED', 'the client stopped sending the request body')); };
    body.on('data', onData);
    body.on('end', onEnd);
    body.on('close', onClose);
    sock.on('drain', onDrain);
    this.stopStreaming = cleanup;
  }

  private onHeaders(headers: string[], status: number, keepAlive: boolean): number {
    const a = this.attempt;
    // 1xx (103 Early Hints): not passed on; the final response follows on the same connection.
    if (status >= 100 && status < 200 && status !== 101) { this.informational = true; return SKIP_BODY; }
    if (!a || this.response) { this.destroy(codeError('HPE_UNEXPECTED_RESPONSE', `${this.dest.key} sent a response nobody asked for`)); return SKIP_BODY; }
    if (status === 101) { this.destroy(codeError('HPE_INVALID_STATUS', `${this.dest.key} switched protocols, which was not asked for`)); return SKIP_BODY; }
    this.keepAlive = keepAlive;
    const res = new UpstreamResponse(status, headers, this);
    this.response = res;
    a.response = res;
    if (a.timer) { clearTimeout(a.timer); a.timer = undefined; }
    const resolve = a.resolve;
    a.resolve = a.reject = undefined;
    resolve?.(res);
    return a.request.method === 'HEAD' ? SKIP_BODY : 0;
  }

  private onMessageComplete(): void {
    // Trailers came through kOnHeaders: dropped (Envoy's default), never left for the next
    // response on this connection to pick up as its headers.
    this.headerLines = [];
    if (this.informational) { this.informational = false; return; }
    const res = this.response;
    if (!res) return;
    this.messageDone = true;
    res.end();
  }

  private onData(d: Buffer): void {
    this.executing = true;
    const r = this.parser.execute(d);
    this.executing = false;
    // Closed from one of the parser's own callbacks: its native side is freed only now.
    if (this.closed) { this.parser.close(); return; }
    // An Error on a parse failure (tested by shape: it may come from another realm than ours).
    if (typeof r === 'object') { this.destroy(r); return; }
    if (this.messageDone && this.sent && this.attempt) this.release();
  }

  private onEnd(): void {
    // A response that runs until the connection closes ends here.
    if (this.response && !this.messageDone && !this.closed) {
      this.executing = true;
      const r = this.parser.finish();
      this.executing = false;
      if (this.closed) { this.parser.close(); return; }
      if (typeof r === 'object') { this.destroy(r); return; }
    }
    this.keepAlive = false;
    this.destroy(codeError('ECONNRESET', 'socket hang up'));
  }

  /** The exchange is over: back to the pool, or closed when it cannot be reused. */
  private release(): void {
    const a = this.attempt;
    this.attempt = undefined;
    this.response = undefined;
    if (a) a.conn = undefined;
    if (!this.keepAlive || this.closed) { this.destroy(codeError('ECONNRESET', 'connection not reusable')); return; }
    const max = this.dest.pool.settings.maxRequestsPerConnection;
    if (max > 0 && this.requests >= max) { this.destroy(codeError('ECONNRESET', 'maxRequestsPerConnection reached')); return; }
    this.socket.resume();
    this.dest.idle(this);
  }

  pause(): void { this.socket.pause(); }
  resume(): void { if (!this.closed) this.socket.resume(); }

  destroy(err: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.stopStreaming?.();
    this.socket.destroy();
    if (!this.executing) this.parser.close();
    const a = this.attempt;
    this.attempt = undefined;
    if (a) {
      a.conn = undefined;
      // A whole response was read: nothing failed for the caller.
      if (!this.messageDone) a.settle(err);
    }
    this.dest.gone(this);
  }
}

/** Connections to one endpoint (host:port) of a pool, its idle list (LIFO) and its queue of waiting attempts. */
class Destination {
  /** No longer in the Upstreams' map (swept, replaced or closed): not to be dispatched to. */
  closed = false;
  private readonly free: Connection[] = [];
  private readonly conns = new Set<Connection>();
  private readonly queue: Attempt[] = [];

  constructor(readonly key: string, private readonly host: string, private readonly port: number, private readonly upstreams: Upstreams, readonly pool: Pool) {
    pool.destinations.add(this);
  }

  get size(): number { return this.conns.size; }
  get waiting(): number { return this.queue.length; }

  dispatch(a: Attempt): void {
    a.dest = this;
    // The sweep closes idle connections only every so often; the bound is kept here exactly,
    // so that none is reused as the upstream's own keep-alive timeout (Node's 5 s) closes it.
    const now = performance.now();
    const limits = this.pool.settings;
    while (this.free.length) {
      const c = this.free.pop()!;
      if (c.closed) continue;
      if (now - c.idleSince > limits.idleTimeoutMs) { c.destroy(codeError('ECONNRESET', 'idle timeout')); continue; }
      c.start(a);
      return;
    }
    if (this.pool.connections < limits.maxConnections) { this.open().start(a); return; }
    if (this.pool.pending >= limits.maxPending) {
      a.settle(new UpstreamError('MESH_OVERFLOW', `${this.key}: ${this.pool.connections} connections and ${this.pool.pending} pending requests (the limits)`));
      return;
    }
    this.queue.push(a);
    this.pool.pending++;
    this.pool.waiting.add(this);
  }

  private open(): Connection {
    const s = this.pool.settings;
    const c = new Connection(this, this.host, this.port, this.upstreams.lookupFor(this.port), s.connectTimeoutMs, this.upstreams.maxHeaderBytes, s.keepAliveMs);
    this.conns.add(c);
    this.pool.connections++;
    return c;
  }

  private dequeue(): Attempt | undefined {
    const next = this.queue.shift();
    if (next) this.pool.pending--;
    if (!this.queue.length) this.pool.waiting.delete(this);
    return next;
  }

  /** @internal A slot is free in the pool: open a connection for the first waiting attempt. */
  openForQueue(): void {
    const next = this.dequeue();
    if (next) this.open().start(next);
  }

  idle(c: Connection): void {
    const next = this.dequeue();
    if (next) { c.start(next); return; }
    // Another endpoint of the pool waits for a slot while all are taken: this idle one makes room.
    if (this.pool.waiting.size && this.pool.connections >= this.pool.settings.maxConnections) {
      c.destroy(codeError('ECONNRESET', 'closed for a waiting request to another endpoint'));
      return;
    }
    c.idleSince = performance.now();
    this.free.push(c);
  }

  gone(c: Connection): void {
    if (!this.conns.delete(c)) return;
    this.pool.connections--;
    const i = this.free.indexOf(c);
    if (i >= 0) this.free.splice(i, 1);
    // A connection closed while others waited: open one in its place.
    if (this.queue.length) this.openForQueue();
    else this.pool.kick();
  }

  unqueue(a: Attempt): void {
    const i = this.queue.indexOf(a);
    if (i >= 0) {
      this.queue.splice(i, 1);
      this.pool.pending--;
      if (!this.queue.length) this.pool.waiting.delete(this);
    }
  }

  /** Close connections idle for longer than the pool's idle timeout; true when nothing is left. */
  sweep(now: number): boolean {
    const ms = this.pool.settings.idleTimeoutMs;
    for (const c of [...this.free]) if (now - c.idleSince > ms) c.destroy(codeError('ECONNRESET', 'idle timeout'));
    const empty = this.conns.size === 0 && this.queue.length === 0;
    if (empty) { this.pool.destinations.delete(this); this.closed = true; }
    return empty;
  }

  close(): void {
    for (const a of this.queue.splice(0)) { this.pool.pending--; a.settle(codeError('ECONNABORTED', 'proxy shutting down')); }
    this.pool.waiting.delete(this);
    for (const c of [...this.conns]) c.destroy(codeError('ECONNABORTED', 'proxy shutting down'));
    this.pool.destinations.delete(this);
    this.closed = true;
  }
}

export class Upstreams {
  readonly maxConnections: number;
  readonly maxPending: number;
  readonly connectTimeoutMs: number;
  readonly maxHeaderBytes: number;
  readonly idleTimeoutMs: number;
  private readonly destinations = new Map<string, Destination>();
  private readonly sweeper: NodeJS.Timeout;
  /** The pool settings of destinations without a cluster (the proxy's flags). */
  readonly defaults: PoolSettings;

  constructor(private readonly options: UpstreamOptions) {
    this.maxConnections = options.maxConnectionsPerDestination ?? 1024;
    this.maxPending = options.maxPendingPerDestination ?? 1024;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.maxHeaderBytes = options.maxHeaderBytes ?? 60 * 1024;
    const idleMs = this.idleTimeoutMs = options.idleTimeoutMs ?? 4000;
    this.defaults = {
      maxConnections: this.maxConnections, maxPending: this.maxPending, maxRequestsPerConnection: 0,
      connectTimeoutMs: this.connectTimeoutMs, idleTimeoutMs: idleMs,
      // Istio's circuit-breaker defaults for these two (Envoy's own are 1024 and 3).
      maxRequests: UNLIMITED, maxRetries: UNLIMITED,
    };
    // One timer for every idle connection, not one per socket.
    this.sweeper = setInterval(() => {
      const now = performance.now();
      for (const [k, d] of this.destinations) if (d.sweep(now)) this.destinations.delete(k);
    }, Math.min(1000, idleMs / 2));
    this.sweeper.unref();
  }

  /** Where a request to `host:port` connects: the endpoint, else the --resolve override, else the name as asked. */
  target(host: string, port: number, endpoint?: { address: string; port: number }): { host: string; port: number } {
    if (endpoint) return { host: endpoint.address, port: endpoint.port };
    const t = this.options.resolve.get(`${host}:${port}`);
    if (!t) return { host, port };
    const i = t.lastIndexOf(':');
    return { host: t.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(t.slice(i + 1)) };
  }

  /** Whether `port` is one the proxy listens on. */
  isOwnPort(port: number): boolean {
    return this.options.ownPorts?.has(port) === true;
  }

  /** For the proxy's own port numbers, a DNS lookup that refuses names resolving to this host. */
  lookupFor(port: number): typeof dns.lookup | undefined {
    return this.options.ownPorts?.has(port) ? selfGuard(port) : undefined;
  }

  /**
   * Send a request; resolves with the response once its headers arrive. The attempt is
   * put in `holder.current` first, so that the caller can abort it.
   */
  send(r: UpstreamRequest, holder?: { current?: Attempt }): Promise<UpstreamResponse> {
    // A cluster's endpoint: its pool's destination, found without building a key.
    if (r.endpoint && r.pool) {
      const d = r.pool.byEndpoint.get(r.endpoint);
      if (d && !d.closed) return this.dispatch(r, d, holder);
    }
    const key = `${r.host}:${r.port}`;
    const target = this.options.resolve.get(key);
    let host = r.endpoint?.address ?? r.host;
    let port = r.endpoint?.port ?? r.port;
    if (target && !r.endpoint) {
      const i = target.lastIndexOf(':');
      host = target.slice(0, i).replace(/^\[|\]$/g, '');
      port = Number(target.slice(i + 1));
    }
    // Never the proxy's own listeners, whatever name or loopback address leads there.
    if (this.options.ownPorts?.has(port) && isOwnAddress(host)) {
      return Promise.reject(new UpstreamError('MESH_SELF', `${key} is this proxy's own port`));
    }
    // One pool per cluster: a pod behind two Services (a subset's and the base) has a pool in each, as in Envoy.
    const dkey = r.pool ? `${key}|${host}:${port}` : `${host}:${port}`;
    let d = this.destinations.get(dkey);
    if (d && r.pool && d.pool !== r.pool) { this.destinations.delete(dkey); d.closed = true; d = undefined; }
    if (!d) { d = new Destination(key === `${host}:${port}` ? key : `${key} (${host}:${port})`, host, port, this, r.pool ?? new Pool(this.defaults)); this.destinations.set(dkey, d); }
    if (r.endpoint && r.pool) r.pool.byEndpoint.set(r.endpoint, d);
    return this.dispatch(r, d, holder);
  }

  private dispatch(r: UpstreamRequest, d: Destination, holder: { current?: Attempt } | undefined): Promise<UpstreamResponse> {
    const a = new Attempt(r);
    if (holder) holder.current = a;
    return new Promise<UpstreamResponse>((resolve, reject) => {
      a.resolve = resolve;
      a.reject = reject;
      if (r.headersTimeoutMs !== undefined) {
        a.timer = setTimeout(() => a.destroy(new UpstreamError('MESH_PER_TRY_TIMEOUT', `no response headers from ${d.key} within ${r.headersTimeoutMs}ms`)), r.headersTimeoutMs);
      }
      d.dispatch(a);
    });
  }

  /** Connections and waiting requests per destination (the admin's /stats and the tests). */
  stats(): Record<string, { connections: number; pending: number }> {
    const out: Record<string, { connections: number; pending: number }> = {};
    for (const [k, d] of this.destinations) out[k] = { connections: d.size, pending: d.waiting };
    return out;
  }

  close(): void {
    clearInterval(this.sweeper);
    for (const d of this.destinations.values()) d.close();
    this.destinations.clear();
  }
}

/** A DNS lookup that fails for names resolving to loopback, used for the proxy's own port numbers. */
function selfGuard(port: number): typeof dns.lookup {
  return ((hostname: string, options: dns.LookupOptions, callback: (...args: unknown[]) => void) => {
    dns.lookup(hostname, options, (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => {
      const all = Array.isArray(address) ? address.map((a) => a.address) : [address];
      if (!err && all.some((a) => isOwnAddress(a))) {
        return callback(new UpstreamError('MESH_SELF', `${hostname}:${port} resolves to this host, and ${port} is this proxy's own port`));
      }
      callback(err, address, family);
    });
  }) as unknown as typeof dns.lookup;
}
