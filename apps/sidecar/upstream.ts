// Connections to upstreams: Node's own keep-alive http.Agent, which pools sockets per
// host:port. (undici was measured first: its WASM parser alone costs ~20 MB RSS,
// a third of the proxy's memory budget.)
import * as dns from 'node:dns';
import * as http from 'node:http';
import { Readable } from 'node:stream';

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
}

/** 127.0.0.0/8, ::1, IPv4-mapped loopback, and the unspecified addresses (which reach this host). */
export function isLoopback(address: string): boolean {
  const a = address.toLowerCase().replace(/^::ffff:/, '');
  return /^127\./.test(a) || a === '::1' || a === '0.0.0.0' || a === '::' || a === 'localhost';
}

/** An upstream failure with the code the retry logic classifies. */
export class UpstreamError extends Error {
  constructor(readonly code: 'MESH_CONNECT_TIMEOUT' | 'MESH_PER_TRY_TIMEOUT' | 'MESH_OVERFLOW' | 'MESH_SELF', message: string) {
    super(message);
  }
}

export interface UpstreamRequest {
  readonly host: string;
  readonly port: number;
  readonly method: string;
  readonly path: string;
  readonly headers: http.OutgoingHttpHeaders;
  readonly body?: Buffer | Readable;
  /** Time allowed until the response headers arrive. @default - none */
  readonly headersTimeoutMs?: number;
}

export class Upstreams {
  // Free sockets close after 4s, before Node servers' 5s keep-alive default closes them
  // under us; LIFO reuse keeps the pool small.
  // noDelay: Nagle's algorithm would hold small writes for the upstream's delayed ACK.
  // maxSockets bounds the connections per destination; requests beyond it wait in the
  // agent's queue, which send() bounds in turn (Envoy's circuit breaker defaults).
  private readonly agent: http.Agent;
  private readonly maxPending: number;

  constructor(private readonly options: UpstreamOptions) {
    this.agent = new http.Agent({
      keepAlive: true, keepAliveMsecs: 1000, maxFreeSockets: 256, scheduling: 'lifo', timeout: 4000, noDelay: true,
      maxSockets: options.maxConnectionsPerDestination ?? 1024,
    });
    this.maxPending = options.maxPendingPerDestination ?? 1024;
  }

  /**
   * Send a request; resolves with the response once its headers arrive. `onRequest`
   * gets the ClientRequest so the caller can abort it.
   */
  send(r: UpstreamRequest, onRequest?: (req: http.ClientRequest) => void): Promise<http.IncomingMessage> {
    const key = `${r.host}:${r.port}`;
    const target = this.options.resolve.get(key);
    let host = r.host;
    let port = r.port;
    if (target) {
      const i = target.lastIndexOf(':');
      host = target.slice(0, i).replace(/^\[|\]$/g, '');
      port = Number(target.slice(i + 1));
    }
    // Never the proxy's own listeners, whatever name or loopback address leads there.
    const own = this.options.ownPorts;
    if (own?.has(port) && isLoopback(host)) {
      return Promise.reject(new UpstreamError('MESH_SELF', `${key} is this proxy's own port`));
    }
    const lookup = own?.has(port) ? selfGuard(port) : undefined;
    // Circuit breaker: every connection to this destination busy and the queue full.
    const name = this.agent.getName({ host, port });
    const busy = this.agent.sockets[name]?.length ?? 0;
    const queued = this.agent.requests[name]?.length ?? 0;
    if (busy >= this.agent.maxSockets && queued >= this.maxPending) {
      return Promise.reject(new UpstreamError('MESH_OVERFLOW', `${key}: ${busy} connections and ${queued} pending requests (the limits)`));
    }
    return new Promise((resolve, reject) => {
      const req = http.request({ host, port, method: r.method, path: r.path, headers: r.headers, agent: this.agent, setHost: false, lookup, maxHeaderSize: this.options.maxHeaderBytes ?? 60 * 1024 });
      let headersTimer: NodeJS.Timeout | undefined;
      const done = () => { if (headersTimer) clearTimeout(headersTimer); };
      req.once('socket', (s) => {
        if (!s.connecting) return;
        const t = setTimeout(() => req.destroy(new UpstreamError('MESH_CONNECT_TIMEOUT', `connect to ${key} timed out`)), this.options.connectTimeoutMs ?? 10_000);
        s.once('connect', () => clearTimeout(t));
        s.once('close', () => clearTimeout(t));
      });
      if (r.headersTimeoutMs !== undefined) {
        headersTimer = setTimeout(() => req.destroy(new UpstreamError('MESH_PER_TRY_TIMEOUT', `no response headers from ${key} within ${r.headersTimeoutMs}ms`)), r.headersTimeoutMs);
      }
      req.once('response', (res) => { done(); resolve(res); });
      req.once('error', (e) => { done(); reject(e); });
      onRequest?.(req);
      if (r.body === undefined) req.end();
      else if (Buffer.isBuffer(r.body)) req.end(r.body);
      else r.body.pipe(req);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** A DNS lookup that fails for names resolving to loopback, used for the proxy's own port numbers. */
function selfGuard(port: number): typeof dns.lookup {
  return ((hostname: string, options: dns.LookupOptions, callback: (...args: unknown[]) => void) => {
    dns.lookup(hostname, options, (err: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => {
      const all = Array.isArray(address) ? address.map((a) => a.address) : [address];
      if (!err && all.some((a) => isLoopback(a))) {
        return callback(new UpstreamError('MESH_SELF', `${hostname}:${port} resolves to this host, and ${port} is this proxy's own port`));
      }
      callback(err, address, family);
    });
  }) as unknown as typeof dns.lookup;
}
