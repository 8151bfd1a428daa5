// The pull-request comment of `plan --diff --comment`: one sticky comment (found again by
// its marker) with the traffic changes, a graph of the hosts that changed, the lint
// findings of the charts that changed, and the gates' verdict.
import { PlanDiff } from './diff';
import { mermaid } from './markdown';
import { TrafficPlan } from './model';

export const COMMENT_MARKER = '<!-- cdk8s-mesh-plan -->';

export interface ChartChange { readonly id: string; readonly diff: PlanDiff; readonly head?: TrafficPlan }

export function commentBody(base: string, changes: readonly ChartChange[], diffText: string, gates: readonly string[]): string {
  const out = [COMMENT_MARKER, '## Mesh traffic plan', ''];
  if (!changes.length) {
    out.push(`No traffic change against ${base}.`);
    return `${out.join('\n')}\n`;
  }
  out.push(`Against ${base}: ${changes.length} chart${changes.length === 1 ? '' : 's'} change${changes.length === 1 ? 's' : ''} traffic.`, '');
  if (gates.length) out.push('**Refused by the plan gates:**', ...gates.map((g) => `- ${g}`), '');
  out.push(diffText.replace(/^## Traffic changes against .*\n\n/, '').trim(), '');
  for (const c of changes) {
    if (!c.head) continue;
    const changed = new Set(c.diff.hosts.filter((h) => h.status !== 'removed').map((h) => h.host));
    const graph = mermaid(c.head, (h) => changed.has(`${h.host.replace(/\.svc\.cluster\.local$/, '')} (${h.bindings.join(', ')})`));
    if (graph.length > 1) out.push(`<details><summary>${c.id}: the hosts that changed, as a graph</summary>`, '', '```mermaid', ...graph, '```', '', '</details>', '');
    const findings = c.head.findings.filter((f) => f.severity !== 'info');
    if (findings.length) {
      out.push(`${c.id}: lint`, '', ...findings.map((f) => `- ${f.severity} ${f.code} ${f.object.kind} ${f.object.namespace ? `${f.object.namespace}/` : ''}${f.object.name}: ${f.message}`), '');
    }
  }
  return `${out.join('\n').trim()}\n`;
}
