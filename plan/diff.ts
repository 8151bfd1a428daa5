// What a change does to traffic: two plans of one chart compared host by host. Rules
// are paired by their match (the words of it), so a reordered or edited rule reads as
// changed rather than as one removed and one added.
import { describeObject, K8s } from '../lint/analyze';
import { short } from './graph';
import { PlanHost, PlanProgressive, PlanRule, TrafficPlan } from './model';

export interface WeightShift {
  readonly host: string;
  /** The rule, by its position in the head and its match in words: "rule 2 (header end-user = jason)". */
  readonly rule: string;
  readonly destination: string;
  readonly from: number;
  readonly to: number;
}

export interface HostDiff {
  readonly host: string;
  readonly status: 'added' | 'removed' | 'changed';
  /** One line per difference, in words. */
  readonly lines: readonly string[];
  readonly shifts: readonly WeightShift[];
  readonly rulesRemoved: number;
}

export interface PlanDiff {
  readonly hosts: readonly HostDiff[];
  /** Releases a controller drives, added, removed or with other steps, analysis or targets: one line each. */
  readonly releases: readonly string[];
  readonly objectsAdded: readonly string[];
  readonly objectsRemoved: readonly string[];
  readonly summary: string;
}

const hostKey = (h: PlanHost) => `${short(h.host)} (${h.bindings.join(', ')})`;
const when = (r: PlanRule) => (r.match.length ? r.match.join('; or ') : 'every request');
const destName = (d: { host: string; subset?: string; port?: number }) => `${short(d.host)}${d.subset ? ` ${d.subset}` : ''}${d.port ? ` :${d.port}` : ''}`;
const signed = (n: number) => (n > 0 ? `+${n}` : String(n));

function ruleDiff(host: string, rule: string, base: PlanRule, head: PlanRule): { lines: string[]; shifts: WeightShift[] } {
  const lines: string[] = [];
  const shifts: WeightShift[] = [];
  const baseW = new Map(base.destinations.map((d) => [destName(d), d.percent]));
  const headW = new Map(head.destinations.map((d) => [destName(d), d.percent]));
  for (const name of new Set([...baseW.keys(), ...headW.keys()])) {
    const from = baseW.get(name) ?? 0;
    const to = headW.get(name) ?? 0;
    if (from !== to) {
      lines.push(`${name} ${from}% -> ${to}% (${signed(to - from)})`);
      shifts.push({ host, rule, destination: name, from, to });
    }
  }
  for (const p of head.policies) if (!base.policies.includes(p)) lines.push(`added: ${p}`);
  for (const p of base.policies) if (!head.policies.includes(p)) lines.push(`removed: ${p}`);
  return { lines, shifts };
}

function hostDiff(base: PlanHost | undefined, head: PlanHost | undefined, managedBy?: PlanProgressive): HostDiff | undefined {
  const h = (head ?? base)!;
  const name = short(h.host);
  if (!base) {
    return { host: hostKey(h), status: 'added', rulesRemoved: 0, shifts: [], lines: head!.rules.map((r, i) => `rule ${i + 1}: ${when(r)} -> ${r.destinations.map((d) => `${destName(d)} ${d.percent}%`).join(', ') || '(no route)'}`) };
  }
  if (!head) return { host: hostKey(h), status: 'removed', rulesRemoved: base.rules.length, shifts: [], lines: [`${base.rules.length} rule(s) removed with the host`] };
  const lines: string[] = [];
  const shifts: WeightShift[] = [];
  let rulesRemoved = 0;
  const baseByMatch = new Map(base.rules.map((r, i) => [when(r), { r, i }]));
  const headByMatch = new Map(head.rules.map((r, i) => [when(r), { r, i }]));
  head.rules.forEach((r, i) => {
    const b = baseByMatch.get(when(r));
    if (!b) {
      lines.push(`rule ${i + 1} added: ${when(r)} -> ${r.destinations.map((d) => `${destName(d)} ${d.percent}%`).join(', ') || '(no route)'}${r.policies.length ? ` (${r.policies.join('; ')})` : ''}`);
      return;
    }
    const d = ruleDiff(name, `rule ${i + 1} (${when(r)})`, b.r, r);
    if (b.i !== i) lines.push(`rule "${when(r)}" moved from ${b.i + 1} to ${i + 1}`);
    // The controller writes these weights as it steps: a change to them is not the chart's traffic shift.
    for (const l of d.lines) lines.push(`rule ${i + 1} (${when(r)}): ${l}${managedBy && d.shifts.some((x) => l.startsWith(`${x.destination} `)) ? ` (starting weights; ${managedBy.controller} moves them, not gated)` : ''}`);
    if (!managedBy) shifts.push(...d.shifts);
  });
  base.rules.forEach((r, i) => {
    if (!headByMatch.has(when(r))) {
      rulesRemoved++;
      lines.push(`rule ${i + 1} removed: ${when(r)} -> ${r.destinations.map((d) => `${destName(d)} ${d.percent}%`).join(', ') || '(no route)'}`);
    }
  });
  return lines.length ? { host: hostKey(h), status: 'changed', lines, shifts, rulesRemoved } : undefined;
}

