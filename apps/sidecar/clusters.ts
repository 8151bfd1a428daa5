// Envoy's clusters for the node sidecar: per Service host and port, its endpoints, the
// DestinationRule's load balancer, outlier detection and circuit breakers.
import { randomBytes } from 'node:crypto';
import type { RouteTable, RtTrafficPolicy } from '../../model/route-table';
import type { Endpoint, EndpointSource } from './endpoints';
import { rawQuery } from './table';
import { Pool, PoolSettings, UNLIMITED } from './upstream';

/** An endpoint and what the proxy knows of it. */
export interface Host {
  readonly endpoint: Endpoint;
  /** Requests in flight (LEAST_REQUEST). */
  active: number;
  consecutive5xx: number;
  consecutiveGateway: number;
  /** performance.now() until which it is ejected; 0 when not. */
  ejectedUntil: number;
  /** Ejections so far, less one per healthy interval: the ejection time's multiplier. */
  ejections: number;
}

/** What a consistent hash reads from a request. */
export interface HashInput {
  readonly headers: NodeJS.Dict<string | string[]>;
  readonly path: string;
  readonly remoteAddress: string | undefined;
}

/** The answer when endpoints are known but none can take the request (Envoy: 503, flag UH). */
export const NO_HEALTHY_UPSTREAM = Symbol('no healthy upstream');

/** Istio's outlier detection defaults (consecutive5xxErrors 5, interval 10s, baseEjectionTime 30s, maxEjectionPercent 10), and Envoy's 300 s cap. */
const OUTLIER_DEFAULTS = { consecutive5xxErrors: 5, consecutiveGatewayErrors: 0, intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 10, minHealthPercent: 0 };
const MAX_EJECTION_MS = 300_000;

/** 32-bit FNV-1a, then murmur3's finaliser for avalanche: the hash of ring points and request keys alike. */
export function hash32(s: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193); }
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b); h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35); h ^= h >>> 16;
  return h >>> 0;
}

/** Envoy's ring hash: `minimumRingSize` points shared among the hosts, a request goes to the first point at or after its hash. */
export class Ring {
  private readonly points: Uint32Array;
  private readonly owners: Uint32Array;

  constructor(keys: readonly string[], minimumRingSize: number) {
    const per = Math.max(1, Math.ceil(minimumRingSize / Math.max(1, keys.length)));
    const all: Array<[number, number]> = [];
    keys.forEach((k, i) => { for (let j = 0; j < per; j++) all.push([hash32(`${k}_${j}`), i]); });
    all.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    this.points = Uint32Array.from(all.map((p) => p[0]));
    this.owners = Uint32Array.from(all.map((p) => p[1]));
  }

  /** The owner of the point at or after `h`; `skip` moves on to later points (retries). */
  pick(h: number, skip = 0): number {
    const p = this.points;
    let lo = 0;
    let hi = p.length;
    while (lo < hi) { const mid = (lo + hi) >>> 1; if (p[mid] < h) lo = mid + 1; else hi = mid; }
    return this.owners[(lo + skip) % p.length];
  }
}

/** Maglev (Eisenbud et al., as Envoy builds it): a table of a prime size filled by each host's permutation in turn. */
export class Maglev {
  private readonly table: Int32Array;

  constructor(keys: readonly string[], readonly size: number) {
    const table = new Int32Array(size).fill(-1);
    const offset = keys.map((k) => hash32(k, 1) % size);
    const skip = keys.map((k) => (hash32(k, 2) % (size - 1)) + 1);
    const next = keys.map(() => 0);
    let filled = 0;
    while (keys.length && filled < size) {
      for (let i = 0; i < keys.length && filled < size; i++) {
        let c = (offset[i] + next[i] * skip[i]) % size;
        while (table[c] >= 0) { next[i]++; c = (offset[i] + next[i] * skip[i]) % size; }
        table[c] = i;
        next[i]++;
        filled++;
      }
    }
    this.table = table;
  }

  pick(h: number, skip = 0): number {
    return this.table[(h + skip) % this.size];
  }
}

export interface ClusterEvents {
  ejected(cluster: string, host: Endpoint, ms: number, reason: string): void;
  returned(cluster: string, host: Endpoint): void;
}

/** One Service host and port: endpoints, balancer, outlier detection, circuit breakers. */
export class Cluster {
  readonly pool: Pool;
  /** Requests in flight and retries in flight (Envoy's max_requests and max_retries). */
  active = 0;
  retries = 0;
  readonly maxRequests: number;
  readonly maxRetries: number;
  private hosts: Host[] = [];
  private endpoints?: readonly Endpoint[];
  /** The source's version the hosts were read at (-1: never). */
  private seen = -1;
  /** Ready hosts, and those of them not ejected: made again only when endpoints or ejections change. */
  private ready: Host[] = [];
  private healthy?: Host[];
  private rr: number;
  private hashTable?: Ring | Maglev;
  private outlierTimer?: NodeJS.Timeout;
  private readonly outlier?: typeof OUTLIER_DEFAULTS;

