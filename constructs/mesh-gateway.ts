import { JsonPatch } from 'cdk8s';
import { Construct } from 'constructs';
import { buildGatewayServers, Check, checkDns1123Label, checkDns1123Subdomain, checkLabelValue, GatewayServer, GatewayServerModel } from '../model';
import { checkJsonPatches, renderAtSynthPatched, rendererOf } from './mesh';
import { refuseUnknownProps } from './known-props';

/** Istio's default ingress gateway deployment (istioctl / demo profile). */
export const DEFAULT_GATEWAY_SELECTOR: Readonly<Record<string, string>> = { istio: 'ingressgateway' };

/** Listeners of an ingress gateway (Istio: one Gateway). */
export interface MeshGatewayProps {
  /** metadata.name; routes bind to the gateway by this name. */
  readonly name: string;
  /** The namespace of the rendered object. @default - the chart's namespace */
  readonly namespace?: string;
  /** Pod labels of the gateway deployment. @default { istio: "ingressgateway" } (Helm installs use { istio: "ingress" }) */
  readonly selector?: Readonly<Record<string, string>>;
  /** The listeners: port, protocol, hosts, TLS. */
  readonly servers: GatewayServer[];
}

/**
 * Listeners of an ingress gateway (Istio: a Gateway). Rendered when the chart synthesizes:
 * servers may be added after construction.
 */
export class MeshGateway extends Construct {
  readonly name: string;
  readonly namespace?: string;
  private readonly given: GatewayServer[];
  private built: readonly GatewayServerModel[];
  private readonly patches: JsonPatch[] = [];

  constructor(scope: Construct, id: string, props: MeshGatewayProps) {
    super(scope, id);
    const check: Check = new Check(this.node.path);
    check.object('props', props);
    // Keys the props interface does not declare are refused (JavaScript has no compiler to); a subclass may add its own.
    if (new.target === MeshGateway) refuseUnknownProps(this.node.path, 'MeshGatewayProps', props);
    checkDns1123Subdomain(check, 'name', props.name);
    if (props.namespace !== undefined) checkDns1123Label(check, 'namespace', props.namespace);
    const selector = props.selector ?? DEFAULT_GATEWAY_SELECTOR;
    check.object('selector', selector);
    if (Object.keys(selector).length === 0) check.fail('selector', selector, 'at least one label (an empty selector picks every gateway)');
    for (const [k, v] of Object.entries(selector)) checkLabelValue(check, `selector.${k}`, v);
    this.name = props.name;
    this.namespace = props.namespace;
    this.built = buildGatewayServers(this.node.path, props.servers);
    this.given = [...props.servers];
    // The pods serving it (where the data plane runs them) exist from now; the servers are rendered at synth.
    rendererOf(this).enrollGateway?.(this, { name: this.name, namespace: this.namespace, selector });
    renderAtSynthPatched(this, 'MeshGateway', this.patches, () => rendererOf(this).renderGateway(this, 'Resource', { name: this.name, namespace: this.namespace, selector, servers: this.built }));
  }

  /** The validated listeners, in order. */
  get servers(): GatewayServerModel[] {
    return [...this.built];
  }

  /**
   * Add a listener, checked as the `servers` prop's are (errors name its place, `servers[i]`).
   *
   * ```ts
   * gateway.addServer({ port: 443, protocol: 'HTTPS', hosts: ['shop.example.com'], tls: { mode: 'SIMPLE', credentialName: 'shop-cert' } });
   * ```
   */
  addServer(server: GatewayServer): void {
    this.built = buildGatewayServers(this.node.path, [...this.given, server]);
    this.given.push(server);
  }

  /**
   * Escape hatch, as `ApiObject.of(x).addJsonPatch()` is for cdk8s-plus constructs: JSON patches
   * (RFC 6902) for the object the chart's data plane renders for this gateway (Istio: the
   * Gateway; Gateway API: the Gateway of gateway.networking.k8s.io), applied when it is
   * rendered, for a field the props do not model. The traffic plan describes the props, not the
   * patches; mesh lint reads the patched YAML. The node sidecar renders the gateway as pods and
   * a Service, none of them its own object: there the patches are refused at synth.
   *
   * ```ts
   * gateway.addJsonPatch(JsonPatch.add('/metadata/annotations', { 'external-dns.alpha.kubernetes.io/hostname': 'shop.example.com' }));
   * ```
   */
  addJsonPatch(...ops: JsonPatch[]): void {
    this.patches.push(...checkJsonPatches(this, ops));
  }

  /** How a route in `fromNamespace` names this gateway. */
  refFrom(fromNamespace: string | undefined): string {
    return this.namespace === undefined || this.namespace === fromNamespace ? this.name : `${this.namespace}/${this.name}`;
  }
}
