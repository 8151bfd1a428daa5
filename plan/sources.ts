// Plans of synthesized charts (cdk8s in, Markdown and SVG out), for the CLI and the tests.
import { Chart } from 'cdk8s';
import { DataPlane, MeshChart } from '../constructs';
import { droppedIn } from '../constructs/mesh';
import { istioManifestsOf } from '../lint/sources';
import { show } from '../model';
import { PlanHeader, planMarkdown } from './markdown';
import { planOf, TrafficPlan } from './model';
import { SvgTitle, trafficSvg } from './svg';

export interface ChartPlan {
  readonly plan: TrafficPlan;
  readonly header: PlanHeader;
  /** The header in a few words, for the picture's title. */
  readonly title: SvgTitle;
}

/** The plan of one chart, on whatever data plane: its rules are read as the Istio objects of its model. */
export function chartPlan(chart: Chart): ChartPlan {
  const id = chart.node.id;
  const dataPlane = MeshChart.isMeshChart(chart) ? chart.dataPlane : DataPlane.ISTIO;
  const header = {
    chart: id,
    dataPlane: dataPlane === DataPlane.ISTIO ? String(dataPlane)
      : dataPlane === DataPlane.GATEWAY_API ? `${dataPlane}: these rules are HTTPRoutes (GAMMA for mesh hosts) and Gateways, subsets per-version Services; they are shown as the Istio objects of the same model`
        : `${dataPlane}: its proxies load these rules from ConfigMap mesh-routes and balance over the EndpointSlices they watch (Role mesh-proxy-endpoints; without API access, each Service's ClusterIP, where the policies below do not apply); they are shown as the Istio objects of the same model`,
  };
  const dropped = MeshChart.isMeshChart(chart) ? droppedIn(chart) : [];
  const plan = planOf(istioManifestsOf(chart));
  return {
    plan: dropped.length ? { ...plan, notApplied: dropped.map((d) => ({ path: d.path, field: d.field, value: show(d.value), feature: d.feature, why: d.why })) } : plan,
    header,
    title: { chart: id, dataPlane: String(dataPlane) },
  };
}

/** The Markdown plan of one chart. */
export function planOfChart(chart: Chart): string {
  const p = chartPlan(chart);
  return planMarkdown(p.plan, p.header);
}

/** The traffic graph of one chart as an SVG document (Graphviz layout). */
export function svgOfChart(chart: Chart): Promise<string> {
  const p = chartPlan(chart);
  return trafficSvg(p.plan, p.title);
}