  constructor(
    readonly key: string, private readonly host: string, private readonly port: number, readonly policy: RtTrafficPolicy,
    private readonly source: EndpointSource | undefined, defaults: PoolSettings, private readonly events: ClusterEvents,
    private readonly random: () => number = Math.random,
  ) {
    const cp = policy.connectionPool ?? {};
    this.pool = new Pool({
      maxConnections: cp.maxConnections ?? defaults.maxConnections,
      maxPending: cp.http1MaxPendingRequests ?? defaults.maxPending,
      maxRequestsPerConnection: cp.maxRequestsPerConnection ?? defaults.maxRequestsPerConnection,
      connectTimeoutMs: cp.connectTimeoutMs ?? defaults.connectTimeoutMs,
      idleTimeoutMs: cp.idleTimeoutMs ?? defaults.idleTimeoutMs,
      keepAliveMs: cp.tcpKeepalive ? (cp.tcpKeepalive.timeMs ?? 7_200_000) : defaults.keepAliveMs,
    });
    this.maxRequests = cp.http2MaxRequests ?? defaults.maxRequests ?? UNLIMITED;
    this.maxRetries = cp.maxRetries ?? defaults.maxRetries ?? UNLIMITED;
    if (policy.outlierDetection) this.outlier = { ...OUTLIER_DEFAULTS, ...policy.outlierDetection };
    this.rr = Math.floor(this.random() * 1024);
  }

  /** The hosts as of the source's current endpoints; undefined when the source does not know them. */
  private current(): Host[] | undefined {
    const source = this.source;
    if (!source) return undefined;
    if (source.version === this.seen) return this.endpoints && this.hosts;
    this.seen = source.version;
    const eps = source.get(this.host, this.port);
    if (eps === undefined) { this.endpoints = undefined; return undefined; }
    if (eps !== this.endpoints) {
      // Hosts that stay keep their counters and ejection (a resync must not pardon a failing pod).
      const old = new Map(this.hosts.map((h) => [`${h.endpoint.address}:${h.endpoint.port}`, h]));
      this.hosts = eps.map((e) => {
        const h = old.get(`${e.address}:${e.port}`);
        return h ? Object.assign(h, { endpoint: e }) : { endpoint: e, active: 0, consecutive5xx: 0, consecutiveGateway: 0, ejectedUntil: 0, ejections: 0 };
      });
      this.endpoints = eps;
      this.hashTable = undefined;
      this.ready = this.hosts.filter((h) => h.endpoint.ready);
      this.healthy = undefined;
    }
    return this.hosts;
  }

  /** Whether requests go to endpoints (false: to the Service's name, kube-proxy picks). */
  get balanced(): boolean {
    return this.policy.loadBalancer !== 'PASSTHROUGH' && this.current() !== undefined;
  }

  /**
   * The host for an attempt: undefined to connect to the Service's name (PASSTHROUGH, or
   * endpoints unknown), NO_HEALTHY_UPSTREAM when none can take it. `tried` are hosts
   * earlier attempts failed on: another is picked when there is one.
   */
  pick(hash: number | undefined, tried?: ReadonlySet<Host>): Host | undefined | typeof NO_HEALTHY_UPSTREAM {
    if (this.policy.loadBalancer === 'PASSTHROUGH') return undefined;
    if (this.current() === undefined) return undefined;
    const ready = this.ready;
    if (ready.length === 0) return NO_HEALTHY_UPSTREAM;
    let healthy = this.healthy;
    if (!healthy) {
      healthy = ready.filter((h) => h.ejectedUntil === 0);
      // Panic (Istio's minHealthPercent): too few healthy hosts, and every ready one gets traffic.
      if (this.outlier && healthy.length * 100 < this.outlier.minHealthPercent * ready.length) healthy = ready;
      this.healthy = healthy;
    }
    if (healthy.length === 0) return NO_HEALTHY_UPSTREAM;
    // Hosts not tried yet, when there are any: Istio's previous_hosts predicate re-picks up to
    // 5 times and may still land on the same host; leaving them out makes "another" certain.
    const fresh = tried?.size ? healthy.filter((h) => !tried.has(h)) : healthy;
    return this.choose(fresh.length ? fresh : healthy, hash, tried?.size ?? 0);
  }

