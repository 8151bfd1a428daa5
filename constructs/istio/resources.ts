import { ApiObject, ApiObjectMetadata } from 'cdk8s';
import { Construct } from 'constructs';

/**
 * Istio resources typed by the project: only the fields cdk8s-mesh emits, named as
 * in the Istio networking API. Every emitted object is checked against Istio's CRD
 * schema in the tests (test/schema.test.ts).
 *
 * apiVersion: networking.istio.io/v1beta1. It is served by every Istio from 1.5 to
 * today (1.30 still serves it, with the same schema as v1), so the output works on
 * the older clusters the seeds were written against (1.7-1.13) as well as new ones,
 * and the schema package that runs on Node 20 (@kubernetes-models/istio@2) covers it.
 */
export const ISTIO_NETWORKING_API_VERSION = 'networking.istio.io/v1beta1';

/** Istio's StringMatch (exact, prefix or regex). */
export interface IstioStringMatch { readonly exact?: string; readonly prefix?: string; readonly regex?: string }
/** Istio's Percent: `{ value }` from 0 to 100. */
export interface IstioPercent { readonly value: number }
/** Istio's PortSelector: `{ number }`. */
export interface IstioPortSelector { readonly number: number }
/** Istio's Destination: host, subset, port. */
export interface IstioDestination { readonly host: string; readonly subset?: string; readonly port?: IstioPortSelector }
/** Istio's HTTPMatchRequest. */
export interface IstioHttpMatchRequest {
  readonly name?: string;
  readonly uri?: IstioStringMatch;
  readonly method?: IstioStringMatch;
  readonly headers?: Record<string, IstioStringMatch>;
  readonly withoutHeaders?: Record<string, IstioStringMatch>;
  readonly queryParams?: Record<string, IstioStringMatch>;
  readonly port?: number;
  readonly ignoreUriCase?: boolean;
}
/** Istio's HeaderOperations: set, add, remove. */
export interface IstioHeaderOperations { readonly set?: Record<string, string>; readonly add?: Record<string, string>; readonly remove?: string[] }
/** Istio's HTTPRoute: one rule of a VirtualService. */
export interface IstioHttpRoute {
  readonly name?: string;
  readonly match?: IstioHttpMatchRequest[];
  readonly route?: Array<{ readonly destination: IstioDestination; readonly weight?: number }>;
  readonly redirect?: { readonly uri?: string; readonly authority?: string; readonly port?: number; readonly scheme?: string; readonly redirectCode?: number };
  readonly rewrite?: { readonly uri?: string; readonly authority?: string };
  readonly timeout?: string;
  readonly retries?: { readonly attempts: number; readonly perTryTimeout?: string; readonly retryOn?: string };
  readonly fault?: {
    readonly delay?: { readonly fixedDelay: string; readonly percentage: IstioPercent };
    readonly abort?: { readonly httpStatus: number; readonly percentage: IstioPercent };
  };
  readonly mirror?: IstioDestination;
  readonly mirrorPercentage?: IstioPercent;
  readonly headers?: { readonly request?: IstioHeaderOperations; readonly response?: IstioHeaderOperations };
}
/** The spec of a networking.istio.io VirtualService. */
export interface VirtualServiceSpec {
  readonly hosts: string[];
  readonly gateways?: string[];
  readonly http: IstioHttpRoute[];
  readonly exportTo?: string[];
}

/** Istio's ConsistentHashLB. */
export interface IstioConsistentHash {
  readonly httpHeaderName?: string;
  readonly httpCookie?: { readonly name: string; readonly path?: string; readonly ttl?: string };
  readonly useSourceIp?: boolean;
  readonly httpQueryParameterName?: string;
  readonly ringHash?: { readonly minimumRingSize?: number };
  readonly maglev?: { readonly tableSize?: number };
}
/** Istio's TrafficPolicy of a DestinationRule or subset. */
export interface IstioTrafficPolicy {
  readonly loadBalancer?: { readonly simple: string } | { readonly consistentHash: IstioConsistentHash };
  readonly connectionPool?: {
    readonly tcp?: {
      readonly maxConnections?: number; readonly connectTimeout?: string;
      readonly tcpKeepalive?: { readonly probes?: number; readonly time?: string; readonly interval?: string };
    };
    readonly http?: {
      readonly http1MaxPendingRequests?: number; readonly http2MaxRequests?: number;
      readonly maxRequestsPerConnection?: number; readonly maxRetries?: number; readonly idleTimeout?: string;
    };
  };
  readonly outlierDetection?: {
    readonly consecutive5xxErrors?: number; readonly consecutiveGatewayErrors?: number;
    readonly interval?: string; readonly baseEjectionTime?: string; readonly maxEjectionPercent?: number;
    readonly minHealthPercent?: number;
  };
  readonly tls?: { readonly mode: string };
}
/** The spec of a networking.istio.io DestinationRule. */
export interface DestinationRuleSpec {
  readonly host: string;
  readonly trafficPolicy?: IstioTrafficPolicy;
  readonly subsets?: Array<{ readonly name: string; readonly labels: Record<string, string>; readonly trafficPolicy?: IstioTrafficPolicy }>;
  readonly exportTo?: string[];
}

