import { ApiObject, Chart, JsonPatch } from 'cdk8s';
import { Construct } from 'constructs';
import {
  buildTrafficPolicy, buildTrafficRoute, Check, checkDns1123Label, DataPlaneName, Duration, HeaderMatch, HeaderMatchModel, HttpMatch, HttpRetry, HttpRule,
  FeatureUse, MeshRefusals, MeshValidationError, ServiceRef, TrafficPolicy,
} from '../model';
import { gate } from './capability-gate';
import { DestinationPolicy } from './destination-policy';
import { renderHttpRoute, renderTrafficPolicy } from './istio/renderer';
import { renderAtSynth, rendererOf } from './mesh';
import { MeshNamespace } from './mesh-namespace';
import { MeshWorkload, WorkloadOptions } from './mesh-workload';
import { canarySpec, FlaggerCanary, flaggerOwned } from './progressive/flagger';
import { buildProgressiveDelivery, ProgressiveDelivery, ProgressiveDeliveryModel } from './progressive-delivery';
import { TrafficRoute } from './traffic-route';
import { refuseUnknownProps } from './known-props';

/** One version of the released app. */
export interface CanaryVersionProps extends WorkloadOptions {
  /** The `version` label and subset name, e.g. "v1". */
  readonly version: string;
}

/** A request header that sends a request to the canary whatever the weights. */
export interface CanaryHeader {
  readonly name: string;
  readonly match: HeaderMatch;
}

/** What CanaryRelease.rulesFor() puts before the split. */
export interface CanaryRulesOptions {
  /** Only requests matching these take the rules. @default - every request */
  readonly match?: HttpMatch[];
  /** The destination port. @default - the Service's only port */
  readonly port?: number;
}

/** A stable and a canary version behind one Service, split by weight. */
export interface CanaryReleaseProps {
  /** The `app` label shared by both versions. */
  readonly app: string;
  /** The one Service in front of both versions. @default `${app}` */
  readonly serviceName?: string;
  /** Container port (both versions). */
  readonly port: number;
  /** The Service and container port name (its prefix tells Istio the protocol). @default "http" */
  readonly portName?: string;
  /** The Service port. @default - the container port */
  readonly servicePort?: number;
  /**
   * The version that takes the rest of the traffic. Required for a split the chart writes;
   * none with `progressiveDelivery` (the controller keeps the running version).
   * @default - none: required unless progressiveDelivery is given
   */
  readonly stable?: CanaryVersionProps;
  /** The new version, taking canaryWeight percent. */
  readonly canary: CanaryVersionProps;
  /** Percent of traffic to the canary. Give this or `steps`. @default - from `steps` */
  readonly canaryWeight?: number;
  /**
   * A progressive rollout: the canary's percentage at each stage, e.g. [10, 30, 50, 100].
   * `currentStep` picks the stage this synth renders, so each stage is reproducible.
   * @default - a single stage, `canaryWeight`
   */
  readonly steps?: number[];
  /** Index into `steps`. @default 0 */
  readonly currentStep?: number;
  /** Requests with this header always go to the canary (e.g. testers). @default - none */
  readonly canaryHeader?: CanaryHeader;
  /** Timeout of every request to the Service. @default - none */
  readonly timeout?: Duration | string;
  /** Retries of requests to the Service. @default - Istio's default */
  readonly retries?: HttpRetry;
  /** Load balancer, connection pool, outlier detection and TLS. @default - Istio's defaults */
  readonly trafficPolicy?: TrafficPolicy;
  /** A MeshNamespace the chart owns, or the name of one. @default - the chart's namespace */
  readonly namespace?: MeshNamespace | string;
  /** The route's name (Istio: the VirtualService). @default `${serviceName}-vs` */
  readonly routeName?: string;
  /** The policy's name (Istio: the DestinationRule). @default `${serviceName}-dr` */
  readonly policyName?: string;
  /**
   * Hand the steps to a controller (Argo Rollouts or Flagger) that moves the weight, reads
   * the metrics and rolls back on its own. The chart then writes the canary's template only
   * (the running version is the controller's), the steps, header route and analysis once.
   * @default - none: the chart writes the split of `currentStep`
   */
  readonly progressiveDelivery?: ProgressiveDelivery;
}

