// Prometheus metrics (prom-client), served on the admin port at /stats/prometheus.
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import { IstioMetrics, SourceWorkload } from './istio-metrics';

interface PendingCount { labels: { virtual_host: string; destination: string; code: string }; n: number }
type MetricValue = { labels: Record<string, string | number>; value: number; metricName: string };

/**
 * A histogram by virtual host whose buckets are plain numbers, rendered by prom-client's
 * registry like its own Histogram (same lines, same order). prom-client's observe()
 * converts and validates the labels and searches the buckets on every request: ~2% of the
 * proxy's CPU under load in a profile.
 */
export class DurationHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();

  constructor(readonly name: string, readonly help: string, private readonly bounds: readonly number[]) {}

  observe(virtualHost: string, seconds: number): void {
    let s = this.series.get(virtualHost);
    if (!s) { s = { counts: this.bounds.map(() => 0), sum: 0, count: 0 }; this.series.set(virtualHost, s); }
    const b = this.bounds;
    for (let i = 0; i < b.length; i++) if (seconds <= b[i]) { s.counts[i]++; break; }
    s.sum += seconds;
    s.count++;
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: MetricValue[] } {
    const values: MetricValue[] = [];
    for (const [vh, s] of this.series) {
      let acc = 0;
      this.bounds.forEach((le, i) => { acc += s.counts[i]; values.push({ labels: { le, virtual_host: vh }, value: acc, metricName: `${this.name}_bucket` }); });
      values.push({ labels: { le: '+Inf', virtual_host: vh }, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels: { virtual_host: vh }, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { virtual_host: vh }, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void { this.series.clear(); }
}

export class ProxyMetrics {
  readonly registry = new Registry();
  // Request counts are kept as plain numbers per label set and handed to prom-client when
  // it collects (a scrape): prom-client hashes and validates the labels on every inc().
  private readonly pendingRequests = new Map<string, Map<string, Map<string, PendingCount>>>();
  private *pending(): IterableIterator<PendingCount> {
    for (const byDest of this.pendingRequests.values()) for (const byCode of byDest.values()) yield* byCode.values();
  }
  readonly requests = ((metrics: ProxyMetrics) => new Counter({
    name: 'mesh_proxy_requests_total',
    help: 'Requests answered, by virtual host, destination and response code',
    labelNames: ['virtual_host', 'destination', 'code'] as const,
    registers: [this.registry],
    collect() {
      for (const p of metrics.pending()) if (p.n > 0) { this.inc(p.labels, p.n); p.n = 0; }
    },
  }))(this);
  readonly duration = new DurationHistogram('mesh_proxy_request_duration_seconds', 'Time from request to the end of the response, by virtual host',
    [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]);
  readonly retries = new Counter({
    name: 'mesh_proxy_retries_total',
    help: 'Upstream attempts after the first, by reason',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly upstreamFailures = new Counter({
    name: 'mesh_proxy_upstream_failures_total',
    help: 'Upstream attempts that got no response, by kind (connect-failure, reset, per-try-timeout, overflow, other), retried or not',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly faults = new Counter({
    name: 'mesh_proxy_faults_total',
    help: 'Injected faults, by kind (delay, abort)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly mirrors = new Counter({
    name: 'mesh_proxy_mirror_requests_total',
    help: 'Mirrored requests, by result (sent, failed, skipped)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly reloads = new Counter({
    name: 'mesh_proxy_config_reloads_total',
    help: 'Route table loads, by result (applied, rejected)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly tlsMissing = new Counter({
    name: 'mesh_proxy_gateway_tls_missing_total',
    help: 'Gateway HTTPS servers not served at start because their TLS Secret was missing or unreadable, by gateway and port',
    labelNames: ['gateway', 'port'] as const,
    registers: [this.registry],
  });
  readonly clientErrors = new Counter({
    name: 'mesh_proxy_client_errors_total',
    help: 'Malformed, oversized or timed-out requests refused before routing, by code',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly overflows = new Counter({
    name: 'mesh_proxy_overflow_total',
    help: 'Requests refused with 503 (x-envoy-overloaded) because a limit was reached, by limit',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });
  readonly unbuffered = new Counter({
    name: 'mesh_proxy_unbuffered_bodies_total',
    help: 'Requests whose body was over --max-buffer, so they were sent once, without the retries or mirror their route asks for, by virtual host',
    labelNames: ['virtual_host'] as const,
    registers: [this.registry],
  });
  readonly appScrapes = new Counter({
    name: 'mesh_proxy_app_metrics_scrapes_total',
    help: "Scrapes of the stats port that fetched the app's own metrics to merge, by result (merged, failed)",
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly spansExported = new Counter({
    name: 'mesh_proxy_spans_exported_total',
    help: 'Spans the tracing collector accepted',
    registers: [this.registry],
  });
  readonly spansDropped = new Counter({
    name: 'mesh_proxy_spans_dropped_total',
    help: 'Spans not delivered, by reason: queue_full (the collector is slower than the traffic), collector_status, collector_timeout, collector_unreachable',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly outlier = new Counter({
    name: 'mesh_proxy_outlier_detection_total',
    help: 'Endpoints ejected by outlier detection and returned after their ejection time, by cluster (host:port) and event',
    labelNames: ['cluster', 'event'] as const,
    registers: [this.registry],
  });
  readonly tunnels = new Counter({
    name: 'mesh_proxy_tunnels_total',
    help: 'CONNECT requests, by result: opened (passed through), grpc (HTTP/2 served inside, each call routed), refused (outbound policy), self (the proxy\'s own port), bad_request, overflow (a limit), connect_failed',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly upgrades = new Counter({
    name: 'mesh_proxy_upgrades_total',
    help: 'Upgrade requests, by result: tunnelled (WebSocket, the upstream answered 101), declined (it answered otherwise), h2c_stripped (served as HTTP/1.1), refused (another upgrade, or one with a body)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly endpointSource = new Gauge({
    name: 'mesh_proxy_endpoint_source',
    help: 'Where the proxy learns endpoints (1 for the one in use): kubernetes, file, or cluster-ip (no endpoints: each Service\'s name, kube-proxy picks)',
    labelNames: ['source'] as const,
    registers: [this.registry],
  });
  /** Read at scrape time (see trackInflight), not updated per request. */
  readonly inflight: Gauge;
  private inflightNow: () => number = () => 0;
  /** Istio's standard metrics (istio_requests_total, ...), beside the proxy's own mesh_proxy_* series. */
  readonly istio: IstioMetrics;

  constructor(source: SourceWorkload = { workload: 'unknown', namespace: 'unknown' }) {
    this.istio = new IstioMetrics(source);
    this.istio.register(this.registry);
    this.registry.registerMetric(this.duration as unknown as Parameters<Registry['registerMetric']>[0]);
    collectDefaultMetrics({ register: this.registry, prefix: 'mesh_proxy_' });
    const metrics = this;
    this.inflight = new Gauge({
      name: 'mesh_proxy_requests_in_flight',
      help: 'Requests being proxied now',
      registers: [this.registry],
      collect() { this.set(metrics.inflightNow()); },
    });
  }

  /** Where the in-flight gauge reads its value at scrape time. */
  trackInflight(now: () => number): void {
    this.inflightNow = now;
  }

  /** Count one answered request and its duration. */
  record(virtualHost: string, destination: string, code: string, seconds: number): void {
    // Nested maps: no key string to build per request.
    let byDest = this.pendingRequests.get(virtualHost);
    if (!byDest) { byDest = new Map(); this.pendingRequests.set(virtualHost, byDest); }
    let byCode = byDest.get(destination);
    if (!byCode) { byCode = new Map(); byDest.set(destination, byCode); }
    const p = byCode.get(code);
    if (p) p.n++;
    else byCode.set(code, { labels: { virtual_host: virtualHost, destination, code }, n: 1 });
    this.duration.observe(virtualHost, seconds);
  }

  /** After a config reload: virtual hosts may be gone; the counts so far are handed over and the label sets dropped. */
  forgetChildren(): void {
    for (const p of this.pending()) if (p.n > 0) this.requests.inc(p.labels, p.n);
    this.pendingRequests.clear();
  }
}
