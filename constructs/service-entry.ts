import { Construct } from 'constructs';
import { buildServiceEntry, Check, checkDns1123Label, checkDns1123Subdomain, ServiceEntryModel, ServiceEntryName, ServiceEntrySpec, ServiceRef } from '../model';
import { renderAtSynth, rendererOf } from './mesh';
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
  readonly model: ServiceEntryModel;
  readonly serviceName: string;
  readonly servicePorts?: number[];
  readonly noService?: string;
  readonly serviceEntryRef?: ServiceEntryName;

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
    this.model = buildServiceEntry(check, props);
    this.serviceEntryRef = { name: this.name, ...(this.namespace !== undefined ? { namespace: this.namespace } : {}) };
    this.serviceName = this.model.hosts[0];
    this.servicePorts = this.model.ports.map((p) => p.number);
    if (this.serviceName.startsWith('*.')) this.noService = `is a wildcard of ServiceEntry ${this.name}: route to one host of it (entry.host("api${this.serviceName.slice(1)}"))`;
    renderAtSynth(this, () => rendererOf(this).renderServiceEntry(this, 'Resource', { name: this.name, namespace: this.namespace, model: this.model }));
  }

  /** One of the entry's hosts (or a name a wildcard host covers) as a route destination. */
  host(name: string): ServiceRef {
    const check = new Check(this.node.path);
    const covered = this.model.hosts.some((h) => h === name || (h.startsWith('*.') && name.endsWith(h.slice(1)) && !name.startsWith('*')));
    if (typeof name !== 'string' || !covered) check.fail('host()', name, `one of the entry's hosts (${this.model.hosts.join(', ')}) or a name a wildcard of them covers`);
    return { serviceName: name, servicePorts: this.servicePorts, serviceEntryRef: this.serviceEntryRef };
  }
}
