/**
 * What a route needs to know about its destination. Constructs (MeshWorkload,
 * CanaryRelease, WebTier) implement it; `Host.service()` and `Host.external()` make one for a
 * Service or host the chart does not build. The model never sees cdk8s.
 */
export interface IServiceRef {
  /** The Kubernetes Service name (`metadata.name`), or a full external host name. */
  readonly serviceName: string;
  /**
   * The Service's namespace.
   * @default - the namespace of the rule that routes to it
   */
  readonly serviceNamespace?: string;
  /**
   * Subset names a DestinationRule defines for this service.
   * @default - none: routes to this service may not name a subset
   */
  readonly subsetNames?: string[];
  /**
   * The Service's ports.
   * @default - unknown: a route's port is not checked
   */
  readonly servicePorts?: number[];
  /**
   * Why there is no Kubernetes Service behind this reference (a workload without a port, or
   * with `service: false`): a route to it would reach nothing, so routes to it are refused.
   * @default - there is a Service
   */
  readonly noService?: string;
  /**
   * The ServiceEntry that declares this host (an external service): Gateway API routes name
   * it as Istio reads it (a ServiceEntry parentRef, a Hostname backendRef).
   * @default - not a ServiceEntry's host
   */
  readonly serviceEntryRef?: ServiceEntryName;
}

/** The TypeScript name of IServiceRef (jsii names interfaces that carry behaviour with an I). */
export type ServiceRef = IServiceRef;

/** Where a ServiceEntry lives. */
export interface ServiceEntryName {
  readonly name: string;
  /** @default - the chart's namespace */
  readonly namespace?: string;
}

/**
 * A destination the chart does not build, as a route's host or destination: the union-like
 * class for host references (a construct, or one of these). A plain string host still works
 * where hosts are strings.
 */
export class Host {
  /** A Kubernetes Service by name, optionally in another namespace, with its ports if known. */
  static service(name: string, namespace?: string, ports?: number[]): IServiceRef {
    return { serviceName: name, serviceNamespace: namespace, servicePorts: ports };
  }

  /** A host outside the cluster (e.g. `api.example.com`), optionally with its ports. */
  static external(host: string, ports?: number[]): IServiceRef {
    return { serviceName: host, servicePorts: ports };
  }

  private constructor() {}
}

/**
 * Marks a destination whose subsets may still grow (DestinationPolicy.addSubset): a route may
 * name a subset it does not define yet, and the name is checked when the chart synthesizes.
 * @internal
 */
export const OPEN_SUBSETS: unique symbol = Symbol.for('cdk8s-mesh.openSubsets');

/** A destination outside the project's constructs, named by host (e.g. `api.example.com`). */
export function externalHost(host: string, ports?: number[]): ServiceRef {
  return Host.external(host, ports);
}

export const CLUSTER_DOMAIN = 'svc.cluster.local';

/**
 * The host to write for `ref` in a rule that lives in `fromNamespace`.
 * Short names resolve in the rule's own namespace (an Istio rule of thumb the seeds
 * learned the hard way), so any other namespace gets the fully qualified name.
 */
export function hostFor(ref: ServiceRef, fromNamespace: string | undefined): string {
  if (ref.serviceName.includes('.')) return ref.serviceName;
  if (ref.serviceNamespace === undefined || ref.serviceNamespace === fromNamespace) return ref.serviceName;
  return `${ref.serviceName}.${ref.serviceNamespace}.${CLUSTER_DOMAIN}`;
}

/**
 * The names a host may stand for from a pod in `namespace`, as Kubernetes' DNS
 * search path resolves them: `name`, `name.ns`, `name.ns.svc`, or fully qualified.
 */
export function hostCandidates(host: string, namespace: string, clusterDomain: string): string[] {
  const h = host.toLowerCase().replace(/\.$/, '');
  if (/^[0-9.]+$/.test(h) || h.includes(':')) return [h];
  const parts = h.split('.');
  if (parts.length === 1) return [`${h}.${namespace}.svc.${clusterDomain}`];
  if (parts.length === 2) return [`${h}.svc.${clusterDomain}`, h];
  if (parts.length === 3 && parts[2] === 'svc') return [`${h}.${clusterDomain}`];
  return [h];
}