/** Istio's Server: one listener of a Gateway. */
export interface IstioServer {
  readonly port: { readonly number: number; readonly name: string; readonly protocol: string };
  readonly hosts: string[];
  readonly name?: string;
  readonly tls?: { readonly mode?: string; readonly credentialName?: string; readonly httpsRedirect?: boolean };
}
/** The spec of a networking.istio.io Gateway. */
export interface GatewaySpec {
  readonly selector: Record<string, string>;
  readonly servers: IstioServer[];
}

/** The spec of a networking.istio.io ServiceEntry. */
export interface ServiceEntryResourceSpec {
  readonly hosts: string[];
  readonly addresses?: string[];
  readonly ports: Array<{ readonly number: number; readonly protocol: string; readonly name: string; readonly targetPort?: number }>;
  readonly location?: string;
  readonly resolution?: string;
  readonly endpoints?: Array<{ readonly address: string; readonly ports?: Record<string, number>; readonly labels?: Record<string, string>; readonly weight?: number }>;
  readonly exportTo?: string[];
}

/** An Istio object: its metadata and spec, written as given. */
export interface IstioObjectProps<S> {
  /** metadata.name is required: hosts, subsets and gateways resolve by name. */
  readonly metadata: ApiObjectMetadata & { readonly name: string };
  /** The object's spec, in Istio's field names. */
  readonly spec: S;
}

/** `networking.istio.io` VirtualService. */
export class VirtualService extends ApiObject {
  static readonly KIND = 'VirtualService';
  constructor(scope: Construct, id: string, props: IstioObjectProps<VirtualServiceSpec>) {
    super(scope, id, { apiVersion: ISTIO_NETWORKING_API_VERSION, kind: VirtualService.KIND, metadata: props.metadata, spec: props.spec });
  }
}

/** `networking.istio.io` DestinationRule. */
export class DestinationRule extends ApiObject {
  static readonly KIND = 'DestinationRule';
  constructor(scope: Construct, id: string, props: IstioObjectProps<DestinationRuleSpec>) {
    super(scope, id, { apiVersion: ISTIO_NETWORKING_API_VERSION, kind: DestinationRule.KIND, metadata: props.metadata, spec: props.spec });
  }
}

/** `networking.istio.io` Gateway. */
export class Gateway extends ApiObject {
  static readonly KIND = 'Gateway';
  constructor(scope: Construct, id: string, props: IstioObjectProps<GatewaySpec>) {
    super(scope, id, { apiVersion: ISTIO_NETWORKING_API_VERSION, kind: Gateway.KIND, metadata: props.metadata, spec: props.spec });
  }
}

/** `networking.istio.io` ServiceEntry (the construct of that name is constructs/service-entry.ts). */
export class IstioServiceEntry extends ApiObject {
  static readonly KIND = 'ServiceEntry';
  constructor(scope: Construct, id: string, props: IstioObjectProps<ServiceEntryResourceSpec>) {
    super(scope, id, { apiVersion: ISTIO_NETWORKING_API_VERSION, kind: IstioServiceEntry.KIND, metadata: props.metadata, spec: props.spec });
  }
}

/** apiVersion of Istio's Telemetry: telemetry.istio.io/v1, served since Istio 1.22 (v1alpha1 before). */
export const ISTIO_TELEMETRY_API_VERSION = 'telemetry.istio.io/v1';

/** The spec of a telemetry.istio.io Telemetry: the tracing part cdk8s-mesh emits. */
export interface TelemetrySpec {
  readonly tracing: Array<{
    readonly providers: Array<{ readonly name: string }>;
    readonly randomSamplingPercentage: number;
  }>;
}

/** Props of a Telemetry object. */
export interface TelemetryProps {
  /** name and namespace (the root namespace: the whole mesh). */
  readonly metadata: ApiObjectMetadata;
  /** The tracing providers and sampling. */
  readonly spec: TelemetrySpec;
}

/** A telemetry.istio.io/v1 Telemetry (which extension provider gets spans, and how many). */
export class Telemetry extends ApiObject {
  constructor(scope: Construct, id: string, props: TelemetryProps) {
    super(scope, id, { apiVersion: ISTIO_TELEMETRY_API_VERSION, kind: 'Telemetry', metadata: props.metadata, spec: props.spec });
  }
}
