import { ApiObject, ApiObjectMetadata } from 'cdk8s';
import { Construct } from 'constructs';

/**
 * Kubernetes Gateway API resources typed by the project: only the fields cdk8s-mesh
 * emits, named as in gateway.networking.k8s.io. Every emitted object is checked against
 * the Gateway API CRD schemas (v1.6.1, vendored in crds/) in test/schema.test.ts.
 */
export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';
export const GATEWAY_API_VERSION = `${GATEWAY_API_GROUP}/v1`;
/** ReferenceGrant is served as v1beta1 in every release channel. */
export const GATEWAY_API_REFERENCE_GRANT_VERSION = `${GATEWAY_API_GROUP}/v1beta1`;

/** A parentRef: a Gateway (optionally one listener of it) or, for GAMMA mesh routes, a Service. */
export interface GwParentRef {
  readonly group?: string;
  readonly kind?: 'Gateway' | 'Service' | 'ServiceEntry';
  readonly name: string;
  readonly namespace?: string;
  readonly sectionName?: string;
  readonly port?: number;
}
/** A Service a rule forwards to (or mirrors to). */
export interface GwBackendRef { readonly group?: string; readonly kind?: string; readonly name: string; readonly namespace?: string; readonly port: number; readonly weight?: number }
/** HTTPPathMatch: Exact, PathPrefix (whole segments) or RegularExpression. */
export interface GwPathMatch { readonly type: 'Exact' | 'PathPrefix' | 'RegularExpression'; readonly value: string }
/** HTTPHeaderMatch / HTTPQueryParamMatch: a name and an Exact or RegularExpression value. */
export interface GwValueMatch { readonly type: 'Exact' | 'RegularExpression'; readonly name: string; readonly value: string }
/** HTTPRouteMatch: every condition must hold; a rule's matches are ORed. */
export interface GwHttpRouteMatch {
  readonly path?: GwPathMatch;
  readonly headers?: GwValueMatch[];
  readonly queryParams?: GwValueMatch[];
  readonly method?: string;
}
/** HTTPHeaderFilter: headers set, added and removed. */
export interface GwHeaderModifier {
  readonly set?: Array<{ readonly name: string; readonly value: string }>;
  readonly add?: Array<{ readonly name: string; readonly value: string }>;
  readonly remove?: string[];
}
/** HTTPPathModifier of a redirect or rewrite. */
export interface GwPathModifier { readonly type: 'ReplaceFullPath' | 'ReplacePrefixMatch'; readonly replaceFullPath?: string; readonly replacePrefixMatch?: string }
/** HTTPRouteFilter: the filters this data plane emits. */
export type GwHttpRouteFilter =
  | { readonly type: 'RequestHeaderModifier'; readonly requestHeaderModifier: GwHeaderModifier }
  | { readonly type: 'ResponseHeaderModifier'; readonly responseHeaderModifier: GwHeaderModifier }
  | { readonly type: 'RequestRedirect'; readonly requestRedirect: { readonly scheme?: string; readonly hostname?: string; readonly path?: GwPathModifier; readonly port?: number; readonly statusCode?: number } }
  | { readonly type: 'URLRewrite'; readonly urlRewrite: { readonly hostname?: string; readonly path?: GwPathModifier } }
  | { readonly type: 'RequestMirror'; readonly requestMirror: { readonly backendRef: GwBackendRef; readonly percent?: number } };
/** HTTPRouteRule: matches, filters, weighted backends, timeouts, retry. */
export interface GwHttpRouteRule {
  readonly name?: string;
  readonly matches?: GwHttpRouteMatch[];
  readonly filters?: GwHttpRouteFilter[];
  readonly backendRefs?: GwBackendRef[];
  readonly timeouts?: { readonly request?: string; readonly backendRequest?: string };
  /** Experimental channel only (GEP-1731). */
  readonly retry?: { readonly attempts?: number; readonly codes?: number[]; readonly backoff?: string };
}
/** HTTPRoute spec: where it attaches, for which hostnames, its rules. */
export interface HttpRouteSpec {
  readonly parentRefs: GwParentRef[];
  readonly hostnames?: string[];
  readonly rules: GwHttpRouteRule[];
}

/** HTTPRoute (gateway.networking.k8s.io/v1). */
export class HttpRoute extends ApiObject {
  constructor(scope: Construct, id: string, props: { metadata: ApiObjectMetadata; spec: HttpRouteSpec }) {
    super(scope, id, { apiVersion: GATEWAY_API_VERSION, kind: 'HTTPRoute', ...props });
  }
}

/** A Gateway listener: name (the routes' sectionName), hostname, port, protocol, TLS. */
export interface GwListener {
  readonly name: string;
  readonly hostname?: string;
  readonly port: number;
  readonly protocol: 'HTTP' | 'HTTPS';
  readonly tls?: { readonly mode: 'Terminate'; readonly certificateRefs: Array<{ readonly kind?: string; readonly name: string }> };
  readonly allowedRoutes?: { readonly namespaces: { readonly from: 'All' | 'Same' } };
}
/** Gateway spec: its class and listeners. */
export interface GatewayApiGatewaySpec { readonly gatewayClassName: string; readonly listeners: GwListener[] }

/** Gateway (gateway.networking.k8s.io/v1): listeners a GatewayClass's controller serves. */
export class GatewayApiGateway extends ApiObject {
  constructor(scope: Construct, id: string, props: { metadata: ApiObjectMetadata; spec: GatewayApiGatewaySpec }) {
    super(scope, id, { apiVersion: GATEWAY_API_VERSION, kind: 'Gateway', ...props });
  }
}

/** ReferenceGrant spec: which objects of which namespaces may refer to which kinds here. */
export interface ReferenceGrantSpec {
  readonly from: Array<{ readonly group: string; readonly kind: string; readonly namespace: string }>;
  readonly to: Array<{ readonly group: string; readonly kind: string; readonly name?: string }>;
}

/** ReferenceGrant: lets routes in another namespace forward to this namespace's Services. */
export class ReferenceGrant extends ApiObject {
  constructor(scope: Construct, id: string, props: { metadata: ApiObjectMetadata; spec: ReferenceGrantSpec }) {
    super(scope, id, { apiVersion: GATEWAY_API_REFERENCE_GRANT_VERSION, kind: 'ReferenceGrant', ...props });
  }
}
