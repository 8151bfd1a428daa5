// Plans of synthesized charts (cdk8s in, Markdown and SVG out), for the CLI and the tests.
import { App, Chart } from 'cdk8s';
import { CHART_VARIANTS, createVariant } from '../charts';
import { DataPlane, MeshChart } from '../constructs';
import { manifestsOf } from '../lint/sources';
import { PlanHeader, planMarkdown } from './markdown';
import { planOf, TrafficPlan } from './model';
import { SvgTitle, trafficSvg } from './svg';

export interface ChartPlan {
  readonly plan: TrafficPlan;
  readonly header: PlanHeader;
  /** The header in a few words, for the picture's title. */
  readonly title: SvgTitle;
}

/**
 * The plan of one chart. A node-sidecar chart of this package is planned from its Istio
 * twin (one model: its proxies load the same rules from ConfigMap mesh-routes).
 */
export function chartPlan(chart: Chart): ChartPlan {
  const id = chart.node.id;
  const dataPlane = MeshChart.isMeshChart(chart) ? chart.dataPlane : DataPlane.ISTIO;
  const v = CHART_VARIANTS.find((x) => x.id === id);
  const twin = v && dataPlane === DataPlane.NODE_SIDECAR ? CHART_VARIANTS.find((x) => x.id === v.entry.name) : undefined;
  const manifests = twin ? manifestsOf(createVariant(new App(), twin)) : manifestsOf(chart);
  const header = {
    chart: id,
    dataPlane: dataPlane !== DataPlane.NODE_SIDECAR ? String(dataPlane)
      : twin ? `node-sidecar: the rules below, from the Istio twin \`${twin.id}\`, are the ones its proxies load from ConfigMap mesh-routes`
        : 'node-sidecar (its rules are in ConfigMap mesh-routes; this plan shows what the Kubernetes objects say)',
  };
  const title = { chart: id, dataPlane: twin ? `node-sidecar, the rules of ${twin.id}` : String(dataPlane) };
  return { plan: planOf(manifests), header, title };
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
