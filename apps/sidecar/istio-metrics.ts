// Istio's standard metrics (telemetry v2) from the node sidecar: the names, types, labels
// and buckets Istio's proxies export, so that Kiali, Istio's Grafana dashboards and
// Flagger/Argo Rollouts analysis queries read them unchanged.
//
// The node sidecar sees its own side only (outbound requests of its pod, or the requests a
// gateway proxies), so every series is `reporter="source"`, as Istio's client sidecars and
// gateways report. There is no peer metadata exchange: the destination's workload, app and
// version come from the route table (the renderer writes them when one workload stands
// behind a Service, as for per-subset Services) and are `unknown` otherwise, as Istio
// writes them when the peer's metadata is missing. No mTLS: principals are `unknown` and
// `connection_security_policy` is `unknown`, as Istio writes it for source reports.
import type { Registry } from 'prom-client';
import type { RouteTable } from '../../model/route-table';

/** Envoy's default histogram buckets, which Istio keeps for its istio_* histograms (no statsHistogramBuckets annotation). */
export const ENVOY_DEFAULT_BUCKETS: readonly number[] = [0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000];

/** Istio's label names, in the order its proxies write them. */
export const ISTIO_LABELS = [
  'reporter', 'source_workload', 'source_canonical_service', 'source_canonical_revision', 'source_workload_namespace',
  'source_principal', 'source_app', 'source_version', 'source_cluster',
  'destination_workload', 'destination_workload_namespace', 'destination_principal', 'destination_app', 'destination_version',
  'destination_service', 'destination_canonical_service', 'destination_canonical_revision',
  'destination_service_name', 'destination_service_namespace', 'destination_cluster',
  'request_protocol', 'response_code', 'grpc_response_status', 'response_flags', 'connection_security_policy',
] as const;

/** The proxy's own pod, as Istio's node metadata describes it. */
export interface SourceWorkload {
  /** The Deployment's name (Istio derives it from the pod's owner). */
  readonly workload: string;
  readonly namespace: string;
  readonly app?: string;
  readonly version?: string;
  /** Istio's cluster ID. @default Kubernetes */
  readonly cluster?: string;
}

/** The destination half of a series' labels: made once per upstream (or special cluster), reused by every request to it. */
export interface DestinationLabels {
  readonly key: string;
  readonly labels: Readonly<Record<string, string>>;
}

const UNKNOWN = 'unknown';

/** `name.ns.svc.<domain>` → [name, ns]; other hosts (external names) are their own name, in no namespace. */
function serviceParts(host: string, clusterDomain: string): [string, string] {
  const suffix = `.svc.${clusterDomain}`;
  if (host.endsWith(suffix)) {
    const parts = host.slice(0, -suffix.length).split('.');
    if (parts.length === 2) return [parts[0], parts[1]];
  }
  return [host, UNKNOWN];
}

interface Series {
  readonly labels: Record<string, string>;
  count: number;
  readonly duration: Float64Array;
  durationSum: number;
  readonly requestBytes: Float64Array;
  requestBytesSum: number;
  readonly responseBytes: Float64Array;
  responseBytesSum: number;
}

type MetricValue = { labels: Record<string, string | number>; value: number; metricName?: string };

/** Where a value falls in the buckets (the first bound it does not exceed; length for +Inf). */
function bucketOf(v: number): number {
  const b = ENVOY_DEFAULT_BUCKETS;
  for (let i = 0; i < b.length; i++) if (v <= b[i]) return i;
  return b.length;
}

export class IstioMetrics {
  private readonly source: Record<string, string>;
  private readonly cluster: string;
  /** Series by destination, then by `code|flags|protocol`: every label value comes from a bounded set (the table, status codes, Envoy's flags). */
  private readonly series = new Map<string, Map<string, Series>>();
  private destinations = new Map<string, DestinationLabels>();
  private destinationsOf?: RouteTable;
  readonly passthrough: DestinationLabels;
  readonly blackhole: DestinationLabels;
  readonly unknown: DestinationLabels;

