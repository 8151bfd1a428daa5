// Planned next to observed: for each host of a chart's traffic plan, the split its rules
// ask for and the split, errors, response flags and latency the source proxies reported.
import { short } from '../plan/graph';
import type { PlanHost, PlanRule, TrafficPlan } from '../plan/model';
import type { LatencyHistogram, Observed, RequestCount } from './sources';

export interface DestinationReport {
  /** `host` or `host subset`, as the plan writes it. */
  readonly name: string;
  readonly service: string;
  readonly subset?: string;
  /** How its series are picked out: `version=v1`, `workload=ns/name`, or every series of the service. */
  readonly selects: string;
  /** The share the plan gives it; absent when the host's rules split traffic by match (no single planned split). */
  readonly plannedPercent?: number;
  readonly requests: number;
  readonly observedPercent?: number;
  /** Observed minus planned, in percentage points. */
  readonly deviation?: number;
  /** Share of requests answered 5xx or not answered (code 0). */
  readonly errorPercent?: number;
  readonly codes: Readonly<Record<string, number>>;
  /** Envoy's response flags seen, with counts ("-", none, left out). */
  readonly flags: Readonly<Record<string, number>>;
  readonly p50Ms?: number;
  readonly p99Ms?: number;
}

export interface HostReport {
  readonly host: string;
  readonly bindings: readonly string[];
  readonly virtualService: string;
  readonly rules: ReadonlyArray<{ readonly when: string; readonly to: string }>;
  /** Why the host's split is not compared (several rules split the traffic by match), if it is not. */
  readonly notCompared?: string;
  readonly requests: number;
  readonly destinations: readonly DestinationReport[];
}

export interface GateOptions {
  /** Fail when a destination's observed share is off its planned share by more than this many points. */
  readonly maxDeviation?: number;
  /** Fail when a destination answers more than this share of its requests with 5xx (or not at all). */
  readonly maxErrorRate?: number;
  /** A compared host with fewer requests than this fails the gate (too few to judge). @default 1 */
  readonly minRequests?: number;
  /** Only these hosts (as the plan names them); every host when empty. Named hosts without traffic fail. */
  readonly hosts?: readonly string[];
}

export interface ObserveReport {
  readonly chart: string;
  readonly dataPlane: string;
  readonly source: string;
  readonly hosts: readonly HostReport[];
  readonly gate?: { readonly options: GateOptions; readonly passed: boolean; readonly failures: readonly string[] };
}

const round1 = (n: number) => Math.round(n * 10) / 10;

/** Prometheus's histogram_quantile: linear inside the bucket; the highest finite bound when the rank is in +Inf. */
export function quantile(q: number, buckets: ReadonlyArray<readonly [number, number]>): number | undefined {
  if (!buckets.length) return undefined;
  const total = buckets[buckets.length - 1][1];
  if (!(total > 0)) return undefined;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of buckets) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      if (count === prevCount) return le;
      return prevLe + (le - prevLe) * ((rank - prevCount) / (count - prevCount));
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

/** The host's rules in words, and the single split they plan if there is one. */
function plannedSplit(h: PlanHost): { split?: PlanRule; why?: string } {
  const routing = h.rules.filter((r) => r.destinations.length > 0);
  if (!routing.length) return { why: 'its rules redirect; nothing is routed' };
  const key = (r: PlanRule) => JSON.stringify(r.destinations.map((d) => [d.host, d.subset ?? '', d.percent]));
  if (routing.every((r) => key(r) === key(routing[0]))) return { split: routing[0] };
  // Istio's metrics have no rule label: the split seen is the mix of the rules' traffic.
  return { why: `${routing.length} rules with different destinations split its traffic by match; Istio's metrics carry no rule, so the split seen is their mix` };
}

