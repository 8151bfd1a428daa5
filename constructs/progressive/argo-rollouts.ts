/**
 * Argo Rollouts objects for a CanaryRelease (argoproj.io/v1alpha1): a Rollout that adopts
 * the release's Deployment (workloadRef) and an AnalysisTemplate on Istio's standard
 * metrics. Field names from Argo Rollouts v1.9's CRDs (crds/argo-rollouts-v1.9.1/) and its
 * docs (features/traffic-management/istio.md, migrating.md, analysis/prometheus.md).
 */
import { ApiObject, ApiObjectMetadata } from 'cdk8s';
import { Construct } from 'constructs';
import type { RolloutRendering } from '../mesh';
import type { ProgressiveDeliveryModel } from '../progressive-delivery';

export const ARGO_ROLLOUTS_API_VERSION = 'argoproj.io/v1alpha1';
/** The name of the header route Argo adds at the first step and removes at promotion. */
export const ARGO_HEADER_ROUTE = 'canary-by-header';

/** An Argo Rollouts Rollout. */
export class ArgoRollout extends ApiObject {
  static readonly KIND = 'Rollout';
  constructor(scope: Construct, id: string, props: { readonly metadata: ApiObjectMetadata; readonly spec: Record<string, unknown> }) {
    super(scope, id, { apiVersion: ARGO_ROLLOUTS_API_VERSION, kind: ArgoRollout.KIND, metadata: props.metadata, spec: props.spec });
  }
}

/** An Argo Rollouts AnalysisTemplate. */
export class ArgoAnalysisTemplate extends ApiObject {
  static readonly KIND = 'AnalysisTemplate';
  constructor(scope: Construct, id: string, props: { readonly metadata: ApiObjectMetadata; readonly spec: Record<string, unknown> }) {
    super(scope, id, { apiVersion: ARGO_ROLLOUTS_API_VERSION, kind: ArgoAnalysisTemplate.KIND, metadata: props.metadata, spec: props.spec });
  }
}

/** The Gateway API traffic-router plugin's name, as its docs register it in argo-rollouts-config. */
export const ARGO_GATEWAY_API_PLUGIN = 'argoproj-labs/gatewayAPI';

/**
 * How the Rollout moves traffic: Istio's VirtualService and DestinationRule subsets; the
 * Gateway API plugin's HTTPRoute weights between a stable and a canary Service; or replica
 * counts alone.
 */
export type ArgoTrafficRouting =
  | { readonly kind: 'istio'; readonly virtualService: string; readonly route: string; readonly destinationRule: string; readonly stableSubset: string; readonly canarySubset: string }
  | { readonly kind: 'gateway-api'; readonly httpRoute: string; readonly namespace: string; readonly stableService: string; readonly canaryService: string }
  | { readonly kind: 'replicas' };

/** A rendering with its routing decided and what the analysis selects. */
export interface ArgoRolloutInput extends Omit<RolloutRendering, 'traffic' | 'serviceName'> {
  readonly routing: ArgoTrafficRouting;
  /** The Service's FQDN (a regex matching the backend Services too on Gateway API): what the analysis queries select, with the canary's `version` label. */
  readonly service: string;
}

/** The AnalysisTemplate's name for a Rollout. */
export const analysisTemplateName = (rollout: string) => `${rollout}-canary-health`;

/** The Rollout's spec. */
export function rolloutSpec(i: ArgoRolloutInput): Record<string, unknown> {
  const steps: Array<Record<string, unknown>> = [];
  i.weights.forEach((w, n) => {
    steps.push({ setWeight: w });
    // The header route once the canary has pods (after the first weight), as in Argo's docs; Argo removes it at promotion.
    if (n === 0 && i.header) {
      const m = i.header.match;
      steps.push({ setHeaderRoute: { name: ARGO_HEADER_ROUTE, match: [{ headerName: i.header.name, headerValue: { [m.kind]: m.value } }] } });
    }
    steps.push({ pause: { duration: i.pd.stepDuration.toIstio() } });
  });
  // Manual promotion: the last pause waits for `kubectl argo rollouts promote`.
  if (i.pd.argo.manualPromotion) steps[steps.length - 1] = { pause: {} };
  const routing = i.routing;
  const managedRoutes = i.header ? { managedRoutes: [{ name: ARGO_HEADER_ROUTE }] } : {};
  const canary: Record<string, unknown> = {
    ...(routing.kind === 'istio' ? {
      trafficRouting: {
        ...managedRoutes,
        istio: {
          virtualService: { name: routing.virtualService, routes: [routing.route] },
          destinationRule: { name: routing.destinationRule, canarySubsetName: routing.canarySubset, stableSubsetName: routing.stableSubset },
        },
      },
    } : {}),
    ...(routing.kind === 'gateway-api' ? {
      canaryService: routing.canaryService,
      stableService: routing.stableService,
      trafficRouting: {
        ...managedRoutes,
        plugins: { [ARGO_GATEWAY_API_PLUGIN]: { httpRoutes: [{ name: routing.httpRoute, ...(i.header ? { useHeaderRoutes: true } : {}) }], namespace: routing.namespace } },
      },
    } : {}),
    // Background analysis from the first weight on: a failed check aborts the rollout.
    analysis: {
      templates: [{ templateName: analysisTemplateName(i.name) }],
      startingStep: 0,
      args: [{ name: 'service', value: i.service }, ...(routing.kind !== 'replicas' ? [{ name: 'canary-version', value: i.canaryVersion }] : [])],
    },
    ...(i.pd.argo.abortScaleDownDelaySeconds !== undefined ? { abortScaleDownDelaySeconds: i.pd.argo.abortScaleDownDelaySeconds } : {}),
    ...(i.pd.argo.dynamicStableScale !== undefined ? { dynamicStableScale: i.pd.argo.dynamicStableScale } : {}),
    steps,
  };
  return {
    replicas: i.replicas,
    selector: { matchLabels: { ...i.selector } },
    workloadRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: i.deploymentName, scaleDown: i.pd.argo.scaleDown },
    strategy: { canary },
  };
}

