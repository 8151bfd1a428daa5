// A traffic plan as Markdown for a pull request: tables per host, destination policies,
// gateways, who calls whom, lint findings, and a Mermaid flowchart (GitHub and GitLab
// render it in Markdown).
import { GraphEdge, GraphNodeKind, routeLabel, short, trafficGraph } from './graph';
import { PlanDestination, PlanHost, TrafficPlan } from './model';

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
    const managed = plan.progressive.find((p) => p.managedVirtualService === h.virtualService);
    if (managed) out.push(`Weights as written, where ${managed.controller} starts; it moves them (${managed.object}, see Progressive delivery).`, '');
    out.push('| # | when | to | also |', '| --- | --- | --- | --- |');
    h.rules.forEach((r, i) => {
      const when = r.match.length ? r.match.join('; or ') : 'every request';
      const to = r.destinations.length ? r.destinations.map((d) => `${dest(d)} ${d.percent}%`).join(', ') : '(no route)';
      out.push(`| ${i + 1}${r.name ? ` ${cell(r.name)}` : ''} | ${cell(when)} | ${cell(to)} | ${cell(r.policies.join('; '))} |`);
    });
    out.push('');
  }

  if (plan.progressive.length) {
    out.push('## Progressive delivery', '', 'A controller moves these splits step by step and rolls back when the analysis fails; the chart writes where it starts.', '');
    out.push('| release | workload | steps (canary %) | analysis | moves |', '| --- | --- | --- | --- | --- |');
    for (const p of plan.progressive) out.push(`| ${cell(`${p.controller}: ${p.object}`)} | ${cell(p.workload)} | ${cell(p.steps)} | ${cell(p.analysis)} | ${cell(p.moves)} |`);
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

  if (plan.externals?.length) {
    out.push('## External services', '', '| ServiceEntry | hosts | ports | location | resolution | endpoints | seen from |', '| --- | --- | --- | --- | --- | --- | --- |');
    for (const x of plan.externals) {
      const where = x.endpoints.length ? x.endpoints.join(', ') : x.resolution === 'NONE' ? 'the address the client asked for' : 'the hosts, by DNS';
      out.push(`| ${x.serviceEntry} | ${cell(x.hosts.join(', '))} | ${cell(x.ports.join(', '))} | ${x.location} | ${x.resolution} | ${cell(where)}${x.addresses.length ? ` (addresses ${cell(x.addresses.join(', '))})` : ''} | ${x.exportTo ? cell(x.exportTo.join(', ')) : 'every namespace'} |`);
    }
    out.push('');
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

  if (plan.tracing.length) {
    out.push('## Tracing', '', '| Telemetry | applies to | spans to (meshConfig provider) | requests traced |', '| --- | --- | --- | --- |');
    for (const t of plan.tracing) {
      const scope = t.namespace === 'istio-system' ? 'the whole mesh (if istio-system is the root namespace)' : `namespace ${t.namespace}`;
      out.push(`| ${t.telemetry} | ${scope} | ${cell(t.providers.join(', ') || "(the mesh's default)")} | ${t.samplingPercentage === undefined ? "mesh default (Istio's 1%)" : `${t.samplingPercentage}%`} |`);
    }
    out.push('');
  }

  if (plan.notApplied?.length) {
    out.push('## Not applied on this data plane', '', 'The chart accepts losing these (dropUnsupported): they are in its model, but neither in the rules above nor in what its data plane runs.', '');
    out.push('| construct | field | value | feature | why |', '| --- | --- | --- | --- | --- |');
    for (const n of plan.notApplied) out.push(`| ${cell(n.path)} | ${cell(n.field)} | ${cell(n.value)} | ${n.feature} | ${cell(n.why)} |`);
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
  const g = trafficGraph(plan, only);
  const label = (s: string) => `"${s.replace(/"/g, '#quot;')}"`;
  const shape: Record<GraphNodeKind, (l: string) => string> = {
    gateway: (l) => `{{${l}}}`, host: (l) => `(${l})`, destination: (l) => `[/${l}/]`, workload: (l) => `[${l}]`, response: (l) => `>${l}]`, external: (l) => `[(${l})]`,
  };
  const arrow = (e: GraphEdge) => {
    switch (e.kind) {
      case 'route': { const text = routeLabel(e); return text ? `-->|${label(text)}|` : '-->'; }
      case 'call': return `-.->|${label('calls')}|`;
      case 'call-outside-mesh': return `-.->|${label('calls, outside the mesh')}|`;
      default: return '-->';
    }
  };
  return [
    'flowchart LR',
    ...g.nodes.map((n) => `  ${n.id}${shape[n.kind](label(n.label))}`),
    ...g.edges.map((e) => `  ${e.from} ${arrow(e)} ${e.to}`),
  ];
}
