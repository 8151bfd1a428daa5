import { Construct } from 'constructs';
import { buildTrafficRoute, Check, checkDns1123Label, checkDns1123Subdomain, TrafficRouteModel, TrafficRouteSpec } from '../model';
import { rendererOf } from './mesh';

export interface TrafficRouteProps extends TrafficRouteSpec {
  /** metadata.name of the rendered object (Istio: the VirtualService). */
  readonly name: string;
  /** @default - the chart's namespace */
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
    checkDns1123Subdomain(check, 'name', props.name);
    if (props.namespace !== undefined) checkDns1123Label(check, 'namespace', props.namespace);
    this.name = props.name;
    this.namespace = props.namespace;
    this.model = buildTrafficRoute(this.node.path, props);
    rendererOf(this).renderRoute(this, 'Resource', { name: this.name, namespace: this.namespace, model: this.model });
  }
}
