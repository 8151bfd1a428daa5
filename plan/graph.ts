// The traffic graph of a plan, independent of how it is drawn: callers and gateways ->
// hosts -> subsets or Services -> workloads. Mermaid (in the Markdown plan and the pull
// request comment) and Graphviz (the SVG) both draw this one graph.
import { PlanHost, TrafficPlan } from './model';

/** reviews.bookinfo.svc.cluster.local -> reviews.bookinfo */
export const short = (host: string) => host.replace(/\.svc\.cluster\.local$/, '');

/** response: what a rule without destinations answers itself (a redirect, a direct response). */
export type GraphNodeKind = 'gateway' | 'host' | 'destination' | 'workload' | 'response' | 'external';

export interface GraphNode {
  /** n0, n1, ... in the order the nodes were met. */
  readonly id: string;
  readonly kind: GraphNodeKind;
  readonly label: string;
}

/** route: a rule's destination, labelled with its match and weight; bind: gateway -> host; select: destination -> its pods; call: recorded call. */
export type GraphEdgeKind = 'bind' | 'route' | 'select' | 'call' | 'call-outside-mesh';

export interface GraphEdge {
  readonly from: string;
  readonly to: string;
  readonly kind: GraphEdgeKind;
  /** For route edges: the destination's weight (none when the rule answers itself). The rule's number when there are several, and its match conditions (any may match); empty: every request. */
  readonly rule?: number;
  readonly match?: readonly string[];
  readonly otherwise?: boolean;
  readonly percent?: number;
  /** For route edges whose weight a progressive-delivery controller moves: its name ("Argo Rollouts"). */
  readonly managedBy?: string;
  /** For route edges: the rule's timeout, retries, fault, mirror, rewrite, header changes, in words. */
  readonly policies?: readonly string[];
}

export interface TrafficGraph {
  readonly nodes: readonly GraphNode[];
  readonly edges: readonly GraphEdge[];
}

/** The graph of a plan, or of the hosts `only` keeps (and the calls to them). */
export function trafficGraph(plan: TrafficPlan, only?: (h: PlanHost) => boolean): TrafficGraph {
  const nodes = new Map<string, GraphNode>();
  const edges: GraphEdge[] = [];
  const addNode = (key: string, kind: GraphNodeKind, label: string) => {
    if (!nodes.has(key)) nodes.set(key, { id: `n${nodes.size}`, kind, label });
    return nodes.get(key)!.id;
  };
  const addEdge = (e: GraphEdge) => {
    if (e.kind === 'select' && edges.some((x) => x.kind === 'select' && x.from === e.from && x.to === e.to)) return;
    edges.push(e);
  };
  const workload = (w: string) => addNode(`w:${w}`, 'workload', w);
  const hostNode = (h: string) => addNode(`h:${h}`, 'host', short(h));
  const hosts = plan.hosts.filter(only ?? (() => true));
  const policyOf = (host: string) => plan.policies.find((p) => p.host === host);
  const serviceOf = (host: string) => plan.services.find((s) => s.host === host);
  // A host of a ServiceEntry (exact, or under its "*." wildcard) leads out of the cluster.
  const externalOf = (host: string) => (plan.externals ?? []).find((x) => x.hosts.some((h) => h === host || (h.startsWith('*.') && host.endsWith(h.slice(1)))));
  const externalNode = (host: string) => {
    const x = externalOf(host);
    return x && addNode(`x:${x.serviceEntry}`, 'external', `ServiceEntry ${x.serviceEntry} (${x.location === 'MESH_INTERNAL' ? 'in the mesh' : 'outside the mesh'}, ${x.resolution}${x.endpoints.length ? `: ${x.endpoints.join(', ')}` : ''})`);
  };

  for (const h of hosts) {
    const hn = hostNode(h.host);
    const managedBy = (plan.progressive ?? []).find((p) => p.managedVirtualService === h.virtualService)?.controller;
    for (const b of h.bindings.filter((x) => x !== 'mesh')) {
      addEdge({ from: addNode(`g:${b}`, 'gateway', `gateway ${b}`), to: hn, kind: 'bind' });
    }
    h.rules.forEach((r, i) => {
      const rule = h.rules.length > 1 ? { rule: i + 1, otherwise: r.match.length === 0 } : {};
      if (r.destinations.length === 0) {
        const rn = addNode(`r:${h.host}:${i}`, 'response', r.policies.join('; ') || 'no route');
        addEdge({ from: hn, to: rn, kind: 'route', match: r.match, ...rule });
      }
      for (const d of r.destinations) {
        const dn = addNode(`d:${d.host}:${d.subset ?? ''}`, 'destination', `${short(d.host)}${d.subset ? ` ${d.subset}` : ''}`);
        addEdge({
          from: hn, to: dn, kind: 'route', percent: d.percent, match: r.match, policies: r.policies, ...rule, ...(managedBy ? { managedBy } : {}),
        });
        const workloads = d.subset ? policyOf(d.host)?.subsets.find((s) => s.name === d.subset)?.workloads ?? [] : serviceOf(d.host)?.workloads ?? [];
        for (const w of workloads) addEdge({ from: dn, to: workload(w), kind: 'select' });
        const xn = externalNode(d.host);
        if (xn) addEdge({ from: dn, to: xn, kind: 'select' });
      }
    });
  }
  for (const c of plan.calls) {
    const known = hosts.some((h) => h.host === c.to);
    if (!known && only) continue;
    const target = hostNode(c.to);
    addEdge({ from: workload(c.from), to: target, kind: c.inMesh ? 'call' : 'call-outside-mesh' });
    const xn = !known ? externalNode(c.to) : undefined;
    if (xn) addEdge({ from: target, to: xn, kind: 'select' });
  }
  return { nodes: [...nodes.values()], edges };
}

/** A route edge's label on one line: "1. header end-user = jason: 100%" (no weight for a rule that answers itself). */
export function routeLabel(e: GraphEdge, separator = ' or '): string {
  const when = e.match?.length ? e.match.join(separator) : e.otherwise ? 'otherwise' : '';
  const weight = e.percent === undefined ? '' : e.managedBy ? `${e.percent}% at start, ${e.managedBy} steps it` : `${e.percent}%`;
  const parts = [`${e.rule ? `${e.rule}. ` : ''}${when}`, weight].filter((x) => x.trim());
  return parts.join(': ');
}