  constructor(source: SourceWorkload) {
    this.cluster = source.cluster || 'Kubernetes';
    const app = source.app || UNKNOWN;
    this.source = {
      reporter: 'source',
      source_workload: source.workload || UNKNOWN,
      // Istio's canonical service is the app label (else the workload's name); the revision the version label (else "latest").
      source_canonical_service: source.app || source.workload || UNKNOWN,
      source_canonical_revision: source.version || 'latest',
      source_workload_namespace: source.namespace || UNKNOWN,
      source_principal: UNKNOWN,
      source_app: app,
      source_version: source.version || UNKNOWN,
      source_cluster: this.cluster,
    };
    this.passthrough = this.special('PassthroughCluster');
    this.blackhole = this.special('BlackHoleCluster');
    this.unknown = this.special(UNKNOWN);
  }

  /** Envoy's catch-all clusters: no service, so no client-chosen host becomes a label. */
  private special(name: string): DestinationLabels {
    return this.make({ service: UNKNOWN, serviceName: name, serviceNamespace: UNKNOWN });
  }

  private make(d: { service: string; serviceName: string; serviceNamespace: string; workload?: string; workloadNamespace?: string; app?: string; version?: string }): DestinationLabels {
    const labels = {
      destination_workload: d.workload || UNKNOWN,
      destination_workload_namespace: d.workload ? (d.workloadNamespace ?? d.serviceNamespace) : UNKNOWN,
      destination_principal: UNKNOWN,
      destination_app: d.app || UNKNOWN,
      destination_version: d.version || UNKNOWN,
      destination_service: d.service,
      destination_canonical_service: d.app || d.workload || UNKNOWN,
      destination_canonical_revision: d.workload ? (d.version || 'latest') : UNKNOWN,
      destination_service_name: d.serviceName,
      destination_service_namespace: d.serviceNamespace,
      destination_cluster: d.workload ? this.cluster : UNKNOWN,
    };
    return { key: Object.values(labels).join('\u0000'), labels };
  }

  /**
   * The destination labels of an upstream host of `table` (a Service of the table, else a
   * host a route names): made once per table, so the request path only looks them up.
   */
  destination(host: string, table: RouteTable): DestinationLabels {
    if (this.destinationsOf !== table) { this.destinations = new Map(); this.destinationsOf = table; }
    let d = this.destinations.get(host);
    if (d) return d;
    const svc = table.services.find((s) => s.host === host);
    const t = svc?.telemetry;
    const service = t?.service ?? host;
    const [serviceName, serviceNamespace] = serviceParts(service, table.clusterDomain);
    const workloadNamespace = serviceParts(host, table.clusterDomain)[1];
    d = this.make({ service, serviceName, serviceNamespace, workload: t?.workload, workloadNamespace, app: t?.app, version: t?.version });
    this.destinations.set(host, d);
    return d;
  }

  /** Count one request. `flags` is Envoy's response flags ("-" for none); `ms` its duration; bytes as sent on the wire (headers and body). */
  record(dest: DestinationLabels, code: string, flags: string, protocol: string, ms: number, requestBytes: number, responseBytes: number, grpcStatus = ''): void {
    let byCode = this.series.get(dest.key);
    if (!byCode) { byCode = new Map(); this.series.set(dest.key, byCode); }
    const k = grpcStatus ? `${code}|${flags}|${protocol}|${grpcStatus}` : `${code}|${flags}|${protocol}`;
    let s = byCode.get(k);
    if (!s) {
      const n = ENVOY_DEFAULT_BUCKETS.length + 1;
      s = {
        labels: {
          ...this.source, ...dest.labels, request_protocol: protocol, response_code: code, grpc_response_status: grpcStatus,
          response_flags: flags, connection_security_policy: UNKNOWN,
        },
        count: 0, duration: new Float64Array(n), durationSum: 0, requestBytes: new Float64Array(n), requestBytesSum: 0,
        responseBytes: new Float64Array(n), responseBytesSum: 0,
      };
      byCode.set(k, s);
    }
    s.count++;
    s.duration[bucketOf(ms)]++;
    s.durationSum += ms;
    s.requestBytes[bucketOf(requestBytes)]++;
    s.requestBytesSum += requestBytes;
    s.responseBytes[bucketOf(responseBytes)]++;
    s.responseBytesSum += responseBytes;
  }

  /** TCP series (tunnels) by destination and flags: opened and closed connections, bytes each way. */
  private readonly tcp = new Map<string, { labels: Record<string, string>; opened: number; closed: number; sent: number; received: number }>();

