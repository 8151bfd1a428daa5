// Prometheus metrics (prom-client), served on the admin port at /stats/prometheus.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export class ProxyMetrics {
  readonly registry = new Registry();
  // Request counts are kept as plain numbers per label set and handed to prom-client when
  // it collects (a scrape): prom-client hashes and validates the labels on every inc().
  private readonly pendingRequests = new Map<string, { labels: { virtual_host: string; destination: string; code: string }; n: number }>();
  readonly requests = ((pending) => new Counter({
    name: 'mesh_proxy_requests_total',
    help: 'Requests answered, by virtual host, destination and response code',
    labelNames: ['virtual_host', 'destination', 'code'] as const,
    registers: [this.registry],
    collect() {
      for (const p of pending.values()) if (p.n > 0) { this.inc(p.labels, p.n); p.n = 0; }
    },
  }))(this.pendingRequests);
  readonly duration = new Histogram({
    name: 'mesh_proxy_request_duration_seconds',
    help: 'Time from request to the end of the response, by virtual host',
    labelNames: ['virtual_host'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
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
  /** Read at scrape time (see trackInflight), not updated per request. */
  readonly inflight: Gauge;
  private inflightNow: () => number = () => 0;

  private readonly durationChildren = new Map<string, { observe(v: number): void }>();

  constructor() {
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
    const key = `${virtualHost}\0${destination}\0${code}`;
    const p = this.pendingRequests.get(key);
    if (p) p.n++;
    else this.pendingRequests.set(key, { labels: { virtual_host: virtualHost, destination, code }, n: 1 });
    let h = this.durationChildren.get(virtualHost);
    if (!h) {
      h = this.duration.labels(virtualHost);
      this.durationChildren.set(virtualHost, h);
    }
    h.observe(seconds);
  }

  /** After a config reload: virtual hosts may be gone; children are re-created on demand. */
  forgetChildren(): void {
    for (const p of this.pendingRequests.values()) if (p.n > 0) this.requests.inc(p.labels, p.n);
    this.pendingRequests.clear();
    this.durationChildren.clear();
  }
}