/** The difference between the base and head plans of one chart (either may be absent). */
export function diffPlans(base: TrafficPlan | undefined, head: TrafficPlan | undefined, objects: { base: readonly string[]; head: readonly string[] }): PlanDiff {
  const b = new Map((base?.hosts ?? []).map((h) => [hostKey(h), h]));
  const h = new Map((head?.hosts ?? []).map((x) => [hostKey(x), x]));
  const managed = (x: PlanHost | undefined) => (head?.progressive ?? []).find((p) => x && p.managedVirtualService === x.virtualService);
  const hosts = [...new Set([...b.keys(), ...h.keys()])].sort()
    .map((k) => hostDiff(b.get(k), h.get(k), managed(h.get(k)))).filter((d): d is HostDiff => d !== undefined);
  const releases = releaseDiff(base?.progressive ?? [], head?.progressive ?? []);
  const objectsAdded = objects.head.filter((o) => !objects.base.includes(o));
  const objectsRemoved = objects.base.filter((o) => !objects.head.includes(o));
  return { hosts, releases, objectsAdded, objectsRemoved, summary: summarize(hosts, releases, objectsAdded, objectsRemoved) };
}

/** Controller-driven releases, compared by object: what the reviewer approves instead of weights. */
function releaseDiff(base: readonly PlanProgressive[], head: readonly PlanProgressive[]): string[] {
  const out: string[] = [];
  const b = new Map(base.map((p) => [p.object, p]));
  for (const p of head) {
    const was = b.get(p.object);
    if (!was) { out.push(`${p.object} (${p.controller}) added: steps ${p.steps}; analysis ${p.analysis}`); continue; }
    for (const k of ['workload', 'steps', 'analysis', 'moves'] as const) {
      if (was[k] !== p[k]) out.push(`${p.object} (${p.controller}): ${k} ${was[k]} => ${p[k]}`);
    }
  }
  for (const p of base) if (!head.some((x) => x.object === p.object)) out.push(`${p.object} (${p.controller}) removed: the chart writes its splits again`);
  return out;
}

/** "3 hosts changed; largest weight shift 20 points on reviews.bookinfo" */
function summarize(hosts: readonly HostDiff[], releases: readonly string[], added: readonly string[], removed: readonly string[]): string {
  if (!hosts.length && !releases.length && !added.length && !removed.length) return 'no traffic change';
  const parts: string[] = [];
  for (const s of ['changed', 'added', 'removed'] as const) {
    const n = hosts.filter((x) => x.status === s).length;
    if (n) parts.push(`${n} host${n === 1 ? '' : 's'} ${s}`);
  }
  const top = hosts.flatMap((x) => x.shifts).sort((x, y) => Math.abs(y.to - y.from) - Math.abs(x.to - x.from))[0];
  if (top) parts.push(`largest weight shift ${Math.abs(top.to - top.from)} points on ${top.host}`);
  if (releases.length) parts.push(`${releases.length} progressive-delivery change${releases.length === 1 ? '' : 's'}`);
  if (!hosts.length) parts.push('routes unchanged');
  if (added.length || removed.length) parts.push(`${added.length} object(s) added, ${removed.length} removed`);
  return parts.join('; ');
}

/** A chart's objects by name ("Service bookinfo/reviews"), for "objects added/removed". */
export const objectNames = (objs: ReadonlyArray<Pick<K8s, 'kind' | 'metadata'>>) => objs.map((o) => describeObject(o)).sort();

export function diffMarkdown(chart: string, d: PlanDiff): string {
  const out = [`### ${chart}: ${d.summary}`, ''];
  for (const h of d.hosts) {
    const [host, ...binding] = h.host.split(' (');
    out.push(`- **\`${host}\`** (${binding.join(' (')} ${h.status}`);
    for (const l of h.lines) out.push(`  - ${l}`);
  }
  for (const l of d.releases) out.push(`- release: ${l}`);
  if (d.objectsAdded.length) out.push(`- objects added: ${d.objectsAdded.join(', ')}`);
  if (d.objectsRemoved.length) out.push(`- objects removed: ${d.objectsRemoved.join(', ')}`);
  return `${out.join('\n')}\n`;
}
