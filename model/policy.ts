import { checkDuration, Duration } from './duration';
import { Check } from './errors';
import { checkDns1123Label, checkLabelValue } from './names';

export type LoadBalancer = 'ROUND_ROBIN' | 'RANDOM' | 'LEAST_REQUEST' | 'PASSTHROUGH';
export const LOAD_BALANCERS: readonly LoadBalancer[] = ['ROUND_ROBIN', 'RANDOM', 'LEAST_REQUEST', 'PASSTHROUGH'];
/** Where a consistent hash takes its key from (exactly one), and the hashing structure (Istio's ConsistentHashLB). */
export interface ConsistentHash {
  /** Hash on this request header's value. */
  readonly httpHeaderName?: string;
  /**
   * Hash on this cookie. With a `ttl`, a request without the cookie gets one (Set-Cookie on
   * its response, as Envoy does); a ttl of 0 makes it a session cookie.
   */
  readonly httpCookie?: HashCookie;
  /** Hash on the client's address. */
  readonly useSourceIp?: boolean;
  /** Hash on this query parameter's value. */
  readonly httpQueryParameterName?: string;
  /** A ring of virtual nodes (Envoy's ring hash). @default - a ring of at least 1024 entries */
  readonly ringHash?: RingHash;
  /** A Maglev lookup table, whose size must be prime. @default - ring hash */
  readonly maglev?: Maglev;
}

/** The cookie a consistent hash keys on. */
export interface HashCookie {
  readonly name: string;
  /** @default - any path */
  readonly path?: string;
  /** With a ttl, a request without the cookie gets one; 0 makes it a session cookie. @default - no cookie is set */
  readonly ttl?: Duration | string;
}

/** Envoy's ring hash. */
export interface RingHash {
  /** @default 1024 */
  readonly minimumRingSize?: number;
}

/** Envoy's Maglev table. */
export interface Maglev {
  /** A prime. @default 65537 */
  readonly tableSize?: number;
}

export type TlsMode = 'DISABLE' | 'SIMPLE' | 'MUTUAL' | 'ISTIO_MUTUAL';
export const TLS_MODES: readonly TlsMode[] = ['DISABLE', 'SIMPLE', 'MUTUAL', 'ISTIO_MUTUAL'];

/** Connection pool limits (Istio ConnectionPoolSettings). */
export interface ConnectionPool {
  readonly tcp?: TcpPool;
  readonly http?: HttpPool;
}

/** TCP limits of a connection pool (Istio TCPSettings). */
export interface TcpPool {
  /** @default - Envoy's default (2^32-1) */
  readonly maxConnections?: number;
  /** @default 10s */
  readonly connectTimeout?: Duration | string;
  /** TCP keepalive probes on upstream connections. @default - the operating system's (off) */
  readonly tcpKeepalive?: TcpKeepalive;
}

/** TCP keepalive of upstream connections. */
export interface TcpKeepalive {
  /** @default - the operating system's */
  readonly probes?: number;
  /** @default - the operating system's */
  readonly time?: Duration | string;
  /** @default - the operating system's */
  readonly interval?: Duration | string;
}

/** HTTP limits of a connection pool (Istio HTTPSettings). */
export interface HttpPool {
  /** @default - Envoy's default */
  readonly http1MaxPendingRequests?: number;
  /** @default - Envoy's default */
  readonly http2MaxRequests?: number;
  /** @default - unlimited */
  readonly maxRequestsPerConnection?: number;
  /** @default - Envoy's default */
  readonly maxRetries?: number;
  /** @default 1h */
  readonly idleTimeout?: Duration | string;
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
  /** Below this share of healthy endpoints, nothing is ejected and every endpoint gets traffic. @default 0 */
  readonly minHealthPercent?: number;
}

