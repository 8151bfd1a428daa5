// Plans of synthesized charts (cdk8s in, Markdown and SVG out), for the CLI and the tests.
import { App, Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { DataPlane, MeshChart } from '../constructs';
import { renderingCallsOf } from '../constructs/mesh';
import { Manifest } from '../lint/analyze';
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
 * Objects a non-Istio renderer writes for the model: the node sidecar's route table,
 * per-subset Services, gateway Deployments and their Services; Gateway API's routes,
 * Gateways, ReferenceGrants and per-version Services, and the Istio objects it emits as
 * extensions (drawn again by the Istio twin).
 */
function madeByRenderer(manifests: readonly Manifest[]): (m: Manifest) => boolean {
  const gatewayPods = new Set(manifests
    .filter((m) => m.obj.kind === 'Deployment' && m.obj.spec?.template?.metadata?.annotations?.['mesh.cdk8s.io/proxy'] === 'node-gateway')
    .map((m) => `${m.obj.metadata.namespace ?? ''}/${m.obj.metadata.name}`));
  return (m) => {
    const labels = m.obj.metadata.labels ?? {};
    if (labels['mesh.cdk8s.io/route-table'] !== undefined || labels['mesh.cdk8s.io/subset-of'] !== undefined) return true;
    if (/^(gateway\.networking\.k8s\.io|networking\.istio\.io|telemetry\.istio\.io)\//.test(m.obj.apiVersion)) return true;
    return (m.obj.kind === 'Deployment' || m.obj.kind === 'Service') && gatewayPods.has(`${m.obj.metadata.namespace ?? ''}/${m.obj.metadata.name}`);
  };
}

/**
 * A chart's objects as the Istio data plane writes them. A chart on another data plane
 * keeps its workloads and Services, and its routes, policies and gateways are drawn again
 * by the Istio renderer from the same model (each at its construct's path), so that the
 * plan reads one model whatever the data plane.
 */
export function istioManifestsOf(chart: Chart): Manifest[] {
  if (!MeshChart.isMeshChart(chart) || chart.dataPlane === DataPlane.ISTIO) return manifestsOf(chart);
  const own = manifestsOf(chart);
  const twin = new MeshChart(new App(), chart.node.id, { dataPlane: DataPlane.ISTIO, namespace: chart.namespace, labels: chart.labels });
  const at = (path: readonly string[]) => path.reduce<Construct>((scope, id) => (scope.node.tryFindChild(id) as Construct | undefined) ?? new Construct(scope, id), twin);
  for (const call of renderingCallsOf(chart)) {
    const scope = at(call.scopePath);
    switch (call.method) {
      case 'renderRoute': twin.renderer.renderRoute(scope, call.id, call.rendering); break;
      case 'renderDestinationPolicy': twin.renderer.renderDestinationPolicy(scope, call.id, call.rendering); break;
      case 'renderGateway': twin.renderer.renderGateway(scope, call.id, call.rendering); break;
      case 'renderTracing': twin.renderer.renderTracing!(scope, call.id, call.rendering); break;
    }
  }
  const generated = madeByRenderer(own);
  return [...own.filter((m) => !generated(m)), ...manifestsOf(twin)];
}

/** The plan of one chart, on whatever data plane: its rules are read as the Istio objects of its model. */
export function chartPlan(chart: Chart): ChartPlan {
  const id = chart.node.id;
  const dataPlane = MeshChart.isMeshChart(chart) ? chart.dataPlane : DataPlane.ISTIO;
  const header = {
    chart: id,
    dataPlane: dataPlane === DataPlane.ISTIO ? String(dataPlane)
      : dataPlane === DataPlane.GATEWAY_API ? `${dataPlane}: these rules are HTTPRoutes (GAMMA for mesh hosts) and Gateways, subsets per-version Services; they are shown as the Istio objects of the same model`
        : `${dataPlane}: its proxies load these rules from ConfigMap mesh-routes; they are shown as the Istio objects of the same model`,
  };
  return { plan: planOf(istioManifestsOf(chart)), header, title: { chart: id, dataPlane: String(dataPlane) } };
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
