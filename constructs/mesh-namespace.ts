import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { Check, checkDns1123Label } from '../model';
import { rendererOf } from './mesh';
import { refuseUnknownProps } from './known-props';

/** A Namespace the chart owns and whether it injects the mesh proxy into every pod. */
export interface MeshNamespaceProps {
  /** The Namespace name. */
  readonly name: string;
  /**
   * Inject the data plane into every pod of this namespace (Istio: the
   * `istio-injection=enabled` label). Workloads in it then carry no per-pod
   * injection marker, so nothing is injected twice.
   * @default true
   */
  readonly injection?: boolean;
  /** Extra labels. @default - none */
  readonly labels?: Readonly<Record<string, string>>;
}

/** A Namespace the chart owns, with mesh injection decided once for all its pods. */
export class MeshNamespace extends Construct {
  readonly name: string;
  readonly injects: boolean;
  readonly resource: kplus.Namespace;

  constructor(scope: Construct, id: string, props: MeshNamespaceProps) {
    super(scope, id);
    const check: Check = new Check(this.node.path);
    check.shape('', props, { name: 'string', injection: 'boolean?', labels: 'stringMap?' });
    // Keys the props interface does not declare are refused (JavaScript has no compiler to); a subclass may add its own.
    if (new.target === MeshNamespace) refuseUnknownProps(this.node.path, 'MeshNamespaceProps', props);
    checkDns1123Label(check, 'name', props.name);
    this.name = props.name;
    this.injects = props.injection ?? true;
    this.resource = new kplus.Namespace(this, 'Resource', { metadata: { name: props.name, labels: { ...props.labels } } });
    rendererOf(this).enrollNamespace(this);
  }
}