const ownedList = (o: ReturnType<typeof flaggerOwned>) => [...o.services.map((n) => `Service ${n}`), ...o.virtualServices.map((n) => `VirtualService ${n}`), ...o.destinationRules.map((n) => `DestinationRule ${n}`)].join(', ');

/**
 * One Service, a stable and a canary Deployment, subsets by version and a weighted
 * split between them, optionally staged.
 */
export class CanaryRelease extends Construct implements ServiceRef {
  /** The stable version's workload; absent when a controller keeps the running version (`progressiveDelivery`). */
  readonly stable?: MeshWorkload;
  /** The canary's workload: with `progressiveDelivery`, the Deployment the controller adopts or targets. */
  readonly canary: MeshWorkload;
  /** The subsets (Istio: the DestinationRule); absent when Flagger writes them, or without subsets (node sidecar with Argo Rollouts). */
  readonly policy?: DestinationPolicy;
  /** The split (Istio: the VirtualService); absent when Flagger writes it, or when Argo Rollouts scales replicas instead. */
  readonly route?: TrafficRoute;
  /** The controller's settings, checked; absent for a split the chart writes. */
  readonly progressiveDelivery?: ProgressiveDeliveryModel;
  /** The canary's weight at each step the controller takes (the promotion to 100 not included). */
  readonly weights: number[];
  readonly serviceName: string;
  readonly serviceNamespace?: string;
  readonly servicePorts?: number[];
  readonly subsetNames?: string[];
  private weight: number;
  private rules: readonly HttpRule[];
  private readonly steps?: readonly number[];
  private readonly splitRules: (weight: number) => HttpRule[];
  private rulesGiven = false;

