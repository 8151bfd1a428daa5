// The Pulumi program's logic, apart from pulumi.Config so that tests can drive it.
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { resolve } from 'node:path';
import { ChartEntry, CHARTS } from '../../charts';
import { DataPlane } from '../../constructs';
import { MeshChartResource } from './mesh-chart-resource';

/** The Pulumi program's stack config (`cdk8s-mesh:` keys). */
export interface DeployConfig {
  /** Chart names (see `npx cdk8s-mesh charts`). @default every chart */
  readonly charts?: readonly string[];
  /** @default "istio" */
  readonly dataPlane?: string;
  /** Chart name -> the namespace its namespace-less objects go to. @default - the chart's own */
  readonly namespaces?: Readonly<Record<string, string>>;
  /** Write YAML here instead of talking to a cluster (the provider's renderYamlToDirectory). */
  readonly renderYamlTo?: string;
  /**
   * Your charts instead of this package's: a module (path from the program's directory)
   * exporting `charts`, entries `{ name, create(scope, id, props) }`.
   * @default - the scenario charts of cdk8s-mesh
   */
  readonly module?: string;
}

/** The charts a config deploys from: its module's, or the package's own. */
export function chartsOf(c: Pick<DeployConfig, 'module'>): readonly ChartEntry[] {
  if (c.module === undefined) return CHARTS;
  let mod: { charts?: unknown };
  try {
    mod = require(resolve(c.module));
  } catch (e) {
    throw new Error(`cdk8s-mesh:module is "${c.module}"; expected a module that can be loaded (${(e as Error).message.split('\n')[0]})`);
  }
  const charts = mod.charts;
  if (!Array.isArray(charts) || !charts.length || charts.some((x) => typeof x?.name !== 'string' || typeof x?.create !== 'function')) {
    throw new Error(`cdk8s-mesh:module "${c.module}" exports charts = ${JSON.stringify(charts)?.slice(0, 80)}; expected a non-empty array of { name, create(scope, id, props) }`);
  }
  return charts as ChartEntry[];
}

/** Check the stack config; every mistake is named with the config key and what is expected. */
export function checkConfig(c: DeployConfig): Required<Omit<DeployConfig, 'renderYamlTo' | 'module'>> & Pick<DeployConfig, 'renderYamlTo' | 'module'> {
  const known = chartsOf(c).map((x) => x.name);
  const charts = c.charts ?? known;
  if (!Array.isArray(charts) || charts.length === 0) throw new Error(`cdk8s-mesh:charts is ${JSON.stringify(c.charts)}; expected a non-empty list of chart names`);
  for (const name of charts) {
    if (!known.includes(name)) throw new Error(`cdk8s-mesh:charts has "${name}"; expected chart names from: ${known.join(', ')}`);
  }
  const dataPlane = c.dataPlane ?? DataPlane.ISTIO;
  if (!Object.values(DataPlane).includes(dataPlane as DataPlane)) {
    throw new Error(`cdk8s-mesh:dataPlane is "${dataPlane}"; expected one of ${Object.values(DataPlane).join(', ')}`);
  }
  const namespaces = c.namespaces ?? {};
  for (const [k, v] of Object.entries(namespaces)) {
    if (!charts.includes(k)) throw new Error(`cdk8s-mesh:namespaces has "${k}"; expected one of the deployed charts (${charts.join(', ')})`);
    if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(v) || v.length > 63) throw new Error(`cdk8s-mesh:namespaces.${k} is "${v}"; expected a DNS-1123 label`);
  }
  return { charts, dataPlane, namespaces, renderYamlTo: c.renderYamlTo, module: c.module };
}

/** What the program registered: one MeshChartResource per chart, and the provider. */
export interface Deployment {
  readonly charts: readonly MeshChartResource[];
  readonly provider?: k8s.Provider;
}

/** One MeshChartResource per chart, on the chosen data plane. */
export function deploy(config: DeployConfig): Deployment {
  const c = checkConfig(config);
  const provider = c.renderYamlTo ? new k8s.Provider('render-yaml', { renderYamlToDirectory: c.renderYamlTo }) : undefined;
  const charts = c.charts.map((name) => {
    const entry = chartsOf(c).find((x) => x.name === name)!;
    const id = c.dataPlane === DataPlane.ISTIO ? name : `${name}-${c.dataPlane}`;
    return new MeshChartResource(id, {
      chart: (app) => entry.create(app, id, { dataPlane: c.dataPlane as DataPlane, namespace: c.namespaces[name] }),
    }, provider ? { providers: [provider] } : undefined);
  });
  return { charts, provider };
}

/** Stack outputs: the Services and VirtualServices of every chart. */
export function outputs(d: Deployment): { services: pulumi.Output<string[]>; virtualServices: pulumi.Output<string[]> } {
  return {
    services: pulumi.all(d.charts.map((c) => c.services)).apply((x) => x.flat()),
    virtualServices: pulumi.all(d.charts.map((c) => c.virtualServices)).apply((x) => x.flat()),
  };
}
