// Spans from the proxy, as Envoy reports them for Istio: one span per proxied request
// (CLIENT for a pod's outbound call, SERVER for a gateway request), Zipkin v2 JSON or
// OTLP/HTTP JSON, batched in a bounded queue and sent off the request path. A slow or
// dead collector costs dropped spans (counted), never a slower or failed request.
import * as http from 'node:http';
import { RtTracing } from '../../model/route-table';
import { ProxyMetrics } from './metrics';

export interface TraceContext {
  readonly traceId: string;
  /** This hop's span: the x-b3-spanid sent upstream. */
  readonly spanId: string;
  /** The caller's span (incoming x-b3-spanid), if any. */
  readonly parentId?: string;
  /** Recorded and exported? undefined: tracing is off, nothing decided, nothing sent. */
  readonly sampled?: boolean;
  /** The incoming x-b3-flags: 1 is debug (always sampled). */
  readonly debug: boolean;
}

export interface FinishedSpan {
  readonly ctx: TraceContext;
  readonly kind: 'CLIENT' | 'SERVER';
  readonly name: string;
  /** Microseconds since the epoch. */
  readonly startUs: number;
  readonly durationUs: number;
  readonly tags: Readonly<Record<string, string>>;
  readonly remote?: { readonly serviceName?: string; readonly port?: number };
}

export interface TracerIdentity {
  /** Zipkin's localEndpoint.serviceName; Istio's `<app>.<namespace>`. */
  readonly serviceName: string;
  /** Envoy's node id: `sidecar~<pod IP>~<pod>.<namespace>~<namespace>.svc.cluster.local`. */
  readonly nodeId: string;
  readonly ipv4?: string;
  readonly namespace: string;
}

export interface TracerOptions {
  /** Spans waiting to be sent; beyond it new spans are dropped. @default 2048 */
  readonly maxQueue?: number;
  /** Spans per POST. @default 256 */
  readonly batchSize?: number;
  /** How often a partial batch is sent. @default 1000 */
  readonly flushMs?: number;
  /** A POST that takes longer is abandoned and its spans counted as dropped. @default 2000 */
  readonly timeoutMs?: number;
  readonly random?: () => number;
}

const B3_TRUE = new Set(['1', 'true', 'd']);
const B3_FALSE = new Set(['0', 'false']);

/**
 * A hop's trace context from the request's B3 headers: the caller's trace (or a new one),
 * a new span whose parent is the caller's. A caller's x-b3-sampled (or debug flag)
 * decides whether it is recorded; else the sampling percentage, as Envoy decides for a
 * new trace. Without tracing, `sampled` stays undefined and no decision is forwarded.
 */
export function traceContext(headers: http.IncomingHttpHeaders, newId: (bytes: number) => string, config?: RtTracing, random: () => number = Math.random): TraceContext {
  const one = (k: string) => { const v = headers[k]; return Array.isArray(v) ? v[0] : v; };
  const traceIn = one('x-b3-traceid');
  const traceId = traceIn && /^([0-9a-f]{16}|[0-9a-f]{32})$/i.test(traceIn) ? traceIn.toLowerCase() : undefined;
  const parentIn = one('x-b3-spanid');
  const parentId = traceId && parentIn && /^[0-9a-f]{16}$/i.test(parentIn) ? parentIn.toLowerCase() : undefined;
  const debug = one('x-b3-flags') === '1';
  let sampled: boolean | undefined;
  if (config) {
    const s = one('x-b3-sampled')?.toLowerCase();
    if (debug || (s !== undefined && B3_TRUE.has(s))) sampled = true;
    else if (s !== undefined && B3_FALSE.has(s)) sampled = false;
    else sampled = config.samplingPercentage >= 100 || (config.samplingPercentage > 0 && random() * 100 < config.samplingPercentage);
  }
  return { traceId: traceId ?? newId(16), spanId: newId(8), parentId, sampled, debug };
}

export class Tracer {
  private config: RtTracing | undefined;
  private queue: FinishedSpan[] = [];
  private sending = 0;
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  private readonly timer: NodeJS.Timeout;
  private readonly maxQueue: number;
  private readonly batchSize: number;
  private readonly timeoutMs: number;
  private readonly random: () => number;

  constructor(private readonly metrics: ProxyMetrics, private readonly identity: TracerIdentity, opts: TracerOptions = {}) {
    this.maxQueue = opts.maxQueue ?? 2048;
    this.batchSize = opts.batchSize ?? 256;
    this.timeoutMs = opts.timeoutMs ?? 2000;
    this.random = opts.random ?? Math.random;
    this.timer = setInterval(() => this.flush(), opts.flushMs ?? 1000);
    this.timer.unref();
  }

