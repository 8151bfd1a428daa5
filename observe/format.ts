// An observe report as text (a terminal), Markdown (a pull-request comment) or JSON.
import type { DestinationReport, HostReport, ObserveReport } from './report';

const pct = (n: number | undefined) => (n === undefined ? '-' : `${n}%`);
const signed = (n: number | undefined) => (n === undefined ? '-' : `${n > 0 ? '+' : ''}${n}`);
const ms = (n: number | undefined) => (n === undefined ? '-' : `${n} ms`);
const flagsOf = (d: DestinationReport) => Object.entries(d.flags).map(([f, n]) => `${f} ${n}`).join(', ') || '-';
const codesOf = (d: DestinationReport) => Object.entries(d.codes).sort().map(([c, n]) => `${c} ${n}`).join(', ') || '-';

const COLUMNS = ['destination', 'planned', 'observed', 'Δ points', 'requests', 'errors', 'codes', 'flags', 'p50', 'p99'];
const row = (d: DestinationReport) => [d.name, pct(d.plannedPercent), pct(d.observedPercent), signed(d.deviation), String(Math.round(d.requests)), pct(d.errorPercent), codesOf(d), flagsOf(d), ms(d.p50Ms), ms(d.p99Ms)];

const title = (r: ObserveReport) => `${r.chart} (${r.dataPlane}): planned and observed, from ${r.source}`;
const hostLine = (h: HostReport) => `${h.host} (${h.bindings.join(', ')}) · ${h.virtualService} · ${h.requests} request(s)`;

function gateLines(r: ObserveReport): string[] {
  if (!r.gate) return [];
  const o = r.gate.options;
  const what = [o.maxDeviation !== undefined ? `--max-deviation ${o.maxDeviation}` : '', o.maxErrorRate !== undefined ? `--max-error-rate ${o.maxErrorRate}` : ''].filter(Boolean).join(' ');
  return r.gate.passed ? [`gate (${what}): passed`] : [`gate (${what}): FAILED`, ...r.gate.failures.map((f) => `  - ${f}`)];
}

export function observeText(r: ObserveReport): string {
  const out = [title(r), ''];
  for (const h of r.hosts) {
    out.push(hostLine(h));
    h.rules.forEach((rule, i) => out.push(`  rule ${i + 1}: ${rule.when} -> ${rule.to}`));
    if (h.notCompared) out.push(`  not compared: ${h.notCompared}`);
    const rows = [COLUMNS, ...h.destinations.map(row)];
    const widths = COLUMNS.map((_, c) => Math.max(...rows.map((x) => x[c].length)));
    for (const x of rows) out.push(`  ${x.map((v, c) => v.padEnd(widths[c])).join('  ').trimEnd()}`);
    out.push('');
  }
  out.push(...gateLines(r));
  return `${out.join('\n').trimEnd()}\n`;
}

const cell = (s: string) => s.replace(/\|/g, '\\|');

export function observeMarkdown(r: ObserveReport): string {
  const out = [`### ${cell(title(r))}`, ''];
  if (r.gate) out.push(r.gate.passed ? `**Gate passed** (${gateLines(r)[0].replace(/^gate \((.*)\): passed$/, '$1')})` : '**Gate failed**', ...r.gate.failures.map((f) => `- ${cell(f)}`), '');
  for (const h of r.hosts) {
    out.push(`#### ${cell(h.host)}`, '', `${cell(h.bindings.join(', '))} · ${cell(h.virtualService)} · ${h.requests} request(s)`, '');
    h.rules.forEach((rule, i) => out.push(`${i + 1}. ${cell(rule.when)} → ${cell(rule.to)}`));
    if (h.notCompared) out.push('', `_Not compared: ${cell(h.notCompared)}._`);
    out.push('', `| ${COLUMNS.join(' | ')} |`, `| ${COLUMNS.map(() => '---').join(' | ')} |`);
    for (const d of h.destinations) out.push(`| ${row(d).map(cell).join(' | ')} |`);
    out.push('');
  }
  return `${out.join('\n').trimEnd()}\n`;
}

export function observeJson(r: ObserveReport): string {
  return `${JSON.stringify(r, null, 2)}\n`;
}
