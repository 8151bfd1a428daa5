// CONNECT tunnels: how an app's HTTPS (and any TCP a client sends through HTTPS_PROXY)
// leaves the pod. The proxy sees only the destination's name and port, never the bytes
// inside (TLS end to end), so the outbound policy decides per tunnel: ALLOW_ANY lets any
// destination through, REGISTRY_ONLY only the mesh's Services and ServiceEntry hosts on
// their ports (403 with the reason otherwise), as Istio's sidecar does for TLS egress.
import type { IncomingMessage } from 'node:http';
import * as net from 'node:net';
import type { Socket } from 'node:net';
import type { DestinationLabels } from './istio-metrics';
import type { ProxyMetrics } from './metrics';
import type { Clusters } from './clusters';
import type { GrpcTunnels } from './grpc';
import { isOwnAddress, Upstreams } from './upstream';

/** What a tunnel needs from the proxy: the admission decision and the drain state. */
export interface TunnelHost {
  /** A tunnel was asked for: the drain waits until the app has been quiet for a while. */
  touch(): void;
  /** The Service or ServiceEntry host `host:port` is (undefined: unknown), or why REGISTRY_ONLY refuses it. */
  admit(host: string, port: number): { readonly known?: string; readonly refusal?: string };
  /** Istio's destination labels for a known host (a bounded set: the table's hosts). */
  destinationLabels(known: string | undefined): DestinationLabels;
  log(level: 'info' | 'warn' | 'error', msg: string, extra?: Record<string, unknown>): void;
  /** The protocol the table declares for `host:port` (HTTP2 and GRPC get per-request routing). */
  protocolOf(host: string, port: number): string;
}

export interface TunnelOptions {
  /** Where a host:port connects (--resolve, endpoints), the proxy's own ports and the lookup that keeps names off them. */
  readonly upstreams: Upstreams;
  /** @default 10000 (Istio's connectTimeout) */
  readonly connectTimeoutMs: number;
  /** A tunnel with no bytes either way for this long is closed. Istio's TCP idle timeout is 1 hour. */
  readonly idleTimeoutMs: number;
  /** Tunnels open to one destination (host:port); a cluster's connectionPool.tcp.maxConnections when it has one. */
  readonly maxPerDestination: number;
  readonly accessLog: boolean;
  readonly clusters?: Clusters;
  /** Serves HTTP/2 inside tunnels to gRPC and HTTP/2 ports, routing each request. @default - such tunnels are passed through */
  readonly grpc?: GrpcTunnels;
}

// RFC 9110 9.3.6: CONNECT's target is authority-form, host and port, nothing else.
const AUTHORITY = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9]([A-Za-z0-9_.-]{0,251}[A-Za-z0-9])?):(\d{1,5})$/;
/** How often the bytes of open tunnels are added to the TCP metrics (Envoy's tcp_reporting_duration, 15 s). */
const REPORT_MS = 15_000;

interface Open {
  readonly client: Socket;
  upstream?: Socket;
  readonly dest: DestinationLabels;
  reportedSent: number;
  reportedReceived: number;
}

/** The CONNECT side of the proxy: one per process, shared by its listeners. */
export class Tunnels {
  private readonly open = new Set<Open>();
  private readonly perDestination = new Map<string, number>();
  private readonly reporter: NodeJS.Timeout;

  constructor(private readonly host: TunnelHost, private readonly metrics: ProxyMetrics, private readonly opts: TunnelOptions) {
    this.reporter = setInterval(() => {
      for (const t of this.open) this.report(t);
    }, REPORT_MS);
    this.reporter.unref();
  }

  get size(): number { return this.open.size; }

