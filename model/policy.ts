import { Duration } from './duration';
import { Check } from './errors';
import { checkDns1123Label, checkLabelValue } from './names';

export type LoadBalancer = 'ROUND_ROBIN' | 'RANDOM' | 'LEAST_REQUEST' | 'PASSTHROUGH';
export const LOAD_BALANCERS: readonly LoadBalancer[] = ['ROUND_ROBIN', 'RANDOM', 'LEAST_REQUEST', 'PASSTHROUGH'];
export type TlsMode = 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';
export const TLS_MODES: readonly TlsMode[] = ['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'];

/** Connection pool limits (Istio ConnectionPoolSettings). */
export interface ConnectionPool {
  readonly tcp?: {
    /** @default - Envoy's default (2^32-1) */
    readonly maxConnections?: number;
    /** @default 10s */
    readonly connectTimeout?: Duration | string;
  };
  readonly http?: {
    readonly http1MaxPendingRequests?: number;
    readonly http2MaxRequests?: number;
    readonly maxRequestsPerConnection?: number;
    readonly maxRetries?: number;
    readonly idleTimeout?: Duration | string;
  };
}

/** Ejecting failing endpoints (Istio OutlierDetection). */
export interface OutlierDetection {
  /** @default 5 */
  readonly consecutive5xxErrors?: number;
  readonly consecutiveGatewayErrors?: number;
  /** @default 10s */
  readonly interval?: Duration | string;
  /** @default 30s */
  readonly baseEjectionTime?: Duration | string;
  /** @default 10 */
  readonly maxEjectionPercent?: number;
}

/** Load balancer, connection pool, outlier detection and TLS for a destination (Istio TrafficPolicy). */
export interface TrafficPolicy {
  /** @default - Istio's default (LEAST_REQUEST since 1.14) */
  readonly loadBalancer?: LoadBalancer;
  readonly connectionPool?: ConnectionPool;
  readonly outlierDetection?: OutlierDetection;
  /** TLS to the upstream; ISTIO_MUTUAL for mesh mTLS. @default - auto mTLS */
  readonly tls?: TlsMode;
}

/** A named subset of a Service's pods, selected by labels (by default `version: <name>`). */
export interface Subset {
  /** Subset name, used by routes. A DNS-1123 label such as "v1". */
  readonly name: string;
  /** Pod labels that select the subset. @default { version: name } */
  readonly labels?: Readonly<Record<string, string>>;
  /** @default - the rule's policy */
  readonly trafficPolicy?: TrafficPolicy;
}

/** A validated traffic policy. */
export interface TrafficPolicyModel {
  readonly loadBalancer?: LoadBalancer;
  readonly connectionPool?: {
    readonly tcp?: { readonly maxConnections?: number; readonly connectTimeout?: Duration };
    readonly http?: {
      readonly http1MaxPendingRequests?: number; readonly http2MaxRequests?: number;
      readonly maxRequestsPerConnection?: number; readonly maxRetries?: number; readonly idleTimeout?: Duration;
    };
  };
  readonly outlierDetection?: {
    readonly consecutive5xxErrors?: number; readonly consecutiveGatewayErrors?: number;
    readonly interval?: Duration; readonly baseEjectionTime?: Duration; readonly maxEjectionPercent?: number;
  };
  readonly tls?: TlsMode;
}
/** A validated subset. */
export interface SubsetModel { readonly name: string; readonly labels: Readonly<Record<string, string>>; readonly trafficPolicy?: TrafficPolicyModel }

const INT32 = 2_147_483_647;

function optInt(check: Check, field: string, v: unknown, min: number, max = INT32) {
  if (v !== undefined) check.integer(field, v, min, max);
  return v as number | undefined;
}
function optDuration(check: Check, field: string, v: unknown) {
  return v === undefined ? undefined : Duration.check(check, field, v);
}

