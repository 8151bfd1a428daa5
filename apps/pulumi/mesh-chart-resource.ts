import { App, Chart } from 'cdk8s';
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { validationErrorsOf } from '../../constructs/mesh';
import { Finding, formatText } from '../../lint/analyze';
import { lintChart } from '../../lint/sources';
import { MeshRefusals } from '../../model';

/** A synthesized Kubernetes object, as `cdk8s synth` writes it. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

/** What a MeshChartResource deploys: a function building the chart. */
export interface MeshChartResourceArgs {
  /**
   * Builds the chart in the cdk8s App it is given: any cdk8s-mesh chart, or your own
   * cdk8s Chart. The chart is synthesized in this process; nothing is read from disk.
   */
  readonly chart: (app: App) => Chart;
}

/** Deploy order: what the API server needs to exist before the rest is accepted. */
export type Phase = 'namespaces' | 'workloads' | 'mesh';

/** Namespaces first; Istio's kinds (served by CRDs) last, after the Services they route to. */
export function phaseOf(o: KubeObject): Phase {
  if (o.apiVersion === 'v1' && o.kind === 'Namespace') return 'namespaces';
  if (/^[a-z0-9.-]+\.istio\.io\//.test(o.apiVersion)) return 'mesh';
  return 'workloads';
}

/** The objects a chart synthesizes, in cdk8s's order. */
export function synthChart(build: (app: App) => Chart): KubeObject[] {
  return synthAndLint(build).objects;
}

/**
 * Synthesize a chart as `npm run synth` does: the constructs' validations (duplicate
 * objects, ...) and mesh lint run first; validation and lint errors throw with their
 * messages, so a chart that synth refuses is refused here too. Warnings are returned.
 */
export function synthAndLint(build: (app: App) => Chart): { objects: KubeObject[]; warnings: Finding[] } {
  const app = new App({ outdir: '/nonexistent' }); // never written: toJson only
  const chart = build(app);
  const invalid = validationErrorsOf(chart);
  if (invalid.length) throw new MeshRefusals(invalid, `chart ${chart.node.id}`);
  const findings = lintChart(chart);
  const errors = findings.filter((f) => f.severity === 'error');
  if (errors.length) throw new Error(`cdk8s-mesh: mesh lint found ${errors.length} error(s) in chart ${chart.node.id}; nothing was registered:\n${formatText(errors)}`);
  return { objects: chart.toJson() as KubeObject[], warnings: findings.filter((f) => f.severity === 'warning') };
}

/**
 * Server-side apply on older API servers needs `protocol` on every Service port
 * (it is part of the merge key); the constructs set it, user charts may not.
 */
export function explicitServiceProtocol(o: KubeObject): void {
  if (o.apiVersion === 'v1' && o.kind === 'Service') {
    const spec = o.spec as { ports?: Array<{ protocol?: string }> } | undefined;
    for (const p of spec?.ports ?? []) p.protocol ??= 'TCP';
  }
}

/**
 * A cdk8s(-mesh) chart as one Pulumi component: its objects are registered through
 * `k8s.yaml.ConfigGroup` (`objs`, expanded in this process: preview needs no cluster)
 * in three ordered groups, Namespaces, then workloads, then Istio objects.
 *
 * ```ts
 * new MeshChartResource('bookinfo', { chart: (app) => new BookinfoChart(app, 'bookinfo') });
 * ```
 */
export class MeshChartResource extends pulumi.ComponentResource {
  /** The synthesized objects, as registered. */
  readonly objects: readonly KubeObject[];
  /** `namespace/name` of every Service. */
  readonly services: pulumi.Output<string[]>;
  /** `namespace/name` of every VirtualService. */
  readonly virtualServices: pulumi.Output<string[]>;
  readonly namespaceGroup?: k8s.yaml.ConfigGroup;
  readonly workloadGroup?: k8s.yaml.ConfigGroup;
  readonly meshGroup?: k8s.yaml.ConfigGroup;

  constructor(name: string, args: MeshChartResourceArgs, opts?: pulumi.ComponentResourceOptions) {
    super('cdk8s-mesh:index:MeshChartResource', name, {}, opts);
    const { objects, warnings } = synthAndLint(args.chart);
    // Lint warnings show in `pulumi preview`/`up` on this component; errors threw above.
    for (const w of warnings) pulumi.log.warn(formatText([w]), this);
    this.objects = objects;
    const byPhase = (p: Phase) => objects.filter((o) => phaseOf(o) === p);
    const group = (phase: Phase, dependsOn: pulumi.Resource[]) => {
      const objs = byPhase(phase);
      if (objs.length === 0) return undefined;
      return new k8s.yaml.ConfigGroup(`${name}-${phase}`, {
        objs: objs.map((o) => JSON.parse(JSON.stringify(o))),
        resourcePrefix: name,
        // Children of a component do not inherit its dependsOn: give it to each object.
        transformations: [
          explicitServiceProtocol as (o: unknown) => void,
          (_o: unknown, o: pulumi.CustomResourceOptions) => { o.dependsOn = dependsOn; },
        ],
      }, { parent: this, dependsOn });
    };
    this.namespaceGroup = group('namespaces', []);
    this.workloadGroup = group('workloads', this.namespaceGroup ? [this.namespaceGroup] : []);
    this.meshGroup = group('mesh', [this.namespaceGroup, this.workloadGroup].filter((x): x is k8s.yaml.ConfigGroup => x !== undefined));
    const ids = (kind: string) => objects.filter((o) => o.kind === kind).map((o) => `${o.metadata.namespace ?? 'default'}/${o.metadata.name}`);
    this.services = pulumi.output(ids('Service'));
    this.virtualServices = pulumi.output(ids('VirtualService'));
    this.registerOutputs({ services: this.services, virtualServices: this.virtualServices });
  }
}
