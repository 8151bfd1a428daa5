// Where observe reads what the mesh did: Prometheus's query API, or the proxies' own
// /stats/prometheus (Istio's merged metrics port, 15020) when there is no Prometheus.
// Both give the same thing: Istio's standard metrics as the source proxies reported them.
import { parseExposition, Sample } from './exposition';

/** Requests of one destination with one outcome, over the window. */
export interface RequestCount {
  readonly service: string;
  readonly version: string;
  readonly workload: string;
  readonly code: string;
  readonly flags: string;
  readonly count: number;
}

/** The duration histogram of one destination (cumulative counts per upper bound, in ms). */
export interface LatencyHistogram {
  readonly service: string;
  readonly version: string;
  readonly workload: string;
  readonly buckets: ReadonlyArray<readonly [le: number, count: number]>;
}

export interface Observed {
  readonly requests: readonly RequestCount[];
  readonly latency: readonly LatencyHistogram[];
  /** What was read, in words: "Prometheus http://... over 5m", "3 proxies since they started". */
  readonly source: string;
}

/** Could not read the metrics (unreachable, an error answer, not Prometheus): not a verdict on the mesh. */
export class ObserveSourceError extends Error {}

const DEST = ['destination_service', 'destination_version', 'destination_workload'] as const;

const regexQuote = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
/** A PromQL double-quoted string's content: backslashes and quotes escaped (a regex's `\.` is written `\\.`). */
const promString = (s: string) => s.replace(/[\\"]/g, '\\$&');

interface PromVector { status: string; error?: string; data?: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> } }

async function promQuery(base: string, query: string, fetchImpl: typeof fetch): Promise<Array<{ metric: Record<string, string>; value: number }>> {
  const url = `${base.replace(/\/+$/, '')}/api/v1/query?query=${encodeURIComponent(query)}`;
  let r: Response;
  try {
    r = await fetchImpl(url, { signal: AbortSignal.timeout(30_000) });
  } catch (e) {
    throw new ObserveSourceError(`Prometheus at ${base} did not answer: ${(e as Error).message}`);
  }
  let body: PromVector;
  try {
    body = await r.json() as PromVector;
  } catch {
    throw new ObserveSourceError(`${url} answered ${r.status} with something that is not Prometheus's JSON`);
  }
  if (body.status !== 'success' || body.data?.resultType !== 'vector') {
    throw new ObserveSourceError(`Prometheus refused the query (${r.status}): ${body.error ?? body.status}\n  query: ${query}`);
  }
  return body.data.result.map((x) => ({ metric: x.metric, value: Number(x.value[1]) }));
}

/** The queries observe sends: the source proxies' reports of the chart's destination services over the window. */
export function promQueries(services: readonly string[], window: string): { requests: string; latency: string } {
  const sel = `reporter="source",destination_service=~"${promString(services.map(regexQuote).join('|'))}"`;
  return {
    requests: `sum by (${DEST.join(', ')}, response_code, response_flags) (increase(istio_requests_total{${sel}}[${window}]))`,
    latency: `sum by (${DEST.join(', ')}, le) (increase(istio_request_duration_milliseconds_bucket{${sel}}[${window}]))`,
  };
}

export async function fromPrometheus(base: string, services: readonly string[], window: string, fetchImpl: typeof fetch = fetch): Promise<Observed> {
  const q = promQueries(services, window);
  const [req, lat] = await Promise.all([promQuery(base, q.requests, fetchImpl), promQuery(base, q.latency, fetchImpl)]);
  const requests = req.map(({ metric: m, value }) => ({
    service: m.destination_service ?? 'unknown', version: m.destination_version ?? 'unknown', workload: m.destination_workload ?? 'unknown',
    code: m.response_code ?? '0', flags: m.response_flags ?? '-', count: value,
  }));
  return { requests, latency: histograms(lat.map(({ metric, value }) => ({ name: 'istio_request_duration_milliseconds_bucket', labels: metric, value }))), source: `Prometheus ${base} over ${window}` };
}

/** Bucket samples grouped per destination. */
function histograms(samples: readonly Sample[]): LatencyHistogram[] {
  const by = new Map<string, { service: string; version: string; workload: string; b: Map<number, number> }>();
  for (const s of samples) {
    if (s.name !== 'istio_request_duration_milliseconds_bucket') continue;
    const key = DEST.map((d) => s.labels[d] ?? 'unknown').join('\u0000');
    let h = by.get(key);
    if (!h) { h = { service: s.labels.destination_service ?? 'unknown', version: s.labels.destination_version ?? 'unknown', workload: s.labels.destination_workload ?? 'unknown', b: new Map() }; by.set(key, h); }
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    h.b.set(le, (h.b.get(le) ?? 0) + s.value);
  }
  return [...by.values()].map((h) => ({ service: h.service, version: h.version, workload: h.workload, buckets: [...h.b.entries()].sort((a, b) => a[0] - b[0]) }));
}

function countsOf(samples: readonly Sample[]): Map<string, RequestCount> {
  const by = new Map<string, RequestCount>();
  for (const s of samples) {
    if (s.name !== 'istio_requests_total' || s.labels.reporter !== 'source') continue;
    const r = {
      service: s.labels.destination_service ?? 'unknown', version: s.labels.destination_version ?? 'unknown', workload: s.labels.destination_workload ?? 'unknown',
      code: s.labels.response_code ?? '0', flags: s.labels.response_flags ?? '-',
    };
    const key = Object.values(r).join('\u0000');
    by.set(key, { ...r, count: (by.get(key)?.count ?? 0) + s.value });
  }
  return by;
}

/** A proxy's stats URL: as given when it has a path, else Istio's /stats/prometheus. */
export function statsUrl(u: string): string {
  const url = new URL(u);
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/stats/prometheus';
  return url.toString();
}

async function scrapeAll(urls: readonly string[], fetchImpl: typeof fetch): Promise<Sample[]> {
  const texts = await Promise.all(urls.map(async (u) => {
    let r: Response;
    try {
      r = await fetchImpl(u, { signal: AbortSignal.timeout(10_000) });
    } catch (e) {
      throw new ObserveSourceError(`proxy ${u} did not answer: ${(e as Error).message}`);
    }
    if (!r.ok) throw new ObserveSourceError(`proxy ${u} answered ${r.status}`);
    try {
      return parseExposition(await r.text());
    } catch (e) {
      throw new ObserveSourceError(`proxy ${u}: ${(e as Error).message}`);
    }
  }));
  return texts.flat().filter((s) => s.name.startsWith('istio_request'));
}

/**
 * The proxies' counters read directly: with a window, read twice that far apart and the
 * difference taken (counters that went down, a restarted proxy, count from zero); without,
 * everything since each proxy started.
 */
export async function fromProxies(urls: readonly string[], windowMs: number | undefined, fetchImpl: typeof fetch = fetch, sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))): Promise<Observed> {
  const stats = urls.map(statsUrl);
  const n = `${stats.length} prox${stats.length === 1 ? 'y' : 'ies'}`;
  if (windowMs === undefined) {
    const s = await scrapeAll(stats, fetchImpl);
    return { requests: [...countsOf(s).values()], latency: histograms(s), source: `${n} (${stats.join(', ')}), since they started` };
  }
  const before = await scrapeAll(stats, fetchImpl);
  await sleep(windowMs);
  const after = await scrapeAll(stats, fetchImpl);
  const b = countsOf(before);
  const requests = [...countsOf(after).entries()].map(([k, a]) => {
    const old = b.get(k)?.count ?? 0;
    return { ...a, count: a.count >= old ? a.count - old : a.count };
  }).filter((r) => r.count > 0);
  const hb = histograms(before);
  const latency = histograms(after).map((h) => {
    const old = hb.find((o) => o.service === h.service && o.version === h.version && o.workload === h.workload);
    const oldOf = (le: number) => old?.buckets.find((x) => x[0] === le)?.[1] ?? 0;
    const reset = h.buckets.some(([le, c]) => c < oldOf(le));
    return { ...h, buckets: h.buckets.map(([le, c]) => [le, reset ? c : c - oldOf(le)] as const) };
  });
  return { requests, latency, source: `${n} (${stats.join(', ')}) over ${Math.round(windowMs / 1000)}s` };
}
