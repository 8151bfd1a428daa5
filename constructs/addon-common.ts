// What the observability addons (Jaeger, Prometheus, Kiali) share: the UI Service's type
// and node port, resources, the image reference, and whether an Istio installation owns
// their namespace.
import { ApiObject, Chart } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { Check, checkDns1123Label } from '../model';
import { DataPlane, MeshChart, rendererOf } from './mesh';
import type { WorkloadResources } from './mesh-workload';

/** How an addon's UI is reached: its Service's type and, with NodePort, a fixed node port. */
export interface AddonUi {
  /** The Service type. @default "ClusterIP" */
  readonly serviceType?: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
  /** With NodePort or LoadBalancer: a fixed node port, 30000-32767. @default - one the cluster picks */
  readonly nodePort?: number;
}

/** The namespace (a DNS label; `istio-system` by default) and the image (no spaces). */
export function checkPlacement(check: Check, namespace: string | undefined, image: string): string {
  const ns = namespace ?? 'istio-system';
  checkDns1123Label(check, 'namespace', ns);
  if (/\s/.test(image)) check.fail('image', image, 'an image reference without spaces');
  return ns;
}

/** The UI Service's type and node port, checked. */
export function checkUi(check: Check, ui: AddonUi, extra: Readonly<Record<string, 'string?'>> = {}): { serviceType: 'ClusterIP' | 'NodePort' | 'LoadBalancer'; nodePort?: number } {
  check.shape('ui', ui, { serviceType: 'string?', nodePort: 'number?', ...extra });
  const serviceType = ui.serviceType ?? 'ClusterIP';
  check.oneOf('ui.serviceType', serviceType, ['ClusterIP', 'NodePort', 'LoadBalancer']);
  if (ui.nodePort !== undefined) {
    if (serviceType === 'ClusterIP') check.fail('ui.nodePort', ui.nodePort, 'no nodePort with serviceType ClusterIP (use NodePort or LoadBalancer)');
    check.integer('ui.nodePort', ui.nodePort, 30000, 32767);
  }
  return { serviceType, nodePort: ui.nodePort };
}

/** CPU (millicores) and memory (MiB) requests and limits, with the addon's defaults. */
export function checkResources(check: Check, res: WorkloadResources, defaults: Required<WorkloadResources>): { cpu: { request: number; limit: number }; mem: { request: number; limit: number } } {
  check.shape('resources', res, { cpuMillis: 'object?', memoryMiB: 'object?' });
  for (const k of ['cpuMillis', 'memoryMiB'] as const) if (res[k]) check.shape(`resources.${k}`, res[k], { request: 'number', limit: 'number' });
  const cpu = res.cpuMillis ?? defaults.cpuMillis;
  const mem = res.memoryMiB ?? defaults.memoryMiB;
  check.integer('resources.cpuMillis.request', cpu.request, 1, 1_000_000);
  check.integer('resources.cpuMillis.limit', cpu.limit, cpu.request, 1_000_000);
  check.integer('resources.memoryMiB.request', mem.request, 1, 10_000_000);
  check.integer('resources.memoryMiB.limit', mem.limit, mem.request, 10_000_000);
  return { cpu, mem };
}

/** Whether the data plane of `c`'s chart comes with an Istio installation (which owns istio-system). */
export function withIstio(c: Construct): boolean {
  const chart = c.node.scopes.find((s): s is MeshChart => MeshChart.isMeshChart(s));
  const plane = chart?.dataPlane ?? DataPlane.ISTIO;
  if (plane === DataPlane.GATEWAY_API) return ['istio', 'istio-ambient'].includes(chart!.gatewayApi.mesh ?? 'istio');
  return plane === DataPlane.ISTIO;
}

/**
 * The addon's Namespace, when it should write one (`create`, else off Istio) and the chart
 * does not write it already: the three addons share `istio-system` by default, and a
 * chart with Jaeger, Prometheus and Kiali writes that Namespace once.
 */
export function addonNamespace(addon: Construct, namespace: string, create: boolean | undefined): void {
  if (!(create ?? !withIstio(addon))) return;
  const chart = Chart.of(addon);
  const written = chart.node.findAll().some((c) => c instanceof ApiObject && c.kind === 'Namespace' && c.name === namespace && Chart.of(c) === chart);
  if (!written) new kplus.Namespace(addon, 'Namespace', { metadata: { name: namespace } });
}

/** Istio must not inject a proxy into its own addons (as its samples do); other data planes get no Istio marker. */
export function noInjection(c: Construct): Record<string, string> {
  return rendererOf(c).dataPlane === DataPlane.ISTIO ? { 'sidecar.istio.io/inject': 'false' } : {};
}
