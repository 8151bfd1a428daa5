import { ApiObject, Chart, JsonPatch } from 'cdk8s';
import { Construct } from 'constructs';
import {
  buildTrafficRoute, Check, checkDns1123Label, checkDns1123Subdomain, checkSubsetsDefined, HttpRule, MeshValidationError, ServiceRef, TrafficRouteModel,
  TrafficRouteSpec,
} from '../model';
import { checkJsonPatches, renderAtSynthPatched, rendererOf } from './mesh';
import { refuseUnknownProps } from './known-props';

/** Rules for a set of hosts (Istio: one VirtualService). */
export interface TrafficRouteProps extends TrafficRouteSpec {
  /** metadata.name of the rendered object (Istio: the VirtualService). */
  readonly name: string;
  /** The namespace of the rendered object; short hosts resolve in it. @default - the chart's namespace */
  readonly namespace?: string;
}

/** Where addRule puts a rule. */
export interface AddRuleOptions {
  /**
   * The rule's position among the rules (0 is first: rules are tried in order).
   * @default - after the last rule
   */
  readonly index?: number;
}

/**
 * Rules for a set of hosts (Istio: one VirtualService). Destinations are objects,
 * validated when given; the chart's data plane renders the route when the chart
 * synthesizes, so rules and hosts may still be added after construction.
 */
export class TrafficRoute extends Construct {
  readonly name: string;
  readonly namespace?: string;
  private spec: TrafficRouteSpec;
  private current: TrafficRouteModel;
  private readonly patches: JsonPatch[] = [];

  constructor(scope: Construct, id: string, props: TrafficRouteProps) {
    super(scope, id);
    const check: Check = new Check(this.node.path);
    check.object('props', props);
    // Keys the props interface does not declare are refused (JavaScript has no compiler to); a subclass may add its own.
    if (new.target === TrafficRoute) refuseUnknownProps(this.node.path, 'TrafficRouteProps', props);
    checkDns1123Subdomain(check, 'name', props.name);
    if (props.namespace !== undefined) checkDns1123Label(check, 'namespace', props.namespace);
    this.name = props.name;
    this.namespace = props.namespace;
    this.current = buildTrafficRoute(this.node.path, props);
    this.spec = { hosts: [...this.current.hosts], gateways: [...this.current.gateways], http: [...props.http] };
    renderAtSynthPatched(this, 'TrafficRoute', this.patches, () => {
      checkSubsetsDefined(this.node.path, this.current);
      rendererOf(this).renderRoute(this, 'Resource', { name: this.name, namespace: this.namespace, model: this.current });
    });
    // A short host resolves in the route's namespace. When the chart has a Service of that
    // name only in another namespace, the rules would never apply: refuse at synth (the
    // Service may be defined after the route, hence a validation and not a constructor check).
    this.node.addValidation({ validate: () => this.misplacedShortHosts() });
  }

  /** The validated hosts, gateways and rules, as the data plane will render them. */
  get model(): TrafficRouteModel {
    return this.current;
  }

  /**
   * Add a rule, checked as the `http` prop's rules are (errors name its place, `http[i]`).
   * Rules are tried in order, and a rule without a match takes every request: add specific
   * rules before it (`{ index: 0 }`).
   *
   * ```ts
   * route.addRule({ match: [{ headers: { 'end-user': { exact: 'jason' } } }], route: [{ to: policy, subset: 'v2' }] }, { index: 0 });
   * ```
   */
  addRule(rule: HttpRule, options: AddRuleOptions = {}): void {
    const check: Check = new Check(this.node.path);
    check.shape('addRule(options)', options, { index: 'number?' });
    const index = options.index ?? this.spec.http.length;
    check.integer('addRule(options).index', index, 0, this.spec.http.length);
    const http = [...this.spec.http];
    http.splice(index, 0, rule);
    this.update({ ...this.spec, http });
  }

  /**
   * Add a host the rules apply to: a service object, or a name ("reviews", "shop.example.com"),
   * checked as the `hosts` prop's are.
   */
  addHost(host: ServiceRef | string): void {
    this.update({ ...this.spec, hosts: [...this.spec.hosts, host] });
  }

  /**
   * Escape hatch, as `ApiObject.of(x).addJsonPatch()` is for cdk8s-plus constructs: JSON patches
   * (RFC 6902) for the object the chart's data plane renders for this route (Istio: the
   * VirtualService; Gateway API: the HTTPRoute), applied when it is rendered, for a field the
   * props do not model. The traffic plan describes the props, not the patches; mesh lint reads
   * the patched YAML. The node sidecar renders none of its own (the rules go into the route
   * table): there the patches are refused at synth.
   *
   * ```ts
   * route.addJsonPatch(JsonPatch.add('/spec/exportTo', ['.']));
   * ```
   */
  addJsonPatch(...ops: JsonPatch[]): void {
    this.patches.push(...checkJsonPatches(this, ops));
  }

  /**
   * Replace the rules (a CanaryRelease moving its split to another step).
   * @internal
   */
  _replaceRules(http: readonly HttpRule[]): void {
    this.update({ ...this.spec, http: [...http] });
  }

  /** Validate the whole spec as the constructor would; nothing changes when it is refused. */
  private update(spec: TrafficRouteSpec): void {
    this.current = buildTrafficRoute(this.node.path, spec);
    this.spec = spec;
  }

  private misplacedShortHosts(): string[] {
    // Most routes name their hosts by object: no walk over the chart for them (it is per route, so a walk each would be quadratic).
    if (!this.model.hosts.some((h) => typeof h === 'string' && !h.includes('.') && h !== '*')) return [];
    const chart = Chart.of(this);
    const nsOf = (ns: string | undefined) => ns ?? chart.namespace ?? 'default';
    const here = nsOf(this.namespace);
    const services = chart.node.findAll().filter((c): c is ApiObject => c instanceof ApiObject && c.kind === 'Service' && c.apiVersion === 'v1');
    return this.model.hosts.flatMap((h, i) => {
      if (typeof h !== 'string' || h.includes('.') || h === '*') return [];
      if (services.some((s) => s.name === h && nsOf(s.metadata.namespace) === here)) return [];
      const elsewhere = services.filter((s) => s.name === h);
      if (!elsewhere.length) return [];
      const ns = nsOf(elsewhere[0].metadata.namespace);
      return [new MeshValidationError(this.node.path, `hosts[${i}]`, h, `the Service object (hosts: [workload]) or "${h}.${ns}.svc.cluster.local": a short name resolves in the route's namespace ${here}, and Service ${h} is in ${ns} (${elsewhere[0].node.path}), so the rules would never apply`).message];
    });
  }
}