export function observeReport(chart: string, dataPlane: string, plan: TrafficPlan, observed: Observed, gate?: GateOptions): ObserveReport {
  const failures: string[] = [];
  const only = gate?.hosts?.length ? new Set(gate.hosts) : undefined;
  const hosts: HostReport[] = [];
  for (const h of plan.hosts) {
    if (only && !only.has(h.host)) continue;
    const { split, why } = plannedSplit(h);
    // Every destination any rule names, once.
    const dests = new Map<string, { service: string; subset?: string }>();
    for (const r of h.rules) for (const d of r.destinations) dests.set(`${d.host}|${d.subset ?? ''}`, { service: d.host, subset: d.subset });
    const reports = [...dests.values()].map((d) => destinationReport(plan, d.service, d.subset, observed, split));
    const requests = reports.reduce((a, d) => a + d.requests, 0);
    const withShares = reports.map((d) => {
      if (!requests) return d;
      const observedPercent = round1((d.requests / requests) * 100);
      return { ...d, observedPercent, ...(d.plannedPercent !== undefined ? { deviation: round1(observedPercent - d.plannedPercent) } : {}) };
    });
    hosts.push({
      host: h.host, bindings: h.bindings, virtualService: h.virtualService,
      rules: h.rules.map((r) => ({ when: r.match.length ? r.match.join('; or ') : 'every request', to: r.destinations.map((d) => `${short(d.host)}${d.subset ? ` ${d.subset}` : ''} ${d.percent}%`).join(', ') || r.policies.join(', ') })),
      ...(why ? { notCompared: why } : {}),
      requests: Math.round(requests),
      destinations: withShares,
    });
  }
  if (gate && (gate.maxDeviation !== undefined || gate.maxErrorRate !== undefined)) {
    const min = gate.minRequests ?? 1;
    for (const h of hosts) {
      if (h.requests === 0 && !only) continue; // quiet hosts are judged only when named
      if (h.requests < min) { failures.push(`${h.host}: ${h.requests} request(s) seen, fewer than ${min}: too few to judge`); continue; }
      for (const d of h.destinations) {
        if (gate.maxDeviation !== undefined && d.deviation !== undefined && Math.abs(d.deviation) > gate.maxDeviation) {
          failures.push(`${h.host}: ${d.name} got ${d.observedPercent}% of ${h.requests} requests, planned ${d.plannedPercent}% (${d.deviation > 0 ? '+' : ''}${d.deviation} points, more than ${gate.maxDeviation})`);
        }
        if (gate.maxErrorRate !== undefined && d.errorPercent !== undefined && d.errorPercent > gate.maxErrorRate) {
          const flags = Object.entries(d.flags).map(([f, n]) => `${f} ${Math.round(n)}`).join(', ');
          failures.push(`${h.host}: ${d.name} failed ${d.errorPercent}% of its ${Math.round(d.requests)} requests (more than ${gate.maxErrorRate}%)${flags ? `; flags ${flags}` : ''}`);
        }
      }
    }
  }
  return {
    chart, dataPlane, source: observed.source, hosts,
    ...(gate && (gate.maxDeviation !== undefined || gate.maxErrorRate !== undefined) ? { gate: { options: gate, passed: failures.length === 0, failures } } : {}),
  };
}

function destinationReport(plan: TrafficPlan, service: string, subset: string | undefined, observed: Observed, split: PlanRule | undefined): DestinationReport {
  // A subset is its pods' version label when it has one (Istio's destination_version), else its one workload.
  const sub = subset ? plan.policies.find((p) => p.host === service)?.subsets.find((s) => s.name === subset) : undefined;
  let selects = 'every series of the service';
  let pick: (x: { version: string; workload: string }) => boolean = () => true;
  if (subset) {
    if (sub?.labels.version) { const v = sub.labels.version; selects = `version=${v}`; pick = (x) => x.version === v; }
    else if (sub?.workloads.length === 1) { const w = sub.workloads[0].split('/')[1]; selects = `workload=${sub.workloads[0]}`; pick = (x) => x.workload === w; }
    else { selects = 'nothing: the subset has no version label and not exactly one workload'; pick = () => false; }
  }
  const mine = (x: RequestCount | LatencyHistogram) => x.service === service && pick(x);
  const rows = observed.requests.filter(mine);
  const requests = rows.reduce((a, r) => a + r.count, 0);
  const codes: Record<string, number> = {};
  const flags: Record<string, number> = {};
  let errors = 0;
  for (const r of rows) {
    codes[r.code] = (codes[r.code] ?? 0) + r.count;
    if (r.flags !== '-') flags[r.flags] = (flags[r.flags] ?? 0) + r.count;
    if (r.code === '0' || r.code.startsWith('5')) errors += r.count;
  }
  // Merge the histograms of every series picked.
  const merged = new Map<number, number>();
  for (const h of observed.latency.filter(mine)) for (const [le, c] of h.buckets) merged.set(le, (merged.get(le) ?? 0) + c);
  const buckets = [...merged.entries()].sort((a, b) => a[0] - b[0]);
  const planned = split?.destinations.find((d) => d.host === service && d.subset === subset)?.percent;
  const p50 = quantile(0.5, buckets);
  const p99 = quantile(0.99, buckets);
  return {
    name: `${short(service)}${subset ? ` ${subset}` : ''}`, service, ...(subset ? { subset } : {}), selects,
    ...(split ? { plannedPercent: planned ?? 0 } : {}),
    requests: Math.round(requests * 10) / 10,
    ...(requests > 0 ? { errorPercent: round1((errors / requests) * 100) } : {}),
    codes: Object.fromEntries(Object.entries(codes).map(([k, v]) => [k, Math.round(v)])),
    flags: Object.fromEntries(Object.entries(flags).map(([k, v]) => [k, Math.round(v)])),
    ...(p50 !== undefined ? { p50Ms: round1(p50) } : {}),
    ...(p99 !== undefined ? { p99Ms: round1(p99) } : {}),
  };
}