  constructor(scope: Construct, id: string, props: CanaryReleaseProps) {
    super(scope, id);
    const check: Check = new Check(this.node.path);
    check.shape('', props, {
      app: 'string', serviceName: 'string?', port: 'number', portName: 'string?', servicePort: 'number?', stable: 'object?', canary: 'object',
      canaryWeight: 'number?', steps: 'array?', currentStep: 'number?', canaryHeader: 'object?', retries: 'object?', trafficPolicy: 'object?',
      routeName: 'string?', policyName: 'string?', progressiveDelivery: 'object?',
    });
    // Keys the props interface does not declare are refused (JavaScript has no compiler to); a subclass may add its own.
    if (new.target === CanaryRelease) refuseUnknownProps(this.node.path, 'CanaryReleaseProps', props);
    check.port('port', props.port);
    // The Service belongs to the release: name, port and namespace are set once, on the
    // release. The same value repeated on a version is harmless; a different one would be ignored.
    const shared: Record<string, unknown> = { app: props.app, namespace: props.namespace, mesh: true, port: props.port, service: undefined, serviceName: props.serviceName, servicePort: props.servicePort, portName: props.portName };
    if (props.progressiveDelivery === undefined && props.stable === undefined) check.fail('stable', props.stable, 'the running version\'s props (version, image, ...): required without progressiveDelivery');
    if (props.progressiveDelivery !== undefined && props.stable !== undefined) check.fail('stable', props.stable, 'no stable with progressiveDelivery: the controller keeps the running version\'s pods, and the chart writes the canary\'s template only (move what it needs to canary)');
    for (const side of ['stable', 'canary'] as const) {
      const v = props[side] as unknown as Record<string, unknown> | undefined;
      if (v === undefined) continue;
      for (const [k, expected] of Object.entries(shared)) {
        if (v[k] !== undefined && v[k] !== expected) check.fail(`${side}.${k}`, v[k], `no ${k} here, or the release's: set it on the CanaryRelease (both versions share it)`);
      }
    }
    if (props.stable) checkDns1123Label(check, 'stable.version', props.stable.version);
    checkDns1123Label(check, 'canary.version', props.canary.version);
    if (props.stable && props.stable.version === props.canary.version) check.fail('canary.version', props.canary.version, `a version other than the stable one ("${props.stable.version}")`);

    // Flagger's A/B and blue/green runs (iterations) have no weights at all.
    const iterations = props.progressiveDelivery instanceof ProgressiveDelivery && props.progressiveDelivery.engine === 'flagger' ? props.progressiveDelivery._options.iterations : undefined;
    if (iterations !== undefined) {
      if (props.steps !== undefined || props.canaryWeight !== undefined) check.fail(props.steps !== undefined ? 'steps' : 'canaryWeight', props.steps ?? props.canaryWeight, 'no steps or canaryWeight with Flagger\'s iterations: an A/B or blue/green run moves no weight');
    } else if ((props.canaryWeight === undefined) === (props.steps === undefined)) {
      check.fail('canaryWeight', props.canaryWeight, 'either canaryWeight or steps (exactly one)');
    }
    let canaryWeight: number;
    if (iterations !== undefined) {
      canaryWeight = 0;
    } else if (props.steps !== undefined) {
      check.array('steps', props.steps, 1);
      props.steps.forEach((s, i) => {
        check.integer(`steps[${i}]`, s, 0, 100);
        if (i > 0 && s <= props.steps![i - 1]) check.fail(`steps[${i}]`, s, `a value above the previous step (${props.steps![i - 1]}): steps only move traffic forward`);
      });
      const step = props.currentStep ?? 0;
      check.integer('currentStep', step, 0, props.steps.length - 1);
      canaryWeight = props.steps[step];
    } else {
      if (props.currentStep !== undefined) check.fail('currentStep', props.currentStep, 'no currentStep without steps');
      check.integer('canaryWeight', props.canaryWeight, 0, 100);
      canaryWeight = props.canaryWeight!;
    }
    this.weight = canaryWeight;
    this.steps = props.steps ? [...props.steps] : undefined;
    this.splitRules = () => [];

    const serviceName = props.serviceName ?? props.app;
    const common = { app: props.app, port: props.port, portName: props.portName, namespace: props.namespace, mesh: true };
    this.serviceName = serviceName;
    this.weights = [canaryWeight];

    if (props.progressiveDelivery !== undefined) {
      const pd = buildProgressiveDelivery(check, 'progressiveDelivery', props.progressiveDelivery);
      this.progressiveDelivery = pd;
      const plane = rendererOf(this).dataPlane;
      if (props.currentStep !== undefined) check.fail('currentStep', props.currentStep, `no currentStep with progressiveDelivery: ${pd.title} moves the weight through steps on its own`);
      const weights = iterations !== undefined ? [] : (props.steps ?? [canaryWeight]).filter((w) => w < 100);
      weights.forEach((w) => { if (w <= 0) check.fail(props.steps ? 'steps' : 'canaryWeight', props.steps ?? canaryWeight, 'weights above 0 for the controller to step through (100 is the promotion)'); });
      if (weights.length === 0 && iterations === undefined) check.fail(props.steps ? 'steps' : 'canaryWeight', props.steps ?? canaryWeight, 'at least one weight below 100 (100 alone is a promotion, not a canary)');
      this.weights = weights;
      this.weight = 0;
      let header: { name: string; match: HeaderMatchModel } | undefined;
      if (props.canaryHeader) {
        check.object('canaryHeader', props.canaryHeader);
        check.nonEmptyString('canaryHeader.name', props.canaryHeader.name);
        // Parsed as a route match would be, for the same errors and forms.
        const parsed = buildTrafficRoute(this.node.path, { hosts: [this], http: [{ match: [{ headers: { [props.canaryHeader.name]: props.canaryHeader.match } }], route: [{ to: this }] }] });
        const match = parsed.http[0].match[0].headers[props.canaryHeader.name];
        if (match.kind === 'present') check.fail('canaryHeader.match', props.canaryHeader.match, `exact, prefix or regex with ${pd.title} (a header's mere presence is not a match it can write)`);
        header = { name: props.canaryHeader.name, match };
      }
      // What each plane carries is the capability table's (model/capabilities.ts): refused with its why and instead.
      const uses: FeatureUse[] = [{ feature: pd.engine === 'flagger' ? 'release.flagger' : 'release.argoRollouts', field: 'progressiveDelivery', value: pd.title }];
      if (header && pd.engine === 'argo-rollouts') uses.push({ feature: 'release.argoRollouts.headerRoute', field: 'canaryHeader', value: props.canaryHeader });
      const { problems } = gate(this.node.path, plane as unknown as DataPlaneName, {}, [], uses);
      if (problems.length === 1) throw problems[0];
      if (problems.length > 1) throw new MeshRefusals(problems.map((p) => p.message), this.node.path);
      if (pd.engine === 'flagger' && header && pd.flagger.iterations === undefined) {
        check.fail('canaryHeader', props.canaryHeader, 'no canaryHeader with Flagger\'s weighted steps (Flagger routes by header only in A/B testing): give ProgressiveDelivery.flagger({ iterations }) for an A/B test on the header, or drop it');
      }

      const flagger = pd.engine === 'flagger';
      const canaryProps = props.canary as unknown as Record<string, unknown>;
      if (flagger && canaryProps.serviceLabels !== undefined) check.fail('canary.serviceLabels', canaryProps.serviceLabels, 'no serviceLabels with Flagger: it writes the Services');
      this.canary = new MeshWorkload(this, 'canary', {
        ...props.canary, ...common, deploymentName: props.canary.deploymentName ?? props.app,
        // Flagger writes the Services (<name>, -primary, -canary); Argo Rollouts uses the chart's.
        ...(flagger ? { service: false } : { serviceName, servicePort: props.servicePort }),
      });
      this.serviceNamespace = this.canary.namespace;
      const servicePort = props.servicePort ?? props.port;
      this.servicePorts = [servicePort];
      // The Rollout or Canary is named after the Deployment, as in both controllers' docs.
      const workloadName = this.canary.deployment.name;
      const meta = { name: workloadName, ...(this.serviceNamespace ? { namespace: this.serviceNamespace } : {}) };

      if (!flagger) {
        // The Rollout owns the replica count: without replicas in the Deployment, re-applying
        // the chart does not undo Argo's scale-down of it (a new Deployment starts at 1).
        ApiObject.of(this.canary.deployment).addJsonPatch(JsonPatch.remove('/spec/replicas'));
        // Where the data plane has a traffic router for Argo (Istio, Gateway API): subsets
        // stable/canary and the named route at its starting weights; else replica counts.
        const router = rendererOf(this).rolloutTrafficRouter;
        const routeName = props.routeName ?? `${serviceName}-vs`;
        const policyName = props.policyName ?? `${serviceName}-dr`;
        if (router || props.trafficPolicy) {
          // Argo Rollouts adds rollouts-pod-template-hash to each subset's labels (Services' selectors) as it goes.
          this.policy = new DestinationPolicy(this, 'policy', {
            name: policyName, service: this, trafficPolicy: props.trafficPolicy,
            subsets: router ? [{ name: 'stable', labels: { app: props.app } }, { name: 'canary', labels: { app: props.app } }] : undefined,
          });
          this.subsetNames = this.policy.subsets.map((s) => s.name);
        }
        if (router || props.timeout || props.retries) {
          // The named route Argo Rollouts sets the weights of, at its starting weights.
          const primary: HttpRule = {
            name: 'primary',
            route: router ? [{ to: this, subset: 'stable', weight: 100 }, { to: this, subset: 'canary', weight: 0 }] : [{ to: this }],
            timeout: props.timeout,
            retries: props.retries,
          };
          this.route = new TrafficRoute(this, 'route', { name: routeName, namespace: this.serviceNamespace, hosts: [this], http: [primary] });
        }
        renderAtSynth(this, () => rendererOf(this).renderRollout(this, 'Rollout', {
          name: workloadName, namespace: this.serviceNamespace, deploymentName: workloadName, replicas: props.canary.replicas ?? 1,
          selector: { app: props.app }, weights, header, serviceName, canaryVersion: props.canary.version, pd,
          traffic: router ? { routeName, policyName } : undefined,
        }));
      } else {
        // Flagger writes the route and the policy: their settings go into the Canary.
        const parsed = (props.timeout !== undefined || props.retries !== undefined)
          ? renderHttpRoute(buildTrafficRoute(this.node.path, { hosts: [this], http: [{ route: [{ to: this }], timeout: props.timeout, retries: props.retries }] }).http[0], this.serviceNamespace)
          : undefined;
        const trafficPolicy = renderTrafficPolicy(buildTrafficPolicy(check, 'trafficPolicy', props.trafficPolicy));
        new FlaggerCanary(this, 'Canary', {
          metadata: meta,
          spec: canarySpec({
            deploymentName: workloadName, serviceName, port: servicePort, targetPort: props.port, portName: props.portName,
            weights, header, pd,
            timeout: parsed?.timeout as string | undefined,
            retries: parsed?.retries as Record<string, unknown> | undefined,
            trafficPolicy: trafficPolicy as Record<string, unknown> | undefined,
          }),
        });
        this.node.addValidation({ validate: () => this.flaggerOwnedObjects() });
      }
      this.subsetNames ??= [];
      this.rules = [];
      return;
    }

    const stable = props.stable!;
    this.stable = new MeshWorkload(this, 'stable', {
      ...stable, ...common, deploymentName: stable.deploymentName ?? `${props.app}-${stable.version}`,
      serviceName, servicePort: props.servicePort,
    });
    this.canary = new MeshWorkload(this, 'canary', {
      ...props.canary, ...common, deploymentName: props.canary.deploymentName ?? `${props.app}-${props.canary.version}`,
      service: false,
    });
    this.serviceNamespace = this.stable.namespace;
    this.servicePorts = this.stable.servicePorts;

    this.policy = new DestinationPolicy(this, 'policy', {
      name: props.policyName ?? `${serviceName}-dr`,
      service: this,
      subsets: [{ name: stable.version }, { name: props.canary.version }],
      trafficPolicy: props.trafficPolicy,
    });
    this.subsetNames = this.policy.subsets.map((s) => s.name);

    if (props.canaryHeader) {
      check.object('canaryHeader', props.canaryHeader);
      check.nonEmptyString('canaryHeader.name', props.canaryHeader.name);
    }
    // The canary header's rule (if any), then the split at `weight`.
    this.splitRules = (weight: number) => [
      ...(props.canaryHeader ? [{
        name: 'canary-by-header',
        match: [{ headers: { [props.canaryHeader.name]: props.canaryHeader.match } }],
        route: [{ to: this, subset: props.canary.version }],
        timeout: props.timeout,
        retries: props.retries,
      }] : []),
      {
        route: [
          { to: this, subset: stable.version, weight: 100 - weight },
          { to: this, subset: props.canary.version, weight },
        ],
        timeout: props.timeout,
        retries: props.retries,
      },
    ];
    this.rules = this.splitRules(canaryWeight);
    this.route = new TrafficRoute(this, 'route', {
      name: props.routeName ?? `${serviceName}-vs`,
      namespace: this.serviceNamespace,
      hosts: [this],
      http: [...this.rules],
    });
  }

