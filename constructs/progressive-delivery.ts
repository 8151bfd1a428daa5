import { Check, checkDuration, Duration } from '../model';

/** The controllers a CanaryRelease can hand its steps to. */
export type ProgressiveEngine = 'argo-rollouts' | 'flagger';

/**
 * How the controller judges the canary between steps: Istio's standard metrics in
 * Prometheus (`istio_requests_total`, `istio_request_duration_milliseconds`), which both
 * Istio's proxies and the node sidecar export.
 */
export interface CanaryAnalysis {
  /** Lowest share of the canary's answers that are not 5xx, in percent. @default 99 */
  readonly successRate?: number;
  /** Highest 99th-percentile latency of the canary's answers. @default "500ms" */
  readonly maxLatency?: Duration | string;
  /** How often the metrics are read, and over what window (Argo: each measurement; Flagger: each metric's interval). @default "1m" */
  readonly interval?: Duration | string;
  /** Failed checks that roll the release back (Argo: failureLimit + 1; Flagger: threshold). @default 5 */
  readonly maxFailedChecks?: number;
  /**
   * Where Argo Rollouts' AnalysisTemplate asks Prometheus. Flagger asks the server it was
   * installed with (its --metrics-server flag), so this is Argo's only.
   * @default "http://prometheus.istio-system:9090" (Istio's Prometheus addon)
   */
  readonly prometheusAddress?: string;
}

/** What both engines share: how long a step holds and how the canary is judged. */
export interface ProgressiveDeliveryOptions {
  /** How long each step holds before the next (Argo: a timed pause; Flagger: the analysis interval). @default "1m" */
  readonly stepDuration?: Duration | string;
  /** The metric checks. @default - success rate >= 99 %, p99 <= 500 ms, every minute */
  readonly analysis?: CanaryAnalysis;
}

/** Argo Rollouts: a Rollout that adopts the release's Deployment. */
export interface ArgoRolloutsOptions extends ProgressiveDeliveryOptions {
  /**
   * What happens to the adopted Deployment's own pods (`workloadRef.scaleDown`):
   * "onsuccess" scales it to zero once the Rollout is healthy, "progressively" as the
   * Rollout scales up, "never" leaves it.
   * @default "onsuccess"
   */
  readonly scaleDown?: 'never' | 'onsuccess' | 'progressively';
  /** Seconds before an aborted canary's pods are scaled down. @default - Argo's (30) */
  readonly abortScaleDownDelaySeconds?: number;
  /** Scale the stable ReplicaSet down as traffic moves to the canary. @default false */
  readonly dynamicStableScale?: boolean;
  /** Stop before full promotion until someone runs `kubectl argo rollouts promote`. @default false */
  readonly manualPromotion?: boolean;
}

/** A Flagger webhook (https://docs.flagger.app/usage/webhooks). */
export interface FlaggerWebhook {
  readonly name: string;
  /** @default "rollout" */
  readonly type?: 'confirm-rollout' | 'pre-rollout' | 'rollout' | 'confirm-traffic-increase' | 'confirm-promotion' | 'post-rollout' | 'rollback' | 'event';
  readonly url: string;
  /** @default - Flagger's (60s) */
  readonly timeout?: Duration | string;
  /** Passed to the webhook, e.g. the load tester's `cmd`. */
  readonly metadata?: { [key: string]: string };
}

/** Flagger: a Canary for the release's Deployment; Flagger writes the Services and routes. */
export interface FlaggerOptions extends ProgressiveDeliveryOptions {
  /** Seconds the canary may take to make progress before Flagger rolls back. @default - Flagger's (600) */
  readonly progressDeadlineSeconds?: number;
  /**
   * A/B testing: this many analysis runs with only the release's `canaryHeader` requests on
   * the canary, no weights (Flagger routes by header only this way). Needs `canaryHeader`.
   * @default - weighted steps
   */
  readonly iterations?: number;
  /** With `iterations` and no header: blue/green with the traffic mirrored to the canary. @default false */
  readonly mirror?: boolean;
  /** Load tests, acceptance tests and gates. @default - none */
  readonly webhooks?: FlaggerWebhook[];
  /** Hosts of the VirtualService Flagger writes, beside the Service's own name. @default - none */
  readonly hosts?: string[];
  /** Istio gateways of that VirtualService ("namespace/name"), with `mesh` for in-mesh callers. @default - the mesh only */
  readonly gateways?: string[];
}

/**
 * Hands a CanaryRelease's steps to a progressive-delivery controller, which moves the
 * weight, reads the metrics and rolls back on its own:
 *
 * ```ts
 * new CanaryRelease(chart, 'shop', { ..., steps: [10, 25, 50],
 *   progressiveDelivery: ProgressiveDelivery.argoRollouts({ stepDuration: '5m' }) });
 * ```
 */
