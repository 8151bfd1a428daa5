import { ApiObject, Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { buildTrafficRoute, Check, checkDns1123Label, checkDns1123Subdomain, MeshValidationError, TrafficRouteModel, TrafficRouteSpec } from '../model';
import { rendererOf } from './mesh';
import { refuseUnknownProps } from './known-props';

/** Rules for a set of hosts (Istio: one VirtualService). */
export interface TrafficRouteProps extends TrafficRouteSpec {
  /** metadata.name of the rendered object (Istio: the VirtualService). */
  readonly name: string;
  /** The namespace of the rendered object; short hosts resolve in it. @default - the chart's namespace */
  readonly namespace?: string;
}

/**
 * Rules for a set of hosts (Istio: one VirtualService). Destinations are objects,
 * validated when the construct is built; the chart's data plane renders them.
 */
export class TrafficRoute extends Construct {
  readonly name: string;
  readonly namespace?: string;
  readonly model: TrafficRouteModel;

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
    this.model = buildTrafficRoute(this.node.path, props);
    rendererOf(this).renderRoute(this, 'Resource', { name: this.name, namespace: this.namespace, model: this.model });
    // A short host resolves in the route's namespace. When the chart has a Service of that
    // name only in another namespace, the rules would never apply: refuse at synth (the
    // Service may be defined after the route, hence a validation and not a constructor check).
    this.node.addValidation({ validate: () => this.misplacedShortHosts() });
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
