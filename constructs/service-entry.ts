import { JsonPatch } from 'cdk8s';
import { Construct } from 'constructs';
import {
  buildServiceEntry, Check, checkDns1123Label, checkDns1123Subdomain, ServiceEntryEndpoint, ServiceEntryModel, ServiceEntryName, ServiceEntryPort, ServiceEntrySpec,
  ServiceRef,
} from '../model';
import { checkJsonPatches, renderAtSynthPatched, rendererOf } from './mesh';
import { refuseUnknownProps } from './known-props';

/** A service outside the cluster's registry (Istio: one ServiceEntry). */
export interface ServiceEntryProps extends ServiceEntrySpec {
  /** metadata.name of the rendered object (Istio: the ServiceEntry). */
  readonly name: string;
  /** The namespace of the rendered object. @default - the chart's namespace */
  readonly namespace?: string;
}

/**
 * An external service the mesh may call (Istio: a ServiceEntry). Under
 * `outboundTrafficPolicy: REGISTRY_ONLY` only such hosts (and the cluster's Services) are
 * reachable. It is also a destination: `{ to: entry }` routes to its first host, so timeouts,
 * retries and faults apply to external calls; `entry.host('other.example.com')` names another.
 */
export class ServiceEntry extends Construct implements ServiceRef {
  readonly name: string;
  readonly namespace?: string;
  /** The first host: `{ to: entry }` routes to it. */
  readonly serviceName: string;
  readonly noService?: string;
  readonly serviceEntryRef?: ServiceEntryName;
  private spec: ServiceEntrySpec;
  private current: ServiceEntryModel;
  private readonly patches: JsonPatch[] = [];

  constructor(scope: Construct, id: string, props: ServiceEntryProps) {
    super(scope, id);
    const check: Check = new Check(this.node.path);
    check.object('props', props);
    // Keys the props interface does not declare are refused (JavaScript has no compiler to); a subclass may add its own.
    if (new.target === ServiceEntry) refuseUnknownProps(this.node.path, 'ServiceEntryProps', props);
    checkDns1123Subdomain(check, 'name', props.name);
    if (props.namespace !== undefined) checkDns1123Label(check, 'namespace', props.namespace);
    this.name = props.name;
    this.namespace = props.namespace;
    this.current = buildServiceEntry(check, props);
    this.spec = { ...props, hosts: [...props.hosts], ports: [...props.ports], endpoints: [...(props.endpoints ?? [])] };
    this.serviceEntryRef = { name: this.name, ...(this.namespace !== undefined ? { namespace: this.namespace } : {}) };
    this.serviceName = this.current.hosts[0];
    if (this.serviceName.startsWith('*.')) this.noService = `is a wildcard of ServiceEntry ${this.name}: route to one host of it (entry.host("api${this.serviceName.slice(1)}"))`;
    renderAtSynthPatched(this, 'ServiceEntry', this.patches, () => rendererOf(this).renderServiceEntry(this, 'Resource', { name: this.name, namespace: this.namespace, model: this.current }));
  }

  /** The validated entry, as the data plane will render it. */
  get model(): ServiceEntryModel {
    return this.current;
  }

  /** The entry's port numbers, ports added later included. */
  get servicePorts(): number[] | undefined {
    return this.current.ports.map((p) => p.number);
  }

  /** One of the entry's hosts (or a name a wildcard host covers) as a route destination. */
  host(name: string): ServiceRef {
    const check = new Check(this.node.path);
    const covered = this.current.hosts.some((h) => h === name || (h.startsWith('*.') && name.endsWith(h.slice(1)) && !name.startsWith('*')));
    if (typeof name !== 'string' || !covered) check.fail('host()', name, `one of the entry's hosts (${this.current.hosts.join(', ')}) or a name a wildcard of them covers`);
    // Ports are read when used, so a port added after this call is seen too.
    const ports = () => this.servicePorts;
    return { serviceName: name, get servicePorts() { return ports(); }, serviceEntryRef: this.serviceEntryRef };
  }

  /**
   * Add a host name, checked as the `hosts` prop's are (errors name its place, `hosts[i]`).
   * The first host stays the one `{ to: entry }` routes to.
   */
  addHost(host: string): void {
    this.update({ ...this.spec, hosts: [...this.spec.hosts, host] });
  }

  /**
   * Add a port, checked as the `ports` prop's are (a number and a name not used before). Routes
   * and policies built before it was added see it too.
   *
   * ```ts
   * entry.addPort({ number: 8443, protocol: 'TLS' });
   * ```
   */
  addPort(port: ServiceEntryPort): void {
    this.update({ ...this.spec, ports: [...this.spec.ports, port] });
  }

  /**
   * Add an endpoint (STATIC or DNS resolution), checked as the `endpoints` prop's are: an IP
   * address for STATIC, port names of this entry, a weight from 1.
   *
   * ```ts
   * entry.addEndpoint({ address: '10.0.0.12', labels: { zone: 'b' } });
   * ```
   */
  addEndpoint(endpoint: ServiceEntryEndpoint): void {
    this.update({ ...this.spec, endpoints: [...(this.spec.endpoints ?? []), endpoint] });
  }

  /**
   * Escape hatch, as `ApiObject.of(x).addJsonPatch()` is for cdk8s-plus constructs: JSON patches
   * (RFC 6902) for the object the chart's data plane renders for this entry (Istio and Gateway
   * API: the ServiceEntry), applied when it is rendered, for a field the props do not model. The
   * traffic plan describes the props, not the patches; mesh lint reads the patched YAML. The
   * node sidecar renders none of its own (the entry goes into the route table): there the
   * patches are refused at synth.
   *
   * ```ts
   * entry.addJsonPatch(JsonPatch.add('/spec/subjectAltNames', ['spiffe://partner.example.com/api']));
   * ```
   */
  addJsonPatch(...ops: JsonPatch[]): void {
    this.patches.push(...checkJsonPatches(this, ops));
  }

  /** Validate the whole spec as the constructor would; nothing changes when it is refused. */
  private update(spec: ServiceEntrySpec): void {
    this.current = buildServiceEntry(new Check(this.node.path), spec);
    this.spec = spec;
  }
}
