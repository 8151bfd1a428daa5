import { Chart, Testing } from 'cdk8s';
import { ChartEntry, CHART_VARIANTS, CHARTS, ChartVariant, createVariant } from '../../charts';
import { MeshChartProps } from '../../constructs';
import { validationErrorsOf } from '../../constructs/mesh';
import { MeshRefusals, refusalMessages } from '../../model';

export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; spec?: any; [k: string]: any };

/**
 * Synthesize a chart as `cdk8s-mesh synth` does: every validation error of its constructs
 * first, all at once (a MeshRefusals), then the objects.
 */
export function meshSynth(chart: Chart): K8sObject[] {
  const problems = validationErrorsOf(chart);
  if (problems.length) throw new MeshRefusals(problems, `chart ${chart.node.id}`);
  return Testing.synth(chart) as K8sObject[];
}

/**
 * The refusals of building and synthesizing: `problems` one message each (construct path,
 * value, expectation), `message` them joined by newlines. Fails when nothing is refused.
 */
export function refusalsOf(build: () => unknown): { message: string; problems: string[] } {
  try {
    const built = build();
    if (built instanceof Chart) meshSynth(built);
  } catch (e) {
    const problems = refusalMessages(e);
    if (!problems) throw e;
    return { message: problems.join('\n'), problems };
  }
  throw new Error('nothing was refused');
}

/** Synthesize one chart entry (as `npm run synth` would) into plain objects. */
export function synthEntry(entry: ChartEntry, props?: MeshChartProps): K8sObject[] {
  const app = Testing.app();
  return meshSynth(entry.create(app, entry.name, props));
}

/** Synthesize one chart variant (a chart on one data plane), as `npm run synth` writes it. */
export function synthVariant(v: ChartVariant, props?: MeshChartProps): K8sObject[] {
  return meshSynth(createVariant(Testing.app(), v, props));
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