  private choose(hosts: Host[], hash: number | undefined, attempt: number): Host {
    if (hosts.length === 1) return hosts[0];
    const ch = this.policy.consistentHash;
    if (ch && hash !== undefined) {
      if (!this.hashTable) {
        // Built over every ready host, so that an ejection moves only that host's keys.
        const keys = this.hosts.map((h) => `${h.endpoint.address}:${h.endpoint.port}`);
        this.hashTable = ch.maglev ? new Maglev(keys, ch.maglev.tableSize ?? 65_537) : new Ring(keys, ch.ringHash?.minimumRingSize ?? 1024);
      }
      // Walk on from the hash until a host of `hosts` (healthy, not tried) comes up.
      const ok = new Set(hosts);
      for (let skip = attempt, n = 0; n < 64; skip++, n++) {
        const h = this.hosts[this.hashTable.pick(hash, skip)];
        if (h && ok.has(h)) return h;
      }
      return hosts[hash % hosts.length];
    }
    switch (this.policy.loadBalancer) {
      case 'ROUND_ROBIN': return hosts[this.rr++ % hosts.length];
      case 'RANDOM': return hosts[Math.floor(this.random() * hosts.length)];
      default: {
        // LEAST_REQUEST (Istio's default): Envoy's power of two choices.
        const a = Math.floor(this.random() * hosts.length);
        let b = Math.floor(this.random() * (hosts.length - 1));
        if (b >= a) b++;
        return hosts[b] && hosts[b].active < hosts[a].active ? hosts[b] : hosts[a];
      }
    }
  }

  /**
   * The request's hash key, and the cookie to set when the policy hashes on a cookie the
   * request lacks (with a ttl, as Envoy generates one). Undefined: no key, a random host.
   */
  hashOf(req: HashInput): { hash?: number; setCookie?: string } {
    const ch = this.policy.consistentHash;
    if (!ch) return {};
    if (ch.httpHeaderName) {
      const v = req.headers[ch.httpHeaderName.toLowerCase()];
      return v === undefined ? {} : { hash: hash32(Array.isArray(v) ? v.join(',') : v) };
    }
    if (ch.useSourceIp) return req.remoteAddress ? { hash: hash32(req.remoteAddress.replace(/^::ffff:/, '')) } : {};
    if (ch.httpQueryParameterName) {
      // Read as route matching reads it (Envoy's parseQueryString): raw, the first value of a repeated key.
      const q = req.path.indexOf('?');
      const v = q < 0 ? undefined : rawQuery(req.path.slice(q + 1)).get(ch.httpQueryParameterName);
      return v === undefined ? {} : { hash: hash32(v) };
    }
    const c = ch.httpCookie!;
    const value = cookieValue(req.headers.cookie, c.name);
    if (value !== undefined) return { hash: hash32(value) };
    if (c.ttlMs === undefined) return {};
    const fresh = randomBytes(8).toString('hex');
    const attrs = [`${c.name}="${fresh}"`, ...(c.ttlMs > 0 ? [`Max-Age=${Math.floor(c.ttlMs / 1000)}`] : []), ...(c.path ? [`Path=${c.path}`] : []), 'HttpOnly'];
    return { hash: hash32(fresh), setCookie: attrs.join('; ') };
  }

  /** An attempt on `h` ended: a status, or a locally originated failure (connect, reset, timeout). */
  record(h: Host, status: number, localFailure: boolean): void {
    const o = this.outlier;
    if (!o) return;
    const s = status;
    const is5xx = localFailure || s >= 500;
    const gateway = localFailure || s === 502 || s === 503 || s === 504;
    if (!is5xx) { h.consecutive5xx = 0; h.consecutiveGateway = 0; return; }
    h.consecutive5xx++;
    if (gateway) h.consecutiveGateway++;
    else h.consecutiveGateway = 0;
    if (o.consecutive5xxErrors > 0 && h.consecutive5xx >= o.consecutive5xxErrors) this.eject(h, `${h.consecutive5xx} consecutive 5xx`);
    else if (o.consecutiveGatewayErrors > 0 && h.consecutiveGateway >= o.consecutiveGatewayErrors) this.eject(h, `${h.consecutiveGateway} consecutive gateway errors`);
  }

  private eject(h: Host, reason: string): void {
    const o = this.outlier!;
    if (h.ejectedUntil !== 0) return;
    const ejected = this.hosts.filter((x) => x.ejectedUntil !== 0).length;
    // maxEjectionPercent, but at least one host may always be ejected (Envoy's rule).
    if (ejected > 0 && ((ejected + 1) * 100) / this.hosts.length > o.maxEjectionPercent) return;
    h.ejections++;
    const ms = Math.min(o.baseEjectionTimeMs * h.ejections, Math.max(o.baseEjectionTimeMs, MAX_EJECTION_MS));
    h.ejectedUntil = performance.now() + ms;
    this.healthy = undefined;
    h.consecutive5xx = 0;
    h.consecutiveGateway = 0;
    this.events.ejected(this.key, h.endpoint, ms, reason);
    if (!this.outlierTimer) {
      // Envoy's interval: ejected hosts come back, and the multiplier of healthy ones goes down, at each tick.
      this.outlierTimer = setInterval(() => this.tick(), o.intervalMs);
      this.outlierTimer.unref();
    }
  }

