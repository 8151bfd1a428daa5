// Where manifests come from: a cdk8s App (with construct paths) or YAML files.
import { readFileSync } from 'node:fs';
import { ApiObject, App, Chart } from 'cdk8s';
import { Construct, IConstruct } from 'constructs';
import { parseAllDocuments } from 'yaml';
import { DataPlane, droppedIn, MeshChart, renderingCallsOf, renderPendingIn } from '../constructs/mesh';
import { MeshValidationError, show } from '../model/errors';
import { analyze, Finding, K8s, Manifest } from './analyze';

/** Every object of the charts, with the construct path that made it. */
export function manifestsOf(scope: App | Chart): Manifest[] {
  // Constructs render when their chart synthesizes: lint may be the first to read them.
  renderPendingIn(scope);
  const charts = scope instanceof App ? scope.charts : [scope];
  return charts.flatMap((chart) => chart.node.findAll()
    .filter((c: IConstruct): c is ApiObject => c instanceof ApiObject)
    .map((o) => ({ obj: o.toJson() as K8s, path: o.node.path })));
}

/**
 * Objects a non-Istio renderer writes for the model: the node sidecar's route table,
 * per-subset Services, gateway Deployments and their Services; Gateway API's routes,
 * Gateways, ReferenceGrants and per-version Services, and the Istio objects it emits as
 * extensions; Argo Rollouts' Rollouts and AnalysisTemplates (drawn again by the Istio twin).
 */
function madeByRenderer(manifests: readonly Manifest[]): (m: Manifest) => boolean {
  const gatewayPods = new Set(manifests
    .filter((m) => m.obj.kind === 'Deployment' && m.obj.spec?.template?.metadata?.annotations?.['mesh.cdk8s.io/proxy'] === 'node-gateway')
    .map((m) => `${m.obj.metadata.namespace ?? ''}/${m.obj.metadata.name}`));
  return (m) => {
    const labels = m.obj.metadata.labels ?? {};
    if (labels['mesh.cdk8s.io/route-table'] !== undefined || labels['mesh.cdk8s.io/subset-of'] !== undefined) return true;
    if (/^(gateway\.networking\.k8s\.io|networking\.istio\.io|telemetry\.istio\.io|argoproj\.io)\//.test(m.obj.apiVersion)) return true;
    return (m.obj.kind === 'Deployment' || m.obj.kind === 'Service') && gatewayPods.has(`${m.obj.metadata.namespace ?? ''}/${m.obj.metadata.name}`);
  };
}

/**
 * A chart's objects as the Istio data plane writes them (its "Istio twin"). A chart on
 * another data plane keeps its workloads and Services, and its routes, policies and
 * gateways are drawn again by the Istio renderer from the same model, each at its
 * construct's path, so that lint and the plan read one model whatever the data plane.
 */
export function istioManifestsOf(chart: Chart): Manifest[] {
  if (!MeshChart.isMeshChart(chart) || chart.dataPlane === DataPlane.ISTIO) return manifestsOf(chart);
  const own = manifestsOf(chart);
  const twin = new MeshChart(new App(), chart.node.id, { dataPlane: DataPlane.ISTIO, namespace: chart.namespace, labels: chart.labels });
  const at = (path: readonly string[]) => path.reduce<Construct>((scope, id) => (scope.node.tryFindChild(id) as Construct | undefined) ?? new Construct(scope, id), twin);
  for (const call of renderingCallsOf(chart)) {
    const scope = at(call.scopePath);
    switch (call.method) {
      case 'renderRoute': twin._renderer.renderRoute(scope, call.id, call.rendering); break;
      case 'renderDestinationPolicy': twin._renderer.renderDestinationPolicy(scope, call.id, call.rendering); break;
      case 'renderGateway': twin._renderer.renderGateway(scope, call.id, call.rendering); break;
      case 'renderTracing': twin._renderer.renderTracing!(scope, call.id, call.rendering); break;
      case 'renderServiceEntry': twin._renderer.renderServiceEntry(scope, call.id, call.rendering); break;
      case 'renderRollout': twin._renderer.renderRollout(scope, call.id, call.rendering); break;
      default: { const never: never = call; throw new Error(`cdk8s-mesh: no Istio twin for ${JSON.stringify(never)}`); }
    }
  }
  const generated = madeByRenderer(own);
  return [...own.filter((m) => !generated(m)), ...manifestsOf(twin)];
}

/** What a chart let its data plane drop, as lint warnings (MESH034). */
export function droppedFindings(chart: Chart): Finding[] {
  if (!MeshChart.isMeshChart(chart)) return [];
  return droppedIn(chart).map((d) => ({
    code: 'MESH034',
    severity: 'warning' as const,
    message: `${d.field} (${show(d.value)}) is not applied on the ${d.dataPlane} data plane: ${d.why} (dropped as the chart's dropUnsupported allows: ${d.feature})`,
    object: { kind: 'MeshChart', name: chart.node.id, ...(chart.namespace ? { namespace: chart.namespace } : {}) },
    path: d.path,
  }));
}

/**
 * Lint one chart (one deployable unit): the checks read its Istio twin, so a node-sidecar
 * or Gateway API chart is checked as its Istio form would be, and what it dropped is warned.
 */
export function lintChart(chart: Chart): Finding[] {
  return [...analyze(istioManifestsOf(chart)), ...droppedFindings(chart)];
}

/** Lint charts before they are written; each chart on its own (a chart is one deployable unit). */
export function lintApp(app: App): Finding[] {
  return app.charts.flatMap(lintChart);
}

/** Every document of YAML files; a document that is not an object is reported by the caller. */
export function manifestsFromFiles(files: readonly string[]): Manifest[] {
  return files.flatMap((file) => {
    const docs = parseAllDocuments(readFileSync(file, 'utf8'));
    // A document that does not parse is refused, not linted as nothing (0 findings, exit 0).
    const bad = (Array.isArray(docs) ? docs : [docs]).flatMap((d, i) => d.errors.map((e) => `${file}#${i + 1}: ${e.message.split('\n')[0]}`));
    if (bad.length) throw new MeshValidationError(file, 'YAML', bad.slice(0, 5).join('; '), 'YAML that parses (the file was not linted)');
    return (Array.isArray(docs) ? docs : [docs])
      .map((d, i) => ({ obj: d.toJSON() as K8s, path: `${file}#${i + 1}` }))
      .filter((m) => m.obj !== null && typeof m.obj === 'object');
  });
}