  /** The http.Server 'connect' listener: `socket` is the client's, `head` what it sent after the request head. */
  handle(req: IncomingMessage, socket: Socket, head: Buffer): void {
    const started = performance.now();
    // The socket is ours now: Node's error handling is gone, and a reset must not crash the process.
    socket.on('error', () => socket.destroy());
    const refuse = (status: number, reason: string, result: string, extra = '') => {
      this.metrics.tunnels.inc({ result });
      this.logLine(req, status, 0, 0, started, result);
      const body = `mesh-proxy: ${reason}\n`;
      socket.end(`HTTP/1.1 ${status} ${STATUS[status]}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`);
    };
    const m = AUTHORITY.exec(req.url ?? '');
    if (!m || req.httpVersionMajor !== 1) return refuse(400, `CONNECT needs a host:port target (got ${JSON.stringify(String(req.url).slice(0, 100))})`, 'bad_request');
    const hostName = m[1].toLowerCase().replace(/^\[|\]$/g, '');
    const port = Number(m[3]);
    if (port < 1 || port > 65535) return refuse(400, `port ${m[3]} is out of range`, 'bad_request');
    // Draining, tunnels still open (the app may make its last calls), as requests are still served; all close at exit.
    this.host.touch();
    const key = `${hostName}:${port}`;
    const ups = this.opts.upstreams;
    const asked = ups.target(hostName, port);
    // Never the proxy's own listeners, by any name or address of this host.
    if (ups.isOwnPort(asked.port) && isOwnAddress(asked.host)) return refuse(403, `refusing to tunnel to the proxy's own port ${port}`, 'self');
    const { known, refusal } = this.host.admit(hostName, port);
    if (refusal) return refuse(403, refusal, 'refused');
    // A gRPC or HTTP/2 port: the proxy speaks HTTP/2 inside the tunnel and routes each call.
    const protocol = known ? this.host.protocolOf(known, port) : 'HTTP';
    if (this.opts.grpc && (protocol === 'GRPC' || protocol === 'HTTP2')) {
      this.metrics.tunnels.inc({ result: 'grpc' });
      this.logLine(req, 200, 0, 0, started, 'grpc');
      socket.write('HTTP/1.1 200 OK\r\n\r\n');
      socket.setTimeout(this.opts.idleTimeoutMs, () => socket.destroy());
      this.opts.grpc.serve(socket, head, { host: known!, port });
      return;
    }
    const cluster = known ? this.opts.clusters?.get(known, port) : undefined;
    const limit = cluster?.policy.connectionPool?.maxConnections ?? this.opts.maxPerDestination;
    const count = this.perDestination.get(key) ?? 0;
    if (count >= limit) {
      this.metrics.overflows.inc({ limit: 'tunnels_per_destination' });
      return refuse(503, `overloaded: ${count} tunnels to ${key} already open (limit ${limit})`, 'overflow', 'x-envoy-overloaded: true\r\n');
    }
    // A Service's (or ServiceEntry's STATIC) endpoint when the cluster knows them; else the name as asked.
    const picked = cluster?.pick(undefined, undefined);
    const endpoint = picked && typeof picked === 'object' ? picked.endpoint : undefined;
    const dest = this.host.destinationLabels(known);
    const t: Open = { client: socket, dest, reportedSent: 0, reportedReceived: 0 };
    this.open.add(t);
    this.perDestination.set(key, count + 1);
    const connectTo = endpoint ? { host: endpoint.address, port: endpoint.port } : asked;
    // A name that resolves to this host must not reach the proxy's own ports either (the lookup refuses it).
    const lookup = ups.lookupFor(connectTo.port) as net.LookupFunction | undefined;
    const upstream = net.connect({ ...connectTo, ...(lookup ? { lookup } : {}) });
    t.upstream = upstream;
    let established = false;
    let flags = '-';
    const connectTimer = setTimeout(() => { flags = 'UF'; upstream.destroy(new Error('connect timeout')); }, cluster?.policy.connectionPool?.connectTimeoutMs ?? this.opts.connectTimeoutMs);
    let closed = false;
    const finish = () => {
      if (closed) return;
      closed = true;
      clearTimeout(connectTimer);
      this.open.delete(t);
      const n = (this.perDestination.get(key) ?? 1) - 1;
      if (n > 0) this.perDestination.set(key, n); else this.perDestination.delete(key);
      if (!established) return;
      const sent = upstream.bytesWritten - t.reportedSent;
      const received = upstream.bytesRead - t.reportedReceived;
      this.metrics.istio.tcpClosed(dest, flags, sent, received);
      this.logLine(req, 200, upstream.bytesWritten, upstream.bytesRead, started, flags);
    };
    upstream.once('connect', () => {
      clearTimeout(connectTimer);
      if (socket.destroyed) { upstream.destroy(); finish(); return; }
      established = true;
      this.metrics.tunnels.inc({ result: 'opened' });
      this.metrics.istio.tcpOpened(dest);
      socket.write('HTTP/1.1 200 OK\r\n\r\n');
      if (head.length) upstream.write(head);
      // Idle: nothing either way on the client's socket (writes to it count) for idleTimeoutMs.
      socket.setTimeout(this.opts.idleTimeoutMs, () => { flags = 'IDLE'; socket.destroy(); upstream.destroy(); });
      socket.pipe(upstream);
      upstream.pipe(socket);
    });
    upstream.on('error', (err: NodeJS.ErrnoException) => {
      if (!established) {
        clearTimeout(connectTimer);
        finish();
        const self = (err as { code?: string }).code === 'MESH_SELF';
        this.metrics.tunnels.inc({ result: self ? 'self' : 'connect_failed' });
        if (socket.destroyed) return;
        const reason = self ? `refusing to tunnel to the proxy's own port ${port}` : `upstream connect error: ${flags === 'UF' ? 'timeout' : err.code ?? err.message} (${key})`;
        const body = `mesh-proxy: ${reason}\n`;
        this.logLine(req, self ? 403 : 503, 0, 0, started, self ? 'self' : 'UF');
        socket.end(`HTTP/1.1 ${self ? 403 : 503} ${STATUS[self ? 403 : 503]}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
        return;
      }
      flags = flags === '-' ? 'UC' : flags;
      socket.destroy();
    });
    // Either side gone: the other follows (the piped end() already half-closed it when it ended cleanly).
    upstream.once('close', () => { socket.end(); setTimeout(() => socket.destroy(), 1000).unref(); finish(); });
    socket.once('close', () => { if (!upstream.destroyed) { if (established) upstream.end(); else upstream.destroy(); } setTimeout(() => upstream.destroy(), 1000).unref(); if (!established) finish(); });
  }

  /** Bytes of a tunnel still open, added to the TCP metrics since its last report. */
  private report(t: Open): void {
    const up = t.upstream;
    if (!up) return;
    const sent = up.bytesWritten - t.reportedSent;
    const received = up.bytesRead - t.reportedReceived;
    if (sent === 0 && received === 0) return;
    t.reportedSent += sent;
    t.reportedReceived += received;
    this.metrics.istio.tcpBytes(t.dest, sent, received);
  }

  private logLine(req: IncomingMessage, code: number, sent: number, received: number, started: number, flags: string): void {
    if (!this.opts.accessLog) return;
    process.stdout.write(`${JSON.stringify({
      time: new Date().toISOString(), method: 'CONNECT', authority: String(req.url).slice(0, 300), code, flags,
      bytesSent: sent, bytesReceived: received, ms: Math.round((performance.now() - started) * 1e3) / 1e3,
    })}\n`);
  }

  /** Shutdown: every tunnel closes (after the drain period, which tunnels do not extend). */
  closeAll(): void {
    clearInterval(this.reporter);
    for (const t of this.open) { t.client.destroy(); t.upstream?.destroy(); }
  }
}

const STATUS: Record<number, string> = { 400: 'Bad Request', 403: 'Forbidden', 503: 'Service Unavailable' };