  /** The canary's share in this synth. */
  get canaryWeight(): number {
    return this.weight;
  }

  /**
   * The objects the controller reads: Argo's Rollout and AnalysisTemplate (written when the
   * chart synthesizes), or Flagger's Canary.
   */
  get controllerObjects(): ApiObject[] {
    return ['Rollout', 'RolloutAnalysis', 'Canary'].map((id) => this.node.tryFindChild(id)).filter((c): c is ApiObject => c instanceof ApiObject);
  }

  /**
   * Render another stage of `steps` (the `currentStep` prop, set later): the split moves to
   * `steps[index]` percent for the canary.
   *
   * ```ts
   * const release = new CanaryRelease(chart, 'reviews', { ..., steps: [10, 50, 100] });
   * release.goToStep(Number(process.env.STAGE ?? 0));
   * ```
   */
  goToStep(index: number): void {
    const check: Check = new Check(this.node.path);
    if (this.progressiveDelivery) check.fail('goToStep()', index, `no goToStep() with progressiveDelivery: ${this.progressiveDelivery.title} moves the weight through steps on its own`);
    if (!this.steps) check.fail('goToStep()', index, 'a release with steps (this one has a single canaryWeight)');
    check.integer('goToStep()', index, 0, this.steps.length - 1);
    if (this.rulesGiven) check.fail('goToStep()', index, 'goToStep() before rulesFor(): the rules it returned carry the split of the step before');
    this.weight = this.steps[index];
    this.rules = this.splitRules(this.weight);
    this.route!._replaceRules(this.rules);
  }

