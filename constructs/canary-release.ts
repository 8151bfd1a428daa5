import { Construct } from 'constructs';
import { Check, checkDns1123Label, Duration, HeaderMatch, HttpMatch, HttpRetry, HttpRule, ServiceRef, TrafficPolicy } from '../model';
import { DestinationPolicy } from './destination-policy';
import { MeshNamespace } from './mesh-namespace';
import { MeshWorkload, MeshWorkloadProps } from './mesh-workload';
import { TrafficRoute } from './traffic-route';
import { refuseUnknownProps } from './known-props';

/** One version of the released app. */
export interface CanaryVersionProps extends Omit<MeshWorkloadProps, 'app' | 'namespace' | 'mesh' | 'port' | 'service' | 'serviceName' | 'servicePort' | 'portName' | 'version'> {
  /** The `version` label and subset name, e.g. "v1". */
  readonly version: string;
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
  /** The version that takes the rest of the traffic. */
  readonly stable: CanaryVersionProps;
  /** The new version, taking canaryWeight percent. */
  readonly canary: CanaryVersionProps;
  /** Percent of traffic to the canary. Give this or `steps`. @default - from `steps` */
  readonly canaryWeight?: number;
  /**
   * A progressive rollout: the canary's percentage at each stage, e.g. [10, 30, 50, 100].
   * `currentStep` picks the stage this synth renders, so each stage is reproducible.
   * @default - a single stage, `canaryWeight`
   */
  readonly steps?: readonly number[];
  /** Index into `steps`. @default 0 */
  readonly currentStep?: number;
  /** Requests with this header always go to the canary (e.g. testers). @default - none */
  readonly canaryHeader?: { readonly name: string; readonly match: HeaderMatch };
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
}

/**
 * One Service, a stable and a canary Deployment, subsets by version and a weighted
 * split between them, optionally staged.
 */
export class CanaryRelease extends Construct implements ServiceRef {
  readonly stable: MeshWorkload;
  readonly canary: MeshWorkload;
  readonly policy: DestinationPolicy;
  readonly route: TrafficRoute;
  readonly serviceName: string;
  readonly serviceNamespace?: string;
  readonly servicePorts?: readonly number[];
  readonly subsetNames: readonly string[];
  /** The canary's share in this synth. */
  readonly canaryWeight: number;
  private readonly rules: readonly HttpRule[];

  constructor(scope: Construct, id: string, props: CanaryReleaseProps) {
    super(scope, id);
    const check: Check = new Check(this.node.path);
    check.shape('', props, {
      app: 'string', serviceName: 'string?', port: 'number', portName: 'string?', servicePort: 'number?', stable: 'object', canary: 'object',
      canaryWeight: 'number?', steps: 'array?', currentStep: 'number?', canaryHeader: 'object?', retries: 'object?', trafficPolicy: 'object?',
      routeName: 'string?', policyName: 'string?',
    });
    // Keys the props interface does not declare are refused (JavaScript has no compiler to); a subclass may add its own.
    if (new.target === CanaryRelease) refuseUnknownProps(this.node.path, 'CanaryReleaseProps', props);
    check.port('port', props.port);
    // The Service belongs to the release: name, port and namespace are set once, on the
    // release. The same value repeated on a version is harmless; a different one would be ignored.
    const shared: Record<string, unknown> = { app: props.app, namespace: props.namespace, mesh: true, port: props.port, service: undefined, serviceName: props.serviceName, servicePort: props.servicePort, portName: props.portName };
    for (const side of ['stable', 'canary'] as const) {
      const v = props[side] as unknown as Record<string, unknown>;
      for (const [k, expected] of Object.entries(shared)) {
        if (v[k] !== undefined && v[k] !== expected) check.fail(`${side}.${k}`, v[k], `no ${k} here, or the release's: set it on the CanaryRelease (both versions share it)`);
      }
    }
    checkDns1123Label(check, 'stable.version', props.stable.version);
    checkDns1123Label(check, 'canary.version', props.canary.version);
    if (props.stable.version === props.canary.version) check.fail('canary.version', props.canary.version, `a version other than the stable one ("${props.stable.version}")`);

    if ((props.canaryWeight === undefined) === (props.steps === undefined)) {
      check.fail('canaryWeight', props.canaryWeight, 'either canaryWeight or steps (exactly one)');
    }
    let canaryWeight: number;
    if (props.steps !== undefined) {
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
    this.canaryWeight = canaryWeight;

    const serviceName = props.serviceName ?? props.app;
    const common = { app: props.app, port: props.port, portName: props.portName, namespace: props.namespace, mesh: true };
    this.stable = new MeshWorkload(this, 'stable', {
      ...props.stable, ...common, deploymentName: props.stable.deploymentName ?? `${props.app}-${props.stable.version}`,
      serviceName, servicePort: props.servicePort,
    });
    this.canary = new MeshWorkload(this, 'canary', {
      ...props.canary, ...common, deploymentName: props.canary.deploymentName ?? `${props.app}-${props.canary.version}`,
      service: false,
    });
    this.serviceName = serviceName;
    this.serviceNamespace = this.stable.namespace;
    this.servicePorts = this.stable.servicePorts;

    this.policy = new DestinationPolicy(this, 'policy', {
      name: props.policyName ?? `${serviceName}-dr`,
      service: this,
      subsets: [{ name: props.stable.version }, { name: props.canary.version }],
      trafficPolicy: props.trafficPolicy,
    });
    this.subsetNames = this.policy.subsets.map((s) => s.name);

    const split: HttpRule = {
      route: [
        { to: this, subset: props.stable.version, weight: 100 - canaryWeight },
        { to: this, subset: props.canary.version, weight: canaryWeight },
      ],
      timeout: props.timeout,
      retries: props.retries,
    };
    const rules: HttpRule[] = [];
    if (props.canaryHeader) {
      check.object('canaryHeader', props.canaryHeader);
      check.nonEmptyString('canaryHeader.name', props.canaryHeader.name);
      rules.push({
        name: 'canary-by-header',
        match: [{ headers: { [props.canaryHeader.name]: props.canaryHeader.match } }],
        route: [{ to: this, subset: props.canary.version }],
        timeout: props.timeout,
        retries: props.retries,
      });
    }
    rules.push(split);
    this.rules = rules;
    this.route = new TrafficRoute(this, 'route', {
      name: props.routeName ?? `${serviceName}-vs`,
      namespace: this.serviceNamespace,
      hosts: [this],
      http: rules,
    });
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
  rulesFor(options: { readonly match?: readonly HttpMatch[]; readonly port?: number } = {}): HttpRule[] {
    const check: Check = new Check(this.node.path);
    check.shape('rulesFor(options)', options, { match: 'array?', port: 'number?' });
    if (options.port !== undefined) check.port('rulesFor(options).port', options.port);
    (options.match ?? []).forEach((m, i) => check.object(`rulesFor(options).match[${i}]`, m));
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
}
