// Plans of synthesized charts (cdk8s in, Markdown out), for the CLI and the tests.
import { App, Chart } from 'cdk8s';
import { CHART_VARIANTS, createVariant } from '../charts';
import { DataPlane, MeshChart } from '../constructs';
import { manifestsOf } from '../lint/sources';
import { planMarkdown } from './markdown';
import { planOf } from './model';

/**
 * The Markdown plan of one chart. A node-sidecar chart of this package is planned from
 * its Istio twin (one model: its proxies load the same rules from ConfigMap mesh-routes).
 */
export function planOfChart(chart: Chart): string {
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
  return planMarkdown(planOf(manifests), header);
}
