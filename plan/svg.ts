// The traffic graph as an SVG picture, laid out offline by Graphviz (compiled to
// WebAssembly by @viz-js/viz: no binary to install, same output on every machine).
import { GraphEdge, GraphNode, TrafficGraph, routeLabel, trafficGraph } from './graph';
import { PlanHost, TrafficPlan } from './model';

// One name: Graphviz sizes text with Helvetica's metrics only for a name it knows (a list
// falls back to Times, narrower, and labels overflow in a browser). Browsers draw it with
// Helvetica, Arial or Liberation Sans, which share these metrics.
const FONT = 'Helvetica';

// Colours follow the kind of node; the legend above the graph names them.
const NODE_STYLE: Record<GraphNode['kind'], string> = {
  gateway: 'shape=hexagon, fillcolor="#ede7f6", color="#5e35b1"',
  host: 'shape=box, style="rounded,filled", fillcolor="#e3f2fd", color="#1565c0"',
  destination: 'shape=box, style="filled", fillcolor="#fff3e0", color="#ef6c00"',
  workload: 'shape=box3d, fillcolor="#eceff1", color="#455a64"',
  response: 'shape=note, fillcolor="#fce4ec", color="#ad1457"',
  external: 'shape=cylinder, style="filled", fillcolor="#f1f8e9", color="#558b2f"',
};

/** A DOT double-quoted string: backslashes and quotes escaped, so user text (regexes) is never read as Graphviz escapes. */
export function dotString(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\r?\n/g, '\\n')}"`;
}

/** Text for a Graphviz HTML-like label. */
const html = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

function edgeAttrs(e: GraphEdge): string {
  switch (e.kind) {
    case 'route': {
      // One match condition per line, then the weight, then the rule's policies (timeouts,
      // faults, retries...) in orange. Thicker edges carry more traffic.
      const lines = routeLabel(e, '\nor ').replace(/: (\d+%)$/, '\n$1').split('\n').filter((l) => l).map((l) => html(l));
      const policies = (e.policies ?? []).map((p) => `<font color="#e65100">${html(p)}</font>`);
      const width = 1 + (2 * (e.percent ?? 0)) / 100;
      const label = [...lines, ...policies];
      return `${label.length ? `label=<${label.join('<br/>')}>, ` : ''}penwidth=${width.toFixed(2)}, color="#1565c0", fontcolor="#0d47a1"${e.percent === 0 ? ', style=dotted' : ''}`;
    }
    case 'bind':
      return 'color="#5e35b1"';
    case 'select':
      return 'color="#78909c", arrowhead=none';
    case 'call':
      return 'label="calls", style=dashed, color="#2e7d32", fontcolor="#1b5e20"';
    case 'call-outside-mesh':
      return 'label="calls, outside the mesh", style=dashed, color="#c62828", fontcolor="#b71c1c"';
  }
}

export interface SvgTitle {
  readonly chart: string;
  readonly dataPlane: string;
}

/** The graph in Graphviz's DOT language, left to right: callers and gateways, hosts, subsets and Services, workloads. */
export function trafficDot(graph: TrafficGraph, title: SvgTitle): string {
  // Title and legend in one label above the graph, left-aligned. Each legend entry has
  // its own cell: Graphviz sizes cells with Helvetica's metrics, and a browser drawing
  // with another font must not run one entry into the next.
  const cell = (color: string, text: string) => `<td align="left"><font point-size="10" color="${color}">${text}</font></td>`;
  const heading = [
    '<<table border="0" cellborder="0" cellspacing="0" cellpadding="3">',
    `<tr><td align="left" colspan="5"><font point-size="15"><b>Traffic plan: ${html(title.chart)}</b></font></td></tr>`,
    `<tr><td align="left" colspan="5"><font point-size="11" color="#455a64">data plane: ${html(title.dataPlane)}</font></td></tr>`,
    `<tr>${cell('#5e35b1', 'hexagon: gateway')}${cell('#1565c0', 'rounded: host')}${cell('#ef6c00', 'box: subset or Service')}${cell('#455a64', '3D box: workload')}${cell('#ad1457', 'note: answered by the rule itself')}</tr>`,
    ...(graph.nodes.some((n) => n.kind === 'external') ? [`<tr>${cell('#558b2f', 'cylinder: ServiceEntry (outside the cluster\'s registry)')}</tr>`] : []),
    `<tr>${cell('#1565c0', 'solid: routing rule, match then weight')}${cell('#1565c0', 'thicker: more traffic')}${cell('#2e7d32', 'dashed: recorded call')}${cell('#c62828', 'red dashed: caller outside the mesh')}</tr>`,
    `<tr><td align="left" colspan="5"><font point-size="10" color="#e65100">orange under a rule: its timeout, retries, fault, mirror, rewrite or header changes</font></td></tr>`,
    '</table>>',
  ].join('');
  const lines = [
    `digraph ${dotString(title.chart)} {`,
    `  graph [rankdir=LR, fontname=${dotString(FONT)}, labelloc=t, labeljust=l, nodesep=0.3, ranksep=0.7, pad=0.3, bgcolor=white, label=${heading}];`,
    `  node [fontname=${dotString(FONT)}, fontsize=12, style=filled, penwidth=1.3, margin="0.15,0.06"];`,
    `  edge [fontname=${dotString(FONT)}, fontsize=11, arrowsize=0.8];`,
  ];
  for (const n of graph.nodes) lines.push(`  ${n.id} [label=${dotString(n.label)}, tooltip=${dotString(`${n.kind}: ${n.label}`)}, ${NODE_STYLE[n.kind]}];`);
  for (const e of graph.edges) lines.push(`  ${e.from} -> ${e.to} [${edgeAttrs(e)}];`);
  if (graph.nodes.length === 0) lines.push('  empty [label="no VirtualService, Gateway or recorded call: nothing to draw", shape=plaintext, style=""];');
  lines.push('}');
  return lines.join('\n');
}

type Viz = { renderString(dot: string, options: { format: string }): string };
let viz: Promise<Viz> | undefined;

/** The plan's traffic graph (or the hosts `only` keeps) as a standalone SVG document. */
export async function trafficSvg(plan: TrafficPlan, title: SvgTitle, only?: (h: PlanHost) => boolean): Promise<string> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- the package's CommonJS build
  viz ??= (require('@viz-js/viz') as { instance(): Promise<Viz> }).instance();
  return (await viz).renderString(trafficDot(trafficGraph(plan, only), title), { format: 'svg' });
}