/** Load balancer, connection pool, outlier detection and TLS for a destination (Istio TrafficPolicy). */
export interface TrafficPolicy {
  /** A simple load balancer; not with `consistentHash`. @default - Istio's default (LEAST_REQUEST since 1.14) */
  readonly loadBalancer?: LoadBalancer;
  /** Sticky sessions: a hash of the request picks the endpoint; not with `loadBalancer`. @default - none */
  readonly consistentHash?: ConsistentHash;
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
  readonly consistentHash?: ConsistentHashModel;
  readonly connectionPool?: ConnectionPoolModel;
  readonly outlierDetection?: OutlierDetectionModel;
  readonly tls?: TlsMode;
}
/** A validated connection pool. */
export interface ConnectionPoolModel { readonly tcp?: TcpPoolModel; readonly http?: HttpPoolModel }
/** Validated TCP limits. */
export interface TcpPoolModel { readonly maxConnections?: number; readonly connectTimeout?: Duration; readonly tcpKeepalive?: TcpKeepaliveModel }
/** Validated TCP keepalive. */
export interface TcpKeepaliveModel { readonly probes?: number; readonly time?: Duration; readonly interval?: Duration }
/** Validated HTTP limits. */
export interface HttpPoolModel {
  readonly http1MaxPendingRequests?: number; readonly http2MaxRequests?: number;
  readonly maxRequestsPerConnection?: number; readonly maxRetries?: number; readonly idleTimeout?: Duration;
}
/** Validated outlier detection. */
export interface OutlierDetectionModel {
  readonly consecutive5xxErrors?: number; readonly consecutiveGatewayErrors?: number;
  readonly interval?: Duration; readonly baseEjectionTime?: Duration; readonly maxEjectionPercent?: number;
  readonly minHealthPercent?: number;
}
/** A validated hash cookie. */
export interface HashCookieModel { readonly name: string; readonly path?: string; readonly ttl?: Duration }
/** A validated consistent hash: one key source, and ring hash unless Maglev was asked for. */
export interface ConsistentHashModel {
  readonly httpHeaderName?: string;
  readonly httpCookie?: HashCookieModel;
  readonly useSourceIp?: boolean;
  readonly httpQueryParameterName?: string;
  readonly ringHash?: RingHash;
  readonly maglev?: Maglev;
}


/** Envoy's bounds: a ring of at most 8M entries; a Maglev table of a prime size, 65537 by default. */
export const MAX_RING_SIZE = 8_388_608;
export const DEFAULT_MAGLEV_TABLE_SIZE = 65_537;
export const DEFAULT_MIN_RING_SIZE = 1024;
/** A validated subset. */
export interface SubsetModel { readonly name: string; readonly labels: Readonly<Record<string, string>>; readonly trafficPolicy?: TrafficPolicyModel }

const INT32 = 2_147_483_647;

function optInt(check: Check, field: string, v: unknown, min: number, max = INT32) {
  if (v !== undefined) check.integer(field, v, min, max);
  return v as number | undefined;
}
function optDuration(check: Check, field: string, v: unknown) {
  return v === undefined ? undefined : checkDuration(check, field, v);
}

export function buildTrafficPolicy(check: Check, field: string, p: unknown): TrafficPolicyModel | undefined {
  if (p === undefined) return undefined;
  check.object(field, p);
  if (p.loadBalancer !== undefined) check.oneOf(`${field}.loadBalancer`, p.loadBalancer, LOAD_BALANCERS);
  if (p.loadBalancer !== undefined && p.consistentHash !== undefined) check.fail(`${field}.consistentHash`, p.consistentHash, `no consistentHash beside loadBalancer ${String(p.loadBalancer)} (Istio takes one of simple and consistentHash)`);
  const consistentHash = p.consistentHash === undefined ? undefined : buildConsistentHash(check, `${field}.consistentHash`, p.consistentHash);
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
        tcpKeepalive: tcp.tcpKeepalive === undefined ? undefined : keepalive(check, `${field}.connectionPool.tcp.tcpKeepalive`, tcp.tcpKeepalive),
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
      minHealthPercent: optInt(check, `${field}.outlierDetection.minHealthPercent`, od.minHealthPercent, 0, 100),
    };
  }
  return { loadBalancer: p.loadBalancer as LoadBalancer | undefined, consistentHash, connectionPool, outlierDetection, tls: p.tls as TlsMode | undefined };
}