  /**
   * The release's rules (the canary header rule, then the weighted split), for another
   * route to the same Service: an IngressGateway's, so that requests entering through
   * the gateway take the same split (the gateway's route picks the destination, not the
   * mesh route). `match` narrows every rule (ANDed with the header condition); `port`
   * picks the Service port.
   *
   * ```ts
   * new IngressGateway(chart, 'edge', { name: 'shop-gateway', hosts: ['shop.example.com'],
   *   routes: release.rulesFor({ match: [{ uri: { prefix: '/' } }] }) });
   * ```
   */
  rulesFor(options: CanaryRulesOptions = {}): HttpRule[] {
    const check: Check = new Check(this.node.path);
    if (this.progressiveDelivery) {
      check.fail('rulesFor()', options, `no rulesFor() with progressiveDelivery: ${this.progressiveDelivery.title} owns the split, and a second route with its own weights would not follow it${this.progressiveDelivery.engine === 'flagger' ? ' (give ProgressiveDelivery.flagger({ hosts, gateways }) to expose the release through a gateway)' : ''}`);
    }
    check.shape('rulesFor(options)', options, { match: 'array?', port: 'number?' });
    if (options.port !== undefined) check.port('rulesFor(options).port', options.port);
    (options.match ?? []).forEach((m, i) => check.object(`rulesFor(options).match[${i}]`, m));
    this.rulesGiven = true;
    return this.rules.map((rule) => {
      const own = rule.match ?? [];
      const match = !options.match?.length ? own
        : !own.length ? options.match
          : options.match.flatMap((m) => own.map((o) => ({ ...m, ...o, headers: { ...m.headers, ...o.headers } })));
      return {
        ...rule,
        ...(match.length ? { match } : {}),
        route: (rule.route ?? []).map((d) => (options.port === undefined ? d : { ...d, port: options.port })),
      };
    });
  }

