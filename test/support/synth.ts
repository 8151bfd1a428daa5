import { Testing } from 'cdk8s';
import { ChartEntry, CHART_VARIANTS, CHARTS, ChartVariant, createVariant } from '../../charts';
import { MeshChartProps } from '../../constructs';

export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: any; [k: string]: any };

/** Synthesize one chart entry (as `npm run synth` would) into plain objects. */
export function synthEntry(entry: ChartEntry, props?: MeshChartProps): K8sObject[] {
  const app = Testing.app();
  const chart = entry.create(app, entry.name, props);
  return Testing.synth(chart) as K8sObject[];
}

/** Synthesize one chart variant (a chart on one data plane), as `npm run synth` writes it. */
export function synthVariant(v: ChartVariant, props?: MeshChartProps): K8sObject[] {
  return Testing.synth(createVariant(Testing.app(), v, props)) as K8sObject[];
}

export function variant(id: string): ChartVariant {
  const v = CHART_VARIANTS.find((x) => x.id === id);
  if (!v) throw new Error(`no chart variant ${id}`);
  return v;
}

export function chartEntry(name: string): ChartEntry {
  const e = CHARTS.find((c) => c.name === name);
  if (!e) throw new Error(`no chart ${name}`);
  return e;
}

export function find(objs: K8sObject[], kind: string, name: string, namespace?: string): K8sObject {
  const o = objs.find((x) => x.kind === kind && x.metadata.name === name && (namespace === undefined || x.metadata.namespace === namespace));
  if (!o) throw new Error(`no ${kind} ${namespace ? namespace + '/' : ''}${name} in [${objs.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')}]`);
  return o;
}

export function ofKind(objs: K8sObject[], kind: string): K8sObject[] {
  return objs.filter((x) => x.kind === kind);
}