function keepalive(check: Check, field: string, k: unknown) {
  check.object(field, k);
  return {
    probes: optInt(check, `${field}.probes`, k.probes, 1),
    time: optDuration(check, `${field}.time`, k.time),
    interval: optDuration(check, `${field}.interval`, k.interval),
  };
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let i = 2; i * i <= n; i++) if (n % i === 0) return false;
  return true;
}

const HASH_KEYS = ['httpHeaderName', 'httpCookie', 'useSourceIp', 'httpQueryParameterName'] as const;
// An HTTP token (RFC 9110 5.6.2): header and cookie names.
const TOKEN = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

function buildConsistentHash(check: Check, field: string, h: unknown): ConsistentHashModel {
  check.object(field, h);
  const keys = HASH_KEYS.filter((k) => h[k] !== undefined && h[k] !== false);
  if (keys.length !== 1) check.fail(field, h, `exactly one hash key of ${HASH_KEYS.join(', ')} (${keys.length ? `${keys.join(' and ')} given` : 'none given: nothing to hash'})`);
  if (h.httpHeaderName !== undefined && (typeof h.httpHeaderName !== 'string' || !TOKEN.test(h.httpHeaderName))) check.fail(`${field}.httpHeaderName`, h.httpHeaderName, 'an HTTP header name');
  if (h.httpQueryParameterName !== undefined) check.nonEmptyString(`${field}.httpQueryParameterName`, h.httpQueryParameterName);
  if (h.useSourceIp !== undefined && typeof h.useSourceIp !== 'boolean') check.fail(`${field}.useSourceIp`, h.useSourceIp, 'true or false');
  let httpCookie: ConsistentHashModel['httpCookie'];
  if (h.httpCookie !== undefined) {
    const c = h.httpCookie;
    check.object(`${field}.httpCookie`, c);
    if (typeof c.name !== 'string' || !TOKEN.test(c.name)) check.fail(`${field}.httpCookie.name`, c.name, 'a cookie name (an HTTP token)');
    if (c.path !== undefined && (typeof c.path !== 'string' || !/^\/[\x21-\x3a\x3c-\x7e]*$/.test(c.path))) check.fail(`${field}.httpCookie.path`, c.path, 'a cookie path: "/" then printable characters other than ";"');
    httpCookie = { name: c.name, ...(c.path !== undefined ? { path: c.path as string } : {}), ...(c.ttl !== undefined ? { ttl: checkDuration(check, `${field}.httpCookie.ttl`, c.ttl, { zero: true }) } : {}) };
  }
  if (h.ringHash !== undefined && h.maglev !== undefined) check.fail(`${field}.maglev`, h.maglev, 'no maglev beside ringHash (one hashing structure)');
  let ringHash: ConsistentHashModel['ringHash'];
  let maglev: ConsistentHashModel['maglev'];
  if (h.ringHash !== undefined) {
    check.object(`${field}.ringHash`, h.ringHash);
    ringHash = { minimumRingSize: optInt(check, `${field}.ringHash.minimumRingSize`, h.ringHash.minimumRingSize, 1, MAX_RING_SIZE) };
  }
  if (h.maglev !== undefined) {
    check.object(`${field}.maglev`, h.maglev);
    const size = optInt(check, `${field}.maglev.tableSize`, h.maglev.tableSize, 2, 5_000_011);
    if (size !== undefined && !isPrime(size)) check.fail(`${field}.maglev.tableSize`, size, 'a prime number (Envoy refuses other sizes), e.g. 65537');
    maglev = { tableSize: size };
  }
  return {
    ...(h.httpHeaderName !== undefined ? { httpHeaderName: h.httpHeaderName as string } : {}),
    ...(httpCookie ? { httpCookie } : {}),
    ...(h.useSourceIp ? { useSourceIp: true } : {}),
    ...(h.httpQueryParameterName !== undefined ? { httpQueryParameterName: h.httpQueryParameterName as string } : {}),
    ...(ringHash ? { ringHash } : {}),
    ...(maglev ? { maglev } : {}),
  };
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