  /** A new route table's tracing (or none). Spans already queued go to the new endpoint. */
  configure(config: RtTracing | undefined): void {
    this.config = config;
    if (!config) this.queue = [];
  }

  get enabled(): boolean {
    return this.config !== undefined;
  }

  /** This hop's trace context from the request's B3 headers (see traceContext). */
  context(headers: http.IncomingHttpHeaders, newId: (bytes: number) => string): TraceContext {
    return traceContext(headers, newId, this.config, this.random);
  }

  /** Queue a finished span; dropped (and counted) when tracing is off for it or the queue is full. */
  record(span: FinishedSpan): void {
    if (!this.config || !span.ctx.sampled) return;
    if (this.queue.length >= this.maxQueue) {
      this.metrics.spansDropped.inc({ reason: 'queue_full' });
      return;
    }
    this.queue.push(span);
    if (this.queue.length >= this.batchSize) this.flush();
  }

  /** Send one batch now (at most two POSTs in flight: a slow collector fills the queue, then spans drop). */
  flush(): Promise<void> {
    const config = this.config;
    if (!config || this.queue.length === 0 || this.sending >= 2) return Promise.resolve();
    const batch = this.queue.splice(0, this.batchSize);
    const body = Buffer.from(JSON.stringify(config.format === 'zipkin' ? batch.map((s) => this.zipkin(s)) : this.otlp(batch)));
    this.sending++;
    return new Promise<void>((resolve) => {
      let settled = false;
      const done = (ok: boolean, reason: string) => {
        if (settled) return;
        settled = true;
        this.sending--;
        if (ok) this.metrics.spansExported.inc(batch.length);
        else this.metrics.spansDropped.inc({ reason }, batch.length);
        resolve();
      };
      try {
        const req = http.request(config.endpoint, {
          method: 'POST', agent: this.agent, timeout: this.timeoutMs,
          headers: { 'content-type': 'application/json', 'content-length': body.length },
        }, (res) => {
          res.resume();
          res.on('end', () => done((res.statusCode ?? 500) < 300, 'collector_status'));
          res.on('error', () => done(false, 'collector_unreachable'));
        });
        req.on('timeout', () => { req.destroy(); done(false, 'collector_timeout'); });
        req.on('error', () => done(false, 'collector_unreachable'));
        req.end(body);
      } catch {
        done(false, 'collector_unreachable');
      }
    });
  }

  /** On shutdown: send what is queued, bounded by the export timeout. */
  async close(): Promise<void> {
    clearInterval(this.timer);
    const deadline = Date.now() + this.timeoutMs;
    while (this.queue.length && Date.now() < deadline) {
      const before = this.queue.length;
      await this.flush();
      if (this.queue.length >= before) break;
    }
    this.agent.destroy();
  }

  private zipkin(s: FinishedSpan): object {
    return {
      traceId: s.ctx.traceId, id: s.ctx.spanId, ...(s.ctx.parentId ? { parentId: s.ctx.parentId } : {}),
      kind: s.kind, name: s.name, timestamp: s.startUs, duration: Math.max(1, s.durationUs),
      localEndpoint: { serviceName: this.identity.serviceName, ...(this.identity.ipv4 ? { ipv4: this.identity.ipv4 } : {}) },
      ...(s.remote ? { remoteEndpoint: s.remote } : {}),
      ...(s.ctx.debug ? { debug: true } : {}),
      tags: { ...s.tags, node_id: this.identity.nodeId, component: 'proxy', 'istio.namespace': this.identity.namespace },
    };
  }

  private otlp(batch: readonly FinishedSpan[]): object {
    const attr = (key: string, value: string) => ({ key, value: { stringValue: value } });
    return {
      resourceSpans: [{
        resource: { attributes: [attr('service.name', this.identity.serviceName), attr('k8s.namespace.name', this.identity.namespace)] },
        scopeSpans: [{
          scope: { name: 'mesh-proxy' },
          spans: batch.map((s) => ({
            traceId: s.ctx.traceId.padStart(32, '0'), spanId: s.ctx.spanId, ...(s.ctx.parentId ? { parentSpanId: s.ctx.parentId } : {}),
            name: s.name, kind: s.kind === 'SERVER' ? 2 : 3,
            startTimeUnixNano: `${BigInt(s.startUs) * 1000n}`, endTimeUnixNano: `${BigInt(s.startUs + Math.max(1, s.durationUs)) * 1000n}`,
            attributes: Object.entries({ ...s.tags, node_id: this.identity.nodeId, component: 'proxy' }).map(([k, v]) => attr(k, v)),
            status: { code: s.tags.error === 'true' ? 2 : 0 },
          })),
        }],
      }],
    };
  }
}