/**
 * Istio's standard metrics as the calling proxies report them (reporter="source": Envoy
 * sidecars and gateways, and the node sidecar): the canary's pods alone (their `version`
 * label) when `byVersion`, else the whole Service.
 */
export function analysisQueries(window: string, byVersion: boolean): { successRate: string; latencyP99: string } {
  // A regex, as in Argo's docs: on Gateway API the destination is the backend Service (<service>-stable or -canary).
  const sel = `reporter="source",destination_service=~"{{args.service}}"${byVersion ? ',destination_version="{{args.canary-version}}"' : ''}`;
  return {
    successRate: `sum(irate(istio_requests_total{${sel},response_code!~"5.*"}[${window}])) / sum(irate(istio_requests_total{${sel}}[${window}]))`,
    latencyP99: `histogram_quantile(0.99, sum(irate(istio_request_duration_milliseconds_bucket{${sel}}[${window}])) by (le))`,
  };
}

/** The AnalysisTemplate's spec: success rate and p99 latency, each failing the rollout after maxFailedChecks failures. */
export function analysisTemplateSpec(pd: ProgressiveDeliveryModel, byVersion: boolean): Record<string, unknown> {
  const interval = pd.interval.toIstio();
  const q = analysisQueries(interval, byVersion);
  const provider = (query: string) => ({ prometheus: { address: pd.prometheusAddress, query } });
  // Argo fails a metric when its failures exceed failureLimit.
  const failureLimit = pd.maxFailedChecks - 1;
  return {
    args: byVersion ? [{ name: 'service' }, { name: 'canary-version' }] : [{ name: 'service' }],
    metrics: [
      { name: 'success-rate', interval, failureLimit, successCondition: `result[0] >= ${round(pd.successRate / 100)}`, provider: provider(q.successRate) },
      { name: 'latency-p99', interval, failureLimit, successCondition: `result[0] <= ${round(pd.maxLatency.toMilliseconds())}`, provider: provider(q.latencyP99) },
    ],
  };
}

const round = (n: number) => Math.round(n * 1e6) / 1e6;

/**
 * The Rollout and its AnalysisTemplate for a rendering, on a data plane whose traffic
 * router is `router` (none: replica counts). On Gateway API the router is Argo's plugin,
 * weighing the per-subset Services `<service>-stable` and `-canary`, and Istio reports the
 * backend Service as the destination, so the analysis selects all three.
 */
export function renderArgoRollout(scope: Construct, id: string, r: RolloutRendering, router: 'istio' | 'gateway-api' | undefined): ArgoRollout {
  const ns = r.namespace ?? 'default';
  const routing: ArgoTrafficRouting = !r.traffic || !router ? { kind: 'replicas' }
    : router === 'istio'
      ? { kind: 'istio', virtualService: r.traffic.routeName, route: 'primary', destinationRule: r.traffic.policyName, stableSubset: 'stable', canarySubset: 'canary' }
      : { kind: 'gateway-api', httpRoute: r.traffic.routeName, namespace: ns, stableService: `${r.serviceName}-stable`, canaryService: `${r.serviceName}-canary` };
  const service = routing.kind === 'gateway-api' ? `${r.serviceName}(-stable|-canary)?.${ns}.svc.cluster.local` : `${r.serviceName}.${ns}.svc.cluster.local`;
  const metadata = { name: r.name, ...(r.namespace ? { namespace: r.namespace } : {}) };
  const rollout = new ArgoRollout(scope, id, {
    metadata,
    spec: rolloutSpec({
      name: r.name, namespace: r.namespace, deploymentName: r.deploymentName, replicas: r.replicas, selector: r.selector,
      weights: r.weights, header: r.header, routing, service, canaryVersion: r.canaryVersion, pd: r.pd,
    }),
  });
  // By the canary's version label where Istio's proxies report; the node sidecar sees the Service only (it goes through the ClusterIP).
  new ArgoAnalysisTemplate(scope, `${id}Analysis`, { metadata: { ...metadata, name: analysisTemplateName(r.name) }, spec: analysisTemplateSpec(r.pd, routing.kind !== 'replicas') });
  return rollout;
}
