/**
 * Flagger's Canary for a CanaryRelease (flagger.app/v1beta1). Flagger then writes, for the
 * Service's name, the `-primary` Deployment, the Services `<name>`, `<name>-primary` and
 * `<name>-canary`, the VirtualService `<name>` and the DestinationRules `<name>-primary` and
 * `<name>-canary`, so the chart writes none of those. Field names from Flagger v1.44's CRD
 * (crds/flagger-v1.44.0/) and its Istio tutorials (progressive delivery, A/B testing).
 */
import { ApiObject, ApiObjectMetadata } from 'cdk8s';
import { Construct } from 'constructs';
import type { HeaderMatchModel } from '../../model';
import type { ProgressiveDeliveryModel } from '../progressive-delivery';

export const FLAGGER_API_VERSION = 'flagger.app/v1beta1';

/** A Flagger Canary. */
export class FlaggerCanary extends ApiObject {
  static readonly KIND = 'Canary';
  constructor(scope: Construct, id: string, props: { readonly metadata: ApiObjectMetadata; readonly spec: Record<string, unknown> }) {
    super(scope, id, { apiVersion: FLAGGER_API_VERSION, kind: FlaggerCanary.KIND, metadata: props.metadata, spec: props.spec });
  }
}

/** The objects Flagger writes for a Service name: the chart must not write them. */
export function flaggerOwned(service: string): { services: string[]; virtualServices: string[]; destinationRules: string[] } {
  return {
    services: [service, `${service}-primary`, `${service}-canary`],
    virtualServices: [service],
    destinationRules: [`${service}-primary`, `${service}-canary`],
  };
}

export interface FlaggerCanaryInput {
  readonly deploymentName: string;
  readonly serviceName: string;
  readonly port: number;
  readonly targetPort: number;
  readonly portName?: string;
  /** The canary's weight at each step, below 100 (100 is the promotion). */
  readonly weights: readonly number[];
  readonly header?: { readonly name: string; readonly match: HeaderMatchModel };
  /** Istio's forms of the route's timeout and retries and the policy's trafficPolicy. */
  readonly timeout?: string;
  readonly retries?: Record<string, unknown>;
  readonly trafficPolicy?: Record<string, unknown>;
  readonly pd: ProgressiveDeliveryModel;
}

/** The Canary's spec. */
export function canarySpec(i: FlaggerCanaryInput): Record<string, unknown> {
  const f = i.pd.flagger;
  const interval = i.pd.stepDuration.toIstio();
  const analysis: Record<string, unknown> = { interval, threshold: i.pd.maxFailedChecks };
  if (f.iterations !== undefined) {
    // A/B testing (only the header's requests on the canary) or blue/green with mirroring.
    analysis.iterations = f.iterations;
    if (i.header) analysis.match = [{ headers: { [i.header.name]: { [i.header.match.kind]: i.header.match.value } } }];
    if (f.mirror) analysis.mirror = true;
  } else if (i.weights.every((w, n) => w === i.weights[0] * (n + 1))) {
    // Evenly spaced from the first: Flagger's own form, as in its tutorials.
    analysis.maxWeight = i.weights[i.weights.length - 1];
    analysis.stepWeight = i.weights[0];
  } else {
    analysis.stepWeights = [...i.weights];
  }
  // Flagger's built-in Istio checks: request-success-rate in percent, request-duration (p99) in milliseconds.
  analysis.metrics = [
    { name: 'request-success-rate', thresholdRange: { min: i.pd.successRate }, interval: i.pd.interval.toIstio() },
    { name: 'request-duration', thresholdRange: { max: i.pd.maxLatency.toMilliseconds() }, interval: i.pd.interval.toIstio() },
  ];
  if (f.webhooks.length) {
    analysis.webhooks = f.webhooks.map((w) => ({
      name: w.name, ...(w.type ? { type: w.type } : {}), url: w.url,
      ...(w.timeout ? { timeout: w.timeout.toIstio() } : {}), ...(w.metadata ? { metadata: { ...w.metadata } } : {}),
    }));
  }
  const service: Record<string, unknown> = {
    // Flagger names the Services after the Deployment unless told otherwise.
    ...(i.serviceName !== i.deploymentName ? { name: i.serviceName } : {}),
    port: i.port,
    targetPort: i.targetPort,
    ...(i.portName ? { portName: i.portName } : {}),
    ...(f.hosts?.length ? { hosts: [...f.hosts] } : {}),
    ...(f.gateways?.length ? { gateways: [...f.gateways] } : {}),
    ...(i.timeout ? { timeout: i.timeout } : {}),
    ...(i.retries ? { retries: i.retries } : {}),
    ...(i.trafficPolicy ? { trafficPolicy: i.trafficPolicy } : {}),
  };
  return {
    targetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: i.deploymentName },
    ...(f.progressDeadlineSeconds !== undefined ? { progressDeadlineSeconds: f.progressDeadlineSeconds } : {}),
    service,
    analysis,
  };
}