  private tcpSeries(dest: DestinationLabels, flags: string) {
    const k = `${dest.key}\u0000${flags}`;
    let s = this.tcp.get(k);
    if (!s) {
      s = { labels: { ...this.source, ...dest.labels, request_protocol: 'tcp', response_flags: flags, connection_security_policy: UNKNOWN }, opened: 0, closed: 0, sent: 0, received: 0 };
      this.tcp.set(k, s);
    }
    return s;
  }

  /** A tunnel opened (Istio's istio_tcp_connections_opened_total). */
  tcpOpened(dest: DestinationLabels): void {
    this.tcpSeries(dest, '-').opened++;
  }

  /**
   * A tunnel closed: its bytes, as Istio's source reports them (sent: client to upstream;
   * received: upstream to client), under the flags it ended with.
   */
  tcpClosed(dest: DestinationLabels, flags: string, sent: number, received: number): void {
    const s = this.tcpSeries(dest, flags);
    s.closed++;
    s.sent += sent;
    s.received += received;
  }

  /** Bytes of a tunnel still open, counted as they pass (Envoy reports open connections' bytes periodically). */
  tcpBytes(dest: DestinationLabels, sent: number, received: number): void {
    const s = this.tcpSeries(dest, '-');
    s.sent += sent;
    s.received += received;
  }

  private *all(): IterableIterator<Series> {
    for (const m of this.series.values()) yield* m.values();
  }

  /** Adds the four metrics to a prom-client registry, rendered at scrape time from the counts. */
  register(registry: Registry): void {
    const metric = (name: string, help: string, type: 'counter' | 'histogram', values: () => MetricValue[]) => ({
      name, help, type, aggregator: 'sum', get: () => ({ name, help, type, aggregator: 'sum', values: values() }), reset: () => undefined,
    });
    const histogram = (name: string, pick: (s: Series) => [Float64Array, number]) => (): MetricValue[] => {
      const out: MetricValue[] = [];
      for (const s of this.all()) {
        const [counts, sum] = pick(s);
        let acc = 0;
        ENVOY_DEFAULT_BUCKETS.forEach((le, i) => { acc += counts[i]; out.push({ labels: { ...s.labels, le }, value: acc, metricName: `${name}_bucket` }); });
        out.push({ labels: { ...s.labels, le: '+Inf' }, value: s.count, metricName: `${name}_bucket` });
        out.push({ labels: s.labels, value: sum, metricName: `${name}_sum` });
        out.push({ labels: s.labels, value: s.count, metricName: `${name}_count` });
      }
      return out;
    };
    const register = (m: ReturnType<typeof metric>) => registry.registerMetric(m as unknown as Parameters<Registry['registerMetric']>[0]);
    register(metric('istio_requests_total', 'Requests, as Istio counts them (reporter="source")', 'counter',
      () => [...this.all()].map((s) => ({ labels: s.labels, value: s.count }))));
    register(metric('istio_request_duration_milliseconds', 'Request duration in milliseconds, as Istio measures it', 'histogram',
      histogram('istio_request_duration_milliseconds', (s) => [s.duration, s.durationSum])));
    register(metric('istio_request_bytes', 'Request size in bytes (headers and body)', 'histogram',
      histogram('istio_request_bytes', (s) => [s.requestBytes, s.requestBytesSum])));
    register(metric('istio_response_bytes', 'Response size in bytes (headers and body)', 'histogram',
      histogram('istio_response_bytes', (s) => [s.responseBytes, s.responseBytesSum])));
    const tcp = (pick: (s: { opened: number; closed: number; sent: number; received: number }) => number) => () =>
      [...this.tcp.values()].map((s) => ({ labels: s.labels, value: pick(s) }));
    register(metric('istio_tcp_connections_opened_total', 'TCP connections (CONNECT tunnels) opened', 'counter', tcp((s) => s.opened)));
    register(metric('istio_tcp_connections_closed_total', 'TCP connections (CONNECT tunnels) closed', 'counter', tcp((s) => s.closed)));
    register(metric('istio_tcp_sent_bytes_total', 'Bytes sent to the upstream through tunnels', 'counter', tcp((s) => s.sent)));
    register(metric('istio_tcp_received_bytes_total', 'Bytes received from the upstream through tunnels', 'counter', tcp((s) => s.received)));
  }
}
