// A traffic plan as Markdown for a pull request: tables per host, destination policies,
// gateways, who calls whom, lint findings, and a Mermaid flowchart (GitHub and GitLab
// render it in Markdown).
import { PlanDestination, PlanHost, TrafficPlan } from './model';

/** reviews.bookinfo.svc.cluster.local -> reviews.bookinfo */
export const short = (host: string) => host.replace(/\.svc\.cluster\.local$/, '');
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const dest = (d: PlanDestination) => `${short(d.host)}${d.subset ? ` ${d.subset}` : ''}${d.port ? ` :${d.port}` : ''}`;

export interface PlanHeader {
  readonly chart: string;
  /** e.g. "istio", or "node-sidecar (the same rules, in ConfigMap mesh-routes)". */
  readonly dataPlane: string;
}

export function planMarkdown(plan: TrafficPlan, header: PlanHeader): string {
  const out: string[] = [];
  out.push(`# Traffic plan: ${header.chart}`, '');
  out.push(`Data plane: ${header.dataPlane}. Objects: ${Object.entries(plan.counts).sort(([a], [b]) => a.localeCompare(b)).map(([k, n]) => `${n} ${k}`).join(', ') || 'none'}.`, '');

  out.push('## Routes', '');
  if (plan.hosts.length === 0) out.push('No VirtualService: requests go to Services as Kubernetes balances them.', '');
  for (const h of plan.hosts) {
    out.push(`### ${short(h.host)} (${h.bindings.map((b) => (b === 'mesh' ? 'mesh' : `gateway ${b}`)).join(', ')})`, '');
    out.push(`VirtualService ${h.virtualService}. Rules in order; the first that matches wins.`, '');
    out.push('| # | when | to | also |', '| --- | --- | --- | --- |');
    h.rules.forEach((r, i) => {
      const when = r.match.length ? r.match.join('; or ') : 'every request';
      const to = r.destinations.length ? r.destinations.map((d) => `${dest(d)} ${d.percent}%`).join(', ') : '(no route)';
      out.push(`| ${i + 1}${r.name ? ` ${cell(r.name)}` : ''} | ${cell(when)} | ${cell(to)} | ${cell(r.policies.join('; '))} |`);
    });
    out.push('');
  }

  if (plan.policies.length) {
    out.push('## Destination policies', '');
    for (const p of plan.policies) {
      out.push(`### ${short(p.host)}`, '', `DestinationRule ${p.destinationRule}${p.policies.length ? `: ${p.policies.join('; ')}` : ''}.`, '');
      if (p.subsets.length) {
        out.push('| subset | pods labelled | workloads | policy |', '| --- | --- | --- | --- |');
        for (const s of p.subsets) {
          out.push(`| ${s.name} | ${cell(Object.entries(s.labels).map(([k, v]) => `${k}=${v}`).join(', '))} | ${cell(s.workloads.join(', ') || 'none in this chart')} | ${cell(s.policies.join('; '))} |`);
        }
        out.push('');
      }
    }
  }

  if (plan.gateways.length) {
    out.push('## Gateways', '', '| gateway | pods | port | hosts | TLS |', '| --- | --- | --- | --- | --- |');
    for (const g of plan.gateways) {
      for (const s of g.servers) {
        out.push(`| ${g.name} | ${cell(Object.entries(g.selector).map(([k, v]) => `${k}=${v}`).join(', '))} | ${s.port} | ${cell(s.hosts.join(', '))} | ${cell(s.tls ?? '')} |`);
      }
    }
    out.push('');
  }

  if (plan.calls.length) {
    out.push('## Who calls whom', '', '| caller | calls | caller in the mesh |', '| --- | --- | --- |');
    for (const c of plan.calls) out.push(`| ${c.from} | ${short(c.to)} | ${c.inMesh ? 'yes' : 'no: its calls bypass the routes above'} |`);
    out.push('');
  }

  out.push('## Lint', '');
  if (plan.findings.length === 0) out.push('No findings.', '');
  else {
    for (const sev of ['error', 'warning', 'info'] as const) {
      const fs = plan.findings.filter((f) => f.severity === sev);
      if (!fs.length) continue;
      out.push(`${fs.length} ${sev}${fs.length === 1 ? '' : 's'}:`, '');
      for (const f of fs) out.push(`- ${f.code} ${f.object.kind} ${f.object.namespace ? `${f.object.namespace}/` : ''}${f.object.name}: ${f.message}`);
      out.push('');
    }
  }

  out.push('## Graph', '', '```mermaid', ...mermaid(plan), '```', '');
  return out.join('\n');
}

/** The flowchart: callers and gateways -> hosts -> subsets or Services -> workloads. */
export function mermaid(plan: TrafficPlan, only?: (h: PlanHost) => boolean): string[] {
  const ids = new Map<string, string>();
  const node = (key: string) => {
    if (!ids.has(key)) ids.set(key, `n${ids.size}`);
    return ids.get(key)!;
  };
  const label = (s: string) => `"${s.replace(/"/g, '#quot;')}"`;
  const nodes = new Map<string, string>();
  const edges: string[] = [];
  const addNode = (key: string, shape: (l: string) => string, text: string) => { if (!nodes.has(key)) nodes.set(key, `  ${node(key)}${shape(label(text))}`); return node(key); };
  const workload = (w: string) => addNode(`w:${w}`, (l) => `[${l}]`, w);
  const hostNode = (h: string) => addNode(`h:${h}`, (l) => `(${l})`, short(h));
  const hosts = plan.hosts.filter(only ?? (() => true));
  const policyOf = (host: string) => plan.policies.find((p) => p.host === host);
  const serviceOf = (host: string) => plan.services.find((s) => s.host === host);

  for (const h of hosts) {
    const hn = hostNode(h.host);
    for (const b of h.bindings.filter((x) => x !== 'mesh')) {
      const g = addNode(`g:${b}`, (l) => `{{${l}}}`, `gateway ${b}`);
      edges.push(`  ${g} --> ${hn}`);
    }
    h.rules.forEach((r, i) => {
      for (const d of r.destinations) {
        const key = `d:${d.host}:${d.subset ?? ''}`;
        const dn = addNode(key, (l) => `[/${l}/]`, `${short(d.host)}${d.subset ? ` ${d.subset}` : ''}`);
        const when = r.match.length ? r.match.join(' or ') : h.rules.length > 1 ? 'otherwise' : '';
        edges.push(`  ${hn} -->|${label(`${h.rules.length > 1 ? `${i + 1}. ` : ''}${when ? `${when}: ` : ''}${d.percent}%`)}| ${dn}`);
        const workloads = d.subset ? policyOf(d.host)?.subsets.find((s) => s.name === d.subset)?.workloads ?? [] : serviceOf(d.host)?.workloads ?? [];
        for (const w of workloads) {
          const e = `  ${dn} --> ${workload(w)}`;
          if (!edges.includes(e)) edges.push(e);
        }
      }
    });
  }
  for (const c of plan.calls) {
    if (!hosts.some((h) => h.host === c.to) && only) continue;
    const target = hosts.some((h) => h.host === c.to) ? hostNode(c.to) : addNode(`h:${c.to}`, (l) => `(${l})`, short(c.to));
    edges.push(`  ${workload(c.from)} -.->|${label(c.inMesh ? 'calls' : 'calls, outside the mesh')}| ${target}`);
  }
  return ['flowchart LR', ...nodes.values(), ...edges];
}