export class ProgressiveDelivery {
  /** Argo Rollouts (argoproj.io/v1alpha1 Rollout and AnalysisTemplate). */
  static argoRollouts(options: ArgoRolloutsOptions = {}): ProgressiveDelivery {
    return new ProgressiveDelivery('argo-rollouts', options);
  }

  /** Flagger (flagger.app/v1beta1 Canary). */
  static flagger(options: FlaggerOptions = {}): ProgressiveDelivery {
    return new ProgressiveDelivery('flagger', options);
  }

  /** The controller's name as its users write it. */
  get title(): string { return this.engine === 'argo-rollouts' ? 'Argo Rollouts' : 'Flagger'; }

  /** @internal */
  readonly _options: ArgoRolloutsOptions & FlaggerOptions;

  private constructor(readonly engine: ProgressiveEngine, options: ArgoRolloutsOptions & FlaggerOptions) {
    this._options = options;
  }
}

/** The options, checked and with their defaults. */
export interface ProgressiveDeliveryModel {
  readonly engine: ProgressiveEngine;
  readonly title: string;
  readonly stepDuration: Duration;
  readonly successRate: number;
  readonly maxLatency: Duration;
  readonly interval: Duration;
  readonly maxFailedChecks: number;
  readonly prometheusAddress: string;
  readonly argo: ArgoRolloutsModel;
  readonly flagger: FlaggerModel;
}
/** Argo Rollouts' settings, checked. */
export interface ArgoRolloutsModel {
  readonly scaleDown: 'never' | 'onsuccess' | 'progressively';
  readonly abortScaleDownDelaySeconds?: number;
  readonly dynamicStableScale?: boolean;
  readonly manualPromotion?: boolean;
}
/** Flagger's settings, checked. */
export interface FlaggerModel {
  readonly progressDeadlineSeconds?: number;
  readonly iterations?: number;
  readonly mirror?: boolean;
  readonly hosts?: string[];
  readonly gateways?: string[];
  readonly webhooks: FlaggerWebhookModel[];
}
/** A Flagger webhook, checked. */
export interface FlaggerWebhookModel {
  readonly name: string;
  readonly type?: FlaggerWebhook['type'];
  readonly url: string;
  readonly timeout?: Duration;
  readonly metadata?: { [key: string]: string };
}

export const DEFAULT_PROMETHEUS_ADDRESS = 'http://prometheus.istio-system:9090';

const ARGO_KEYS = ['stepDuration', 'analysis', 'scaleDown', 'abortScaleDownDelaySeconds', 'dynamicStableScale', 'manualPromotion'];
const FLAGGER_KEYS = ['stepDuration', 'analysis', 'progressDeadlineSeconds', 'iterations', 'mirror', 'webhooks', 'hosts', 'gateways'];
const WEBHOOK_TYPES = ['confirm-rollout', 'pre-rollout', 'rollout', 'confirm-traffic-increase', 'confirm-promotion', 'post-rollout', 'rollback', 'event'];

