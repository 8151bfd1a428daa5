import { JsonPatch } from 'cdk8s';
import { Construct } from 'constructs';
import {
  buildSubsets, buildTrafficPolicy, Check, checkDns1123Label, checkDns1123Subdomain, OPEN_SUBSETS, ServiceRef, Subset,
  SubsetModel, TrafficPolicy, TrafficPolicyModel,
} from '../model';
import { checkJsonPatches, renderAtSynthPatched, rendererOf } from './mesh';
import { refuseUnknownProps } from './known-props';

/** Subsets and traffic policy of one Service (Istio: one DestinationRule). */
export interface DestinationPolicyProps {
  /** metadata.name of the rendered object (Istio: the DestinationRule). */
  readonly name: string;
  /** The service the policy applies to. */
  readonly service: ServiceRef;
  /** The namespace of the rendered object. @default - the service's namespace */
  readonly namespace?: string;
  /** Named subsets, selected by pod labels (`{ version: name }` unless given). @default - none */
  readonly subsets?: Subset[];
  /** Load balancer, connection pool, outlier detection and TLS for every subset. @default - Istio's defaults */
  readonly trafficPolicy?: TrafficPolicy;
}

/**
 * Subsets and traffic policy for one service (Istio: a DestinationRule). It is also a
 * destination: `{ to: policy, subset: 'v1' }` routes to the service with its subsets known.
 * Rendered when the chart synthesizes: subsets may be added after construction, and a
 * route may name one before it is added (checked at synth).
 */
export class DestinationPolicy extends Construct implements ServiceRef {
  readonly name: string;
  readonly trafficPolicy?: TrafficPolicyModel;
  readonly serviceName: string;
  readonly serviceNamespace?: string;
  readonly noService?: string;
  /** @internal */
  readonly [OPEN_SUBSETS] = true;
  private readonly given: Subset[];
  private built: readonly SubsetModel[];
  private readonly service: ServiceRef;
  private readonly patches: JsonPatch[] = [];

  constructor(scope: Construct, id: string, props: DestinationPolicyProps) {
    super(scope, id);
    const check: Check = new Check(this.node.path);
    check.object('props', props);
    // Keys the props interface does not declare are refused (JavaScript has no compiler to); a subclass may add its own.
    if (new.target === DestinationPolicy) refuseUnknownProps(this.node.path, 'DestinationPolicyProps', props);
    checkDns1123Subdomain(check, 'name', props.name);
    if (!props.service || typeof props.service.serviceName !== 'string') check.fail('service', props.service, 'a service object (MeshWorkload, CanaryRelease, ...)');
    const namespace = props.namespace ?? props.service.serviceNamespace;
    if (namespace !== undefined) checkDns1123Label(check, 'namespace', namespace);
    this.name = props.name;
    this.built = buildSubsets(this.node.path, props.subsets ?? []);
    this.given = [...(props.subsets ?? [])];
    this.trafficPolicy = buildTrafficPolicy(check, 'trafficPolicy', props.trafficPolicy);
    if (this.built.length === 0 && !this.trafficPolicy) check.fail('props', props, 'subsets or a trafficPolicy (an empty policy does nothing)');
    this.serviceName = props.service.serviceName;
    this.serviceNamespace = props.service.serviceNamespace;
    this.service = props.service;
    this.noService = props.service.noService;
    renderAtSynthPatched(this, 'DestinationPolicy', this.patches, () => rendererOf(this).renderDestinationPolicy(this, 'Resource', {
      name: this.name, namespace, service: props.service, subsets: this.built, trafficPolicy: this.trafficPolicy,
    }));
  }

  /**
   * Escape hatch, as `ApiObject.of(x).addJsonPatch()` is for cdk8s-plus constructs: JSON patches
   * (RFC 6902) for the object the chart's data plane renders for this policy (Istio: the
   * DestinationRule), applied when it is rendered, for a field the props do not model. The
   * traffic plan describes the props, not the patches; mesh lint reads the patched YAML. The
   * node sidecar and Gateway API planes render none of their own for it (subsets become
   * Services): there the patches are refused at synth.
   *
   * ```ts
   * policy.addJsonPatch(JsonPatch.add('/spec/exportTo', ['.']));
   * ```
   */
  addJsonPatch(...ops: JsonPatch[]): void {
    this.patches.push(...checkJsonPatches(this, ops));
  }

  /** The service's ports, read from it (a ServiceEntry may gain ports after the policy is made). */
  get servicePorts(): number[] | undefined {
    return this.service.servicePorts;
  }

  /** The validated subsets, in order. */
  get subsets(): SubsetModel[] {
    return [...this.built];
  }

  /** The subsets' names: routes to this policy may name them. */
  get subsetNames(): string[] | undefined {
    return this.built.map((s) => s.name);
  }

  /**
   * Add a subset, checked as the `subsets` prop's are (errors name its place, `subsets[i]`):
   * a DNS-label name not used before, pod labels (`{ version: name }` unless given), its own
   * traffic policy.
   *
   * ```ts
   * policy.addSubset({ name: 'v3' });
   * ```
   */
  addSubset(subset: Subset): void {
    const given = [...this.given, subset];
    this.built = buildSubsets(this.node.path, given);
    this.given.push(subset);
  }
}