export function buildTrafficPolicy(check: Check, field: string, p: unknown): TrafficPolicyModel | undefined {
  if (p === undefined) return undefined;
  check.object(field, p);
  if (p.loadBalancer !== undefined) check.oneOf(`${field}.loadBalancer`, p.loadBalancer, LOAD_BALANCERS);
  if (p.tls !== undefined) check.oneOf(`${field}.tls`, p.tls, TLS_MODES);
  let connectionPool: TrafficPolicyModel['connectionPool'];
  if (p.connectionPool !== undefined) {
    const cp = p.connectionPool;
    check.object(`${field}.connectionPool`, cp);
    const tcp = cp.tcp as Record<string, unknown> | undefined;
    const http = cp.http as Record<string, unknown> | undefined;
    if (tcp !== undefined) check.object(`${field}.connectionPool.tcp`, tcp);
    if (http !== undefined) check.object(`${field}.connectionPool.http`, http);
    connectionPool = {
      tcp: tcp && {
        maxConnections: optInt(check, `${field}.connectionPool.tcp.maxConnections`, tcp.maxConnections, 1),
        connectTimeout: optDuration(check, `${field}.connectionPool.tcp.connectTimeout`, tcp.connectTimeout),
      },
      http: http && {
        http1MaxPendingRequests: optInt(check, `${field}.connectionPool.http.http1MaxPendingRequests`, http.http1MaxPendingRequests, 1),
        http2MaxRequests: optInt(check, `${field}.connectionPool.http.http2MaxRequests`, http.http2MaxRequests, 1),
        maxRequestsPerConnection: optInt(check, `${field}.connectionPool.http.maxRequestsPerConnection`, http.maxRequestsPerConnection, 0),
        maxRetries: optInt(check, `${field}.connectionPool.http.maxRetries`, http.maxRetries, 0),
        idleTimeout: optDuration(check, `${field}.connectionPool.http.idleTimeout`, http.idleTimeout),
      },
    };
  }
  let outlierDetection: TrafficPolicyModel['outlierDetection'];
  if (p.outlierDetection !== undefined) {
    const od = p.outlierDetection;
    check.object(`${field}.outlierDetection`, od);
    outlierDetection = {
      consecutive5xxErrors: optInt(check, `${field}.outlierDetection.consecutive5xxErrors`, od.consecutive5xxErrors, 0),
      consecutiveGatewayErrors: optInt(check, `${field}.outlierDetection.consecutiveGatewayErrors`, od.consecutiveGatewayErrors, 0),
      interval: optDuration(check, `${field}.outlierDetection.interval`, od.interval),
      baseEjectionTime: optDuration(check, `${field}.outlierDetection.baseEjectionTime`, od.baseEjectionTime),
      maxEjectionPercent: optInt(check, `${field}.outlierDetection.maxEjectionPercent`, od.maxEjectionPercent, 0, 100),
    };
  }
  return { loadBalancer: p.loadBalancer as LoadBalancer | undefined, connectionPool, outlierDetection, tls: p.tls as TlsMode | undefined };
}

/** Validate subsets: DNS-1123 names, unique, label selectors that are valid and distinct. */
export function buildSubsets(where: string, subsets: readonly Subset[]): SubsetModel[] {
  const check: Check = new Check(where);
  check.array('subsets', subsets);
  const names = new Set<string>();
  return subsets.map((s, i) => {
    const f = `subsets[${i}]`;
    check.object(f, s);
    checkDns1123Label(check, `${f}.name`, s.name);
    if (names.has(s.name)) check.fail(`${f}.name`, s.name, 'a subset name not used twice');
    names.add(s.name);
    const labels = s.labels ?? { version: s.name };
    check.object(`${f}.labels`, labels);
    if (Object.keys(labels).length === 0) check.fail(`${f}.labels`, labels, 'at least one label (an empty selector would select every pod)');
    for (const [k, v] of Object.entries(labels)) checkLabelValue(check, `${f}.labels.${k}`, v);
    return { name: s.name, labels, trafficPolicy: buildTrafficPolicy(check, `${f}.trafficPolicy`, s.trafficPolicy) };
  });
}