  /** Flagger writes the Services, VirtualService and DestinationRules of the release's name: the chart must not write them too. */
  private flaggerOwnedObjects(): string[] {
    const owned = flaggerOwned(this.serviceName);
    const ns = this.serviceNamespace ?? 'default';
    const kinds: Record<string, string[]> = { Service: owned.services, VirtualService: owned.virtualServices, DestinationRule: owned.destinationRules };
    const errors: string[] = [];
    // The release's chart: an app may hold other charts (other clusters, other variants).
    const root = Chart.of(this);
    for (const c of root.node.findAll()) {
      if (!(c instanceof ApiObject) || this.canary.node.findAll().includes(c)) continue;
      if ((kinds[c.kind] ?? []).includes(c.name) && (c.metadata.namespace ?? 'default') === ns) {
        errors.push(new MeshValidationError(c.node.path, 'metadata.name', `${c.kind} ${ns}/${c.name}`, `another name: Flagger writes ${c.kind} ${c.name} for the release ${this.node.path} (it owns ${ownedList(owned)})`).message);
      }
    }
    for (const c of root.node.findAll()) {
      if (c instanceof TrafficRoute && c.model.hosts.some((h) => typeof h !== 'string' && h.serviceName === this.serviceName && (h.serviceNamespace ?? 'default') === ns)) {
        errors.push(new MeshValidationError(c.node.path, 'hosts', `${this.serviceName}.${ns}`, `a host Flagger does not route: it writes the VirtualService of ${this.serviceName} for the release ${this.node.path} (give ProgressiveDelivery.flagger({ hosts, gateways }) for more hosts)`).message);
      }
      if (c instanceof DestinationPolicy && c.serviceName === this.serviceName && (c.serviceNamespace ?? 'default') === ns) {
        errors.push(new MeshValidationError(c.node.path, 'service', `${this.serviceName}.${ns}`, `a service Flagger does not manage: it writes the DestinationRules of ${this.serviceName} for the release ${this.node.path} (give trafficPolicy on the release)`).message);
      }
    }
    return errors;
  }
}