/** Check a ProgressiveDelivery (field names start with `field`) and fill in the defaults. */
export function buildProgressiveDelivery(check: Check, field: string, pd: unknown): ProgressiveDeliveryModel {
  if (!(pd instanceof ProgressiveDelivery)) check.fail(field, pd, 'ProgressiveDelivery.argoRollouts({...}) or ProgressiveDelivery.flagger({...})');
  const o = pd._options;
  check.object(`${field} options`, o as unknown);
  const known = pd.engine === 'argo-rollouts' ? ARGO_KEYS : FLAGGER_KEYS;
  for (const k of Object.keys(o)) {
    if (!known.includes(k)) {
      const other = pd.engine === 'argo-rollouts' ? FLAGGER_KEYS.includes(k) && 'Flagger' : ARGO_KEYS.includes(k) && 'Argo Rollouts';
      check.fail(`${field}.${k}`, (o as Record<string, unknown>)[k], other ? `no ${k} for ${pd.title} (it is ${other}'s option)` : `one of ${known.join(', ')}`);
    }
  }
  const a: CanaryAnalysis = o.analysis ?? {};
  check.object(`${field}.analysis`, a as unknown);
  for (const k of Object.keys(a)) {
    if (!['successRate', 'maxLatency', 'interval', 'maxFailedChecks', 'prometheusAddress'].includes(k)) check.fail(`${field}.analysis.${k}`, (a as Record<string, unknown>)[k], 'one of successRate, maxLatency, interval, maxFailedChecks, prometheusAddress');
  }
  const successRate = a.successRate ?? 99;
  if (typeof successRate !== 'number' || !(successRate > 0 && successRate <= 100)) check.fail(`${field}.analysis.successRate`, successRate, 'a percentage above 0 and at most 100');
  const maxFailedChecks = a.maxFailedChecks ?? 5;
  check.integer(`${field}.analysis.maxFailedChecks`, maxFailedChecks, 1, 1000);
  const prometheusAddress = a.prometheusAddress ?? DEFAULT_PROMETHEUS_ADDRESS;
  if (pd.engine === 'flagger' && a.prometheusAddress !== undefined) check.fail(`${field}.analysis.prometheusAddress`, a.prometheusAddress, 'no address for Flagger: it asks the Prometheus it was installed with (--metrics-server)');
  if (typeof prometheusAddress !== 'string' || !/^https?:\/\/[^\s/]+(\/\S*)?$/.test(prometheusAddress)) check.fail(`${field}.analysis.prometheusAddress`, prometheusAddress, 'an http(s) URL such as "http://prometheus.istio-system:9090"');
  const scaleDown = o.scaleDown ?? 'onsuccess';
  if (!['never', 'onsuccess', 'progressively'].includes(scaleDown)) check.fail(`${field}.scaleDown`, scaleDown, 'one of never, onsuccess, progressively');
  if (o.abortScaleDownDelaySeconds !== undefined) check.integer(`${field}.abortScaleDownDelaySeconds`, o.abortScaleDownDelaySeconds, 0, 86400);
  if (o.dynamicStableScale !== undefined && typeof o.dynamicStableScale !== 'boolean') check.fail(`${field}.dynamicStableScale`, o.dynamicStableScale, 'true or false');
  if (o.manualPromotion !== undefined && typeof o.manualPromotion !== 'boolean') check.fail(`${field}.manualPromotion`, o.manualPromotion, 'true or false');
  if (o.dynamicStableScale && o.abortScaleDownDelaySeconds !== undefined) check.fail(`${field}.abortScaleDownDelaySeconds`, o.abortScaleDownDelaySeconds, 'no abortScaleDownDelaySeconds with dynamicStableScale (Argo refuses the pair)');
  if (o.progressDeadlineSeconds !== undefined) check.integer(`${field}.progressDeadlineSeconds`, o.progressDeadlineSeconds, 1, 86400);
  if (o.iterations !== undefined) check.integer(`${field}.iterations`, o.iterations, 1, 1000);
  if (o.mirror !== undefined && typeof o.mirror !== 'boolean') check.fail(`${field}.mirror`, o.mirror, 'true or false');
  if (o.mirror && o.iterations === undefined) check.fail(`${field}.mirror`, o.mirror, 'mirror only with iterations (Flagger mirrors in blue/green runs, not weighted steps)');
  const webhooks = (o.webhooks ?? []).map((w, i) => {
    const f = `${field}.webhooks[${i}]`;
    check.shape(f, w, { name: 'string', type: 'string?', url: 'string', metadata: 'stringMap?' });
    check.nonEmptyString(`${f}.name`, w.name);
    if (w.type !== undefined && !WEBHOOK_TYPES.includes(w.type)) check.fail(`${f}.type`, w.type, `one of ${WEBHOOK_TYPES.join(', ')}`);
    if (!/^https?:\/\/\S+$/.test(w.url)) check.fail(`${f}.url`, w.url, 'an http(s) URL');
    for (const [k, v] of Object.entries(w.metadata ?? {})) if (typeof v !== 'string') check.fail(`${f}.metadata.${k}`, v, 'a string');
    return { ...w, timeout: w.timeout === undefined ? undefined : checkDuration(check, `${f}.timeout`, w.timeout) };
  });
  const names = webhooks.map((w) => w.name);
  names.forEach((n, i) => { if (names.indexOf(n) !== i) check.fail(`${field}.webhooks[${i}].name`, n, 'a name no other webhook has'); });
  for (const [k, list] of [['hosts', o.hosts], ['gateways', o.gateways]] as const) {
    (list ?? []).forEach((h, i) => { if (typeof h !== 'string' || h.length === 0) check.fail(`${field}.${k}[${i}]`, h, 'a non-empty string'); });
  }
  return {
    engine: pd.engine,
    title: pd.title,
    stepDuration: checkDuration(check, `${field}.stepDuration`, o.stepDuration ?? '1m'),
    successRate,
    maxLatency: checkDuration(check, `${field}.analysis.maxLatency`, a.maxLatency ?? '500ms'),
    interval: checkDuration(check, `${field}.analysis.interval`, a.interval ?? '1m'),
    maxFailedChecks,
    prometheusAddress,
    argo: { scaleDown, abortScaleDownDelaySeconds: o.abortScaleDownDelaySeconds, dynamicStableScale: o.dynamicStableScale, manualPromotion: o.manualPromotion },
    flagger: { progressDeadlineSeconds: o.progressDeadlineSeconds, iterations: o.iterations, mirror: o.mirror, hosts: o.hosts, gateways: o.gateways, webhooks },
  };
}
