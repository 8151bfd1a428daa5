import { App, Chart } from 'cdk8s';
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';

/** A synthesized Kubernetes object, as `cdk8s synth` writes it. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

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
  const app = new App({ outdir: '/nonexistent' }); // never written: toJson only
  return build(app).toJson() as KubeObject[];
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
    const objects = synthChart(args.chart);
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
