import { Construct } from 'constructs';
import { BOOKINFO_SCENARIOS, BookinfoScenario, DataPlane, MeshChart, MeshChartProps, ProgressiveDelivery } from '../constructs';
import { BookinfoChart } from './bookinfo';
import { DemoGatewayChart } from './demo-gateway';
import { SpringbootCanaryChart } from './springboot-canary';
import { WebBasicChart, WebRoundRobinChart, WebWeightedChart } from './web';

export * from './web';
export * from './springboot-canary';
export * from './demo-gateway';
export * from './images';
export * from './bookinfo';

/** A chart the app synthesizes: its id is its file name, `dist/<name>.k8s.yaml`. */
export interface ChartEntry {
  readonly name: string;
  readonly description: string;
  create(scope: Construct, id: string, props?: MeshChartProps): MeshChart;
}

/** Every scenario chart, in the order `npm run synth` writes them. */
export const CHARTS: readonly ChartEntry[] = [
  { name: 'web-basic', description: 'client, busybox httpd and tomcat, each with its own Service', create: (s, id, p) => new WebBasicChart(s, id, p) },
  { name: 'web-round-robin', description: 'plus web-svc selecting both backends', create: (s, id, p) => new WebRoundRobinChart(s, id, p) },
  { name: 'web-weighted', description: 'web-svc split tomcat 20 / httpd 80, everything in the mesh', create: (s, id, p) => new WebWeightedChart(s, id, p) },
  { name: 'springboot-canary', description: 'springbootapp v1 70 / v2 30 and a client in another namespace', create: (s, id, p) => new SpringbootCanaryChart(s, id, p) },
  {
    name: 'springboot-canary-timeout',
    description: 'the same with a 0.002s timeout',
    create: (s, id, p) => new SpringbootCanaryChart(s, id, { ...p, timeout: '0.002s' }),
  },
  {
    name: 'springboot-canary-argo-rollouts',
    description: 'v2 handed to Argo Rollouts: steps 10, 25, 50 with analysis on Istio\'s metrics (Gateway API: its plugin; node sidecar: replica-ratio steps)',
    create: (s, id, p) => new SpringbootCanaryChart(s, id, { ...p, progressiveDelivery: ProgressiveDelivery.argoRollouts() }),
  },
  {
    name: 'springboot-canary-flagger',
    description: 'v2 handed to Flagger: step weights 10, 25, 50 with its built-in Istio checks',
    create: (s, id, p) => new SpringbootCanaryChart(s, id, { ...p, progressiveDelivery: ProgressiveDelivery.flagger() }),
  },
  { name: 'demo-gateway', description: 'nginx behind demo-svc, Gateway demo-gateway and an exact "/" match', create: (s, id, p) => new DemoGatewayChart(s, id, p) },
  {
    name: 'bookinfo',
    description: 'Istio\'s Bookinfo: gateway with the five productpage matches, destination rules, all-v1',
    create: (s, id, p) => new BookinfoChart(s, id, p),
  },
  // One chart per Bookinfo traffic scenario (all-v1 is `bookinfo` itself).
  ...(Object.keys(BOOKINFO_SCENARIOS) as BookinfoScenario[]).filter((k) => k !== 'all-v1').map((scenario): ChartEntry => ({
    name: `bookinfo-${scenario}`,
    description: `Bookinfo: ${BOOKINFO_SCENARIOS[scenario]}`,
    create: (s, id, p) => new BookinfoChart(s, id, { ...p, scenario }),
  })),
  {
    name: 'bookinfo-tracing',
    description: 'Bookinfo traced (jason on reviews v2, which calls ratings): Jaeger as Istio\'s addon (UI on NodePort 30686, /jaeger), every request sampled',
    create: (s, id, p) => new BookinfoChart(s, id, { ...p, scenario: 'jason-v2', tracing: true }),
  },
];

/** One chart on one data plane: what one file in dist/ holds. */
export interface ChartVariant {
  /** The chart id and file name: `<name>` (Istio) or `<name>-node-sidecar`. */
  readonly id: string;
  readonly entry: ChartEntry;
  readonly dataPlane: DataPlane;
}

/**
 * Charts the Gateway API data plane cannot express, and why: synthesizing them for it is
 * refused with a MeshValidationError (test/gateway-api.test.ts checks each refusal).
 */
export const GATEWAY_API_INEXPRESSIBLE: Readonly<Record<string, string>> = {
  'bookinfo-ratings-delay-jason': 'fault injection (a 7 s delay on ratings for jason): HTTPRoute has no fault filter',
  'bookinfo-ratings-abort-jason': 'fault injection (HTTP 500 from ratings for jason): HTTPRoute has no fault filter',
  'springboot-canary-flagger': 'progressive delivery: Flagger\'s Gateway API provider attaches its own HTTPRoute to a Gateway; not written yet',
};

/**
 * Charts the node-sidecar data plane cannot express, and why: synthesizing them for it is
 * refused with a MeshValidationError (test/progressive-delivery.test.ts checks each refusal).
 */
export const NODE_SIDECAR_INEXPRESSIBLE: Readonly<Record<string, string>> = {
  'springboot-canary-flagger': 'Flagger moves traffic by writing VirtualServices, which the node sidecar does not read',
};

/** Every chart on every data plane, in the order `npm run synth` writes them. */
export const CHART_VARIANTS: readonly ChartVariant[] = [
  ...CHARTS.map((entry) => ({ id: entry.name, entry, dataPlane: DataPlane.ISTIO })),
  ...CHARTS.filter((entry) => !(entry.name in NODE_SIDECAR_INEXPRESSIBLE))
    .map((entry) => ({ id: `${entry.name}-${DataPlane.NODE_SIDECAR}`, entry, dataPlane: DataPlane.NODE_SIDECAR })),
  ...CHARTS.filter((entry) => !(entry.name in GATEWAY_API_INEXPRESSIBLE))
    .map((entry) => ({ id: `${entry.name}-${DataPlane.GATEWAY_API}`, entry, dataPlane: DataPlane.GATEWAY_API })),
];

/** Create a variant's chart in `scope`. */
export function createVariant(scope: Construct, v: ChartVariant, props: MeshChartProps = {}): MeshChart {
  return v.entry.create(scope, v.id, { ...props, dataPlane: v.dataPlane });
}