  private tick(): void {
    const now = performance.now();
    let any = false;
    for (const h of this.hosts) {
      if (h.ejectedUntil !== 0 && now >= h.ejectedUntil) { h.ejectedUntil = 0; this.healthy = undefined; this.events.returned(this.key, h.endpoint); }
      else if (h.ejectedUntil === 0 && h.ejections > 0) h.ejections--;
      if (h.ejectedUntil !== 0 || h.ejections > 0) any = true;
    }
    if (!any && this.outlierTimer) { clearInterval(this.outlierTimer); this.outlierTimer = undefined; }
  }

  /** Hosts and their state (admin /clusters, tests). */
  snapshot(): Array<{ address: string; port: number; ready: boolean; active: number; ejected: boolean }> {
    return (this.current() ?? []).map((h) => ({ address: h.endpoint.address, port: h.endpoint.port, ready: h.endpoint.ready, active: h.active, ejected: h.ejectedUntil !== 0 }));
  }

  close(): void {
    if (this.outlierTimer) clearInterval(this.outlierTimer);
    this.pool.close();
  }
}

/** The value of cookie `name` in a Cookie header (RFC 6265 5.4: `a=1; b=2`), quotes removed. */
export function cookieValue(header: string | string[] | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const line of Array.isArray(header) ? header : [header]) {
    for (const part of line.split(';')) {
      const eq = part.indexOf('=');
      if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
      const v = part.slice(eq + 1).trim();
      return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
    }
  }
  return undefined;
}

/** A ServiceEntry's STATIC (or DNS) endpoints, from the route table: fixed until the table changes. */
class TableEndpoints implements EndpointSource {
  readonly kind = 'table';
  readonly version = 0;
  constructor(private readonly byPort: ReadonlyMap<number, readonly Endpoint[]>) {}
  get(_host: string, port: number): readonly Endpoint[] | undefined { return this.byPort.get(port); }
  close(): void {}
}

/** The clusters of the route table in use, made on first use and replaced with the table. */
export class Clusters {
  /** By host, then port: no key string to build per request. */
  private readonly byHost = new Map<string, Map<number, Cluster>>();
  private policies = new Map<string, RtTrafficPolicy>();
  /** ServiceEntry hosts with endpoints in the table, and those endpoints' JSON (a change rebuilds the clusters). */
  private external = new Map<string, { source: TableEndpoints; json: string }>();
  private table?: RouteTable;

  constructor(readonly source: EndpointSource | undefined, private readonly defaults: PoolSettings, private readonly events: ClusterEvents, private readonly random: () => number = Math.random) {}

  /** A new route table: clusters whose policy changed are rebuilt (the others keep their state). */
  setTable(table: RouteTable): void {
    if (table === this.table) return;
    this.table = table;
    this.source?.setTable?.(table);
    const next = new Map(table.services.map((s) => [s.host.toLowerCase(), s.policy ?? {}]));
    const external = new Map<string, { source: TableEndpoints; json: string }>();
    for (const s of table.services) {
      const eps = s.external?.endpoints;
      if (!eps) continue;
      const byPort = new Map(Object.entries(eps).map(([port, list]) => [Number(port), list.map((e) => ({ address: e.address, port: e.port, ready: true, terminating: false }))]));
      external.set(s.host.toLowerCase(), { source: new TableEndpoints(byPort), json: JSON.stringify(eps) });
    }
    for (const [host, byPort] of this.byHost) {
      for (const [port, c] of byPort) {
        if (JSON.stringify(next.get(host)) !== JSON.stringify(c.policy) || this.external.get(host)?.json !== external.get(host)?.json) { c.close(); byPort.delete(port); }
      }
      if (!byPort.size) this.byHost.delete(host);
    }
    this.policies = next;
    this.external = external;
  }

  /** The cluster of a known Service host and port; undefined for hosts the table does not know. */
  get(host: string, port: number): Cluster | undefined {
    let byPort = this.byHost.get(host);
    const c = byPort?.get(port);
    if (c) return c;
    const policy = this.policies.get(host);
    if (policy === undefined) return undefined;
    const made = new Cluster(`${host}:${port}`, host, port, policy, this.external.get(host)?.source ?? this.source, this.defaults, this.events, this.random);
    if (!byPort) { byPort = new Map(); this.byHost.set(host, byPort); }
    byPort.set(port, made);
    return made;
  }

  *all(): IterableIterator<Cluster> { for (const byPort of this.byHost.values()) yield* byPort.values(); }

  close(): void {
    for (const c of this.all()) c.close();
    this.byHost.clear();
    this.source?.close();
  }
}
