// Where the proxy learns the pods behind a Service: a static file (tests, runs off
// Kubernetes) or the Kubernetes API's EndpointSlices (list, then watch). Neither known:
// the proxy connects to the Service's name and kube-proxy picks the pod (ClusterIP).
import { readFileSync } from 'node:fs';
import * as https from 'node:https';
import type { RouteTable } from '../../model/route-table';
import { ConfigError } from './table';

/** One endpoint of a Service port: where to connect, and EndpointSlice's conditions. */
export interface Endpoint {
  readonly address: string;
  /** The port on the pod (the Service port's target). */
  readonly port: number;
  /** Gets new requests. EndpointSlice: `ready` (absent means ready). */
  readonly ready: boolean;
  /** The pod is shutting down: no new requests; requests in flight finish. */
  readonly terminating: boolean;
}

/** A source of endpoints, per Service host and port. */
export interface EndpointSource {
  /** `kubernetes`, `file`; the source the proxy uses when it has none is `cluster-ip`. */
  readonly kind: string;
  /** Goes up on every change: a caller whose copy is of this version need not ask again. */
  readonly version: number;
  /**
   * The endpoints of `host:port` (the Service port), or undefined when this source does not
   * know the Service (yet): the proxy then connects to the Service's name. The same array
   * comes back until the endpoints change, so callers can cache what they derive from it.
   */
  get(host: string, port: number): readonly Endpoint[] | undefined;
  /** The route table changed: which Services (and port names) to follow. */
  setTable?(table: RouteTable): void;
  close(): void;
}

// -----------------------------------------------------------------------------
// Static file

/** The static endpoints file: `clusters` by `host:port` (the Service's host and port). */
export interface EndpointsFile {
  readonly apiVersion: 'mesh.cdk8s.io/v1alpha1';
  readonly kind: 'Endpoints';
  readonly clusters: Readonly<Record<string, ReadonlyArray<{ address: string; port: number; ready?: boolean; terminating?: boolean }>>>;
}

const ADDRESS = /^(\d{1,3}(\.\d{1,3}){3}|[0-9a-fA-F:]+|[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?)$/;

/** Parse and check an endpoints file; throws ConfigError naming the place. */
export function parseEndpointsFile(text: string, source: string): Map<string, Endpoint[]> {
  let data: unknown;
  try { data = JSON.parse(text); } catch (e) { throw new ConfigError(`${source}: not valid JSON (${(e as Error).message})`); }
  const d = data as Partial<EndpointsFile>;
  if (typeof d !== 'object' || d === null || d.kind !== 'Endpoints' || d.apiVersion !== 'mesh.cdk8s.io/v1alpha1' || typeof d.clusters !== 'object' || d.clusters === null) {
    throw new ConfigError(`${source}: expected {"apiVersion": "mesh.cdk8s.io/v1alpha1", "kind": "Endpoints", "clusters": {"host:port": [...]}}`);
  }
  const out = new Map<string, Endpoint[]>();
  for (const [key, list] of Object.entries(d.clusters)) {
    const where = `${source}: /clusters/${key}`;
    const m = /^([a-z0-9.-]+):(\d{1,5})$/i.exec(key);
    if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) throw new ConfigError(`${where}: expected a key "host:port"`);
    if (!Array.isArray(list)) throw new ConfigError(`${where}: expected an array of endpoints`);
    out.set(`${m[1].toLowerCase()}:${Number(m[2])}`, list.map((e, i) => {
      const ok = typeof e === 'object' && e !== null && typeof e.address === 'string' && ADDRESS.test(e.address)
        && Number.isInteger(e.port) && e.port >= 1 && e.port <= 65535
        && (e.ready === undefined || typeof e.ready === 'boolean') && (e.terminating === undefined || typeof e.terminating === 'boolean');
      if (!ok) throw new ConfigError(`${where}/${i}: expected {"address": "10.0.0.1", "port": 8080, "ready"?: true, "terminating"?: false}`);
      return { address: e.address, port: e.port, ready: e.ready ?? true, terminating: e.terminating ?? false };
    }));
  }
  return out;
}

/** Endpoints from a file; `reload()` re-reads it (main.ts watches it). */
export class FileEndpoints implements EndpointSource {
  readonly kind = 'file';
  version = 0;
  private clusters: Map<string, Endpoint[]>;

  constructor(private readonly path: string) {
    this.clusters = parseEndpointsFile(readFileSync(path, 'utf8'), path);
  }

  /** Re-read the file; a bad file throws and the last good endpoints stay. Lists that did not change keep their identity. */
  reload(): void {
    const next = parseEndpointsFile(readFileSync(this.path, 'utf8'), this.path);
    for (const [k, list] of next) {
      const old = this.clusters.get(k);
      if (old && JSON.stringify(old) === JSON.stringify(list)) next.set(k, old);
    }
    this.clusters = next;
    this.version++;
  }

  get(host: string, port: number): readonly Endpoint[] | undefined {
    return this.clusters.get(`${host}:${port}`);
  }

  close(): void {}
}

// -----------------------------------------------------------------------------
// Kubernetes EndpointSlices

interface SlicePort { name?: string; port?: number; protocol?: string }
interface SliceEndpoint { addresses?: string[]; conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean } }
interface Slice {
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; resourceVersion?: string };
  addressType?: string;
  ports?: SlicePort[] | null;
  endpoints?: SliceEndpoint[] | null;
}

export interface KubernetesEndpointsOptions {
  /** https://host:port of the API server. */
  readonly server: string;
  /** The projected ServiceAccount token (re-read for every call: the kubelet rotates it). */
  readonly tokenFile: string;
  /** The cluster's CA bundle. */
  readonly caFile: string;
  readonly log: (level: 'info' | 'warn' | 'error', msg: string, extra?: Record<string, unknown>) => void;
  /** Called after every change (metrics, tests). */
  readonly onChange?: () => void;
}

/** The largest watch event line accepted (an EndpointSlice holds at most 1,000 endpoints: ~200 KB). */
const MAX_LINE_BYTES = 4 * 1024 * 1024;
const SERVICE_NAME_LABEL = 'kubernetes.io/service-name';

/**
 * EndpointSlices of the Services the route table names, one list-and-watch per namespace
 * with a label selector on those Services' names (the API server filters; the proxy's Role
 * allows list and watch on endpointslices only). discovery.k8s.io/v1, or v1beta1 on
 * clusters older than 1.21. A watch that ends is resumed from its resourceVersion; a
 * resourceVersion too old (410) lists again.
 */
export class KubernetesEndpoints implements EndpointSource {
  readonly kind = 'kubernetes';
  version = 0;
  /** Per namespace: the Service names followed, and the slices seen, by slice name. */
  private readonly namespaces = new Map<string, { services: string[]; slices: Map<string, Slice>; synced: boolean; stop: () => void }>();
  /** `host:port` -> port name, from the route table. */
  private portNames = new Map<string, string>();
  private clusterDomain = 'cluster.local';
  private readonly cache = new Map<string, readonly Endpoint[]>();
  private apiVersion: 'v1' | 'v1beta1' = 'v1';
  private closed = false;
  private readonly ca: Buffer;

  constructor(private readonly opts: KubernetesEndpointsOptions) {
    this.ca = readFileSync(opts.caFile);
    readFileSync(opts.tokenFile); // fails now, not at the first watch, when there is no token
  }

  setTable(table: RouteTable): void {
    this.clusterDomain = table.clusterDomain;
    const suffix = `.svc.${table.clusterDomain}`;
    const wanted = new Map<string, Set<string>>();
    const portNames = new Map<string, string>();
    for (const s of table.services) {
      // A ServiceEntry's endpoints are in the table itself (or are the host's DNS name).
      if (s.external || !s.host.endsWith(suffix)) continue;
      const [name, ns] = s.host.slice(0, -suffix.length).split('.');
      if (!name || !ns) continue;
      (wanted.get(ns) ?? wanted.set(ns, new Set()).get(ns)!).add(name);
      s.ports.forEach((p, i) => portNames.set(`${s.host}:${p}`, s.portNames?.[i] ?? ''));
    }
    this.portNames = portNames;
    this.cache.clear();
    this.version++;
    for (const [ns, st] of this.namespaces) {
      const names = [...(wanted.get(ns) ?? [])].sort();
      if (names.join(',') !== st.services.join(',')) { st.stop(); this.namespaces.delete(ns); }
    }
    for (const [ns, names] of wanted) if (!this.namespaces.has(ns)) this.follow(ns, [...names].sort());
  }

  get(host: string, port: number): readonly Endpoint[] | undefined {
    const key = `${host}:${port}`;
    const hit = this.cache.get(key);
    if (hit) return hit;
    const suffix = `.svc.${this.clusterDomain}`;
    if (!host.endsWith(suffix)) return undefined;
    const [name, ns] = host.slice(0, -suffix.length).split('.');
    const st = this.namespaces.get(ns);
    const portName = this.portNames.get(key);
    if (!st?.synced || portName === undefined) return undefined;
    const seen = new Set<string>();
    const out: Endpoint[] = [];
    for (const s of st.slices.values()) {
      if (s.metadata?.labels?.[SERVICE_NAME_LABEL] !== name) continue;
      if (s.addressType !== undefined && s.addressType !== 'IPv4' && s.addressType !== 'IPv6') continue;
      const sp = (s.ports ?? []).find((p) => (p.name ?? '') === portName && (p.protocol ?? 'TCP') === 'TCP');
      if (!sp || !Number.isInteger(sp.port) || sp.port! < 1 || sp.port! > 65535) continue;
      for (const e of s.endpoints ?? []) {
        const address = e.addresses?.[0];
        if (typeof address !== 'string' || !ADDRESS.test(address)) continue;
        const k = `${address}:${sp.port}`;
        if (seen.has(k)) continue;
        seen.add(k);
        const c = e.conditions ?? {};
        // ready: nil means ready (the API's rule); a terminating pod is never ready.
        out.push({ address, port: sp.port!, ready: c.ready !== false && c.terminating !== true, terminating: c.terminating === true });
      }
    }
    out.sort((a, b) => (a.address < b.address ? -1 : a.address > b.address ? 1 : a.port - b.port));
    this.cache.set(key, out);
    return out;
  }

  /** List and watch one namespace's slices of `services`, for as long as it is followed. */
  private follow(ns: string, services: string[]): void {
    const st = { services, slices: new Map<string, Slice>(), synced: false, stop: () => {} };
    this.namespaces.set(ns, st);
    let stopped = false;
    let req: { destroy(): void } | undefined;
    let timer: NodeJS.Timeout | undefined;
    let backoff = 500;
    st.stop = () => { stopped = true; req?.destroy(); if (timer) clearTimeout(timer); };
    const selector = encodeURIComponent(`${SERVICE_NAME_LABEL} in (${services.join(',')})`);
    const again = (fn: () => void, why: string, extra: Record<string, unknown> = {}) => {
      if (stopped || this.closed) return;
      this.opts.log('warn', `endpointslices of namespace ${ns}: ${why}; trying again in ${backoff} ms`, extra);
      timer = setTimeout(fn, backoff);
      timer.unref();
      backoff = Math.min(backoff * 2, 30_000);
    };
    const list = () => {
      if (stopped || this.closed) return;
      req = this.call(`${this.base(ns)}?labelSelector=${selector}`, (status, body) => {
        if (status === 404 && this.apiVersion === 'v1') { this.apiVersion = 'v1beta1'; list(); return; }
        if (status !== 200) { again(list, `list answered ${status}`, { body: body.slice(0, 300) }); return; }
        let parsed: { metadata?: { resourceVersion?: string }; items?: Slice[] };
        try { parsed = JSON.parse(body); } catch { again(list, 'list was not JSON'); return; }
        st.slices.clear();
        for (const s of parsed.items ?? []) if (s.metadata?.name) st.slices.set(s.metadata.name, s);
        st.synced = true;
        backoff = 500;
        this.changed();
        watch(parsed.metadata?.resourceVersion ?? '');
      }, (err) => again(list, `list failed (${err.message})`));
    };
    const watch = (rv: string) => {
      if (stopped || this.closed) return;
      let last = rv;
      let relist = false;
      req = this.stream(`${this.base(ns)}?labelSelector=${selector}&watch=1&allowWatchBookmarks=true&resourceVersion=${encodeURIComponent(rv)}&timeoutSeconds=300`, (line) => {
        let ev: { type?: string; object?: Slice & { code?: number } };
        try { ev = JSON.parse(line); } catch { return; }
        const o = ev.object;
        if (ev.type === 'ERROR') { relist = relist || o?.code === 410; return; }
        if (!o?.metadata) return;
        if (o.metadata.resourceVersion) last = o.metadata.resourceVersion;
        if (ev.type === 'BOOKMARK' || !o.metadata.name) return;
        if (ev.type === 'DELETED') st.slices.delete(o.metadata.name);
        else st.slices.set(o.metadata.name, o);
        this.changed();
      }, (status) => {
        if (stopped || this.closed) return;
        if (status === 410 || relist) { list(); return; }
        if (status !== 200) { again(() => watch(last), `watch answered ${status}`); return; }
        watch(last); // the server ended the watch (timeoutSeconds): resume where it was
      }, (err) => again(() => watch(last), `watch failed (${err.message})`));
    };
    list();
  }

  private changed(): void {
    this.cache.clear();
    this.version++;
    this.opts.onChange?.();
  }

  private base(ns: string): string {
    return `/apis/discovery.k8s.io/${this.apiVersion}/namespaces/${encodeURIComponent(ns)}/endpointslices`;
  }

  private request(path: string) {
    const u = new URL(path, this.opts.server);
    const token = readFileSync(this.opts.tokenFile, 'utf8').trim();
    return https.request({
      host: u.hostname, port: u.port || 443, path: u.pathname + u.search, method: 'GET', ca: this.ca,
      headers: { authorization: `Bearer ${token}`, accept: 'application/json' }, timeout: 30_000,
    });
  }

  /** A GET whose whole body (at most MAX_LINE_BYTES) comes to `done`. */
  private call(path: string, done: (status: number, body: string) => void, fail: (e: Error) => void): { destroy(): void } {
    let r: ReturnType<KubernetesEndpoints['request']>;
    try { r = this.request(path); } catch (e) { fail(e as Error); return { destroy() {} }; }
    r.on('response', (res) => {
      const chunks: Buffer[] = [];
      let n = 0;
      res.on('data', (c: Buffer) => { n += c.length; if (n > MAX_LINE_BYTES) { res.destroy(); fail(new Error('answer too large')); return; } chunks.push(c); });
      res.on('end', () => done(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')));
      res.on('error', fail);
    });
    r.on('timeout', () => r.destroy(new Error('timed out')));
    r.on('error', fail);
    r.end();
    return r;
  }

  /** A watch: each newline-ended JSON event to `line`, then `end` with the status. */
  private stream(path: string, line: (l: string) => void, end: (status: number) => void, fail: (e: Error) => void): { destroy(): void } {
    let r: ReturnType<KubernetesEndpoints['request']>;
    try { r = this.request(path); } catch (e) { fail(e as Error); return { destroy() {} }; }
    let failed = false;
    const onFail = (e: Error) => { if (!failed) { failed = true; fail(e); } };
    r.on('response', (res) => {
      r.setTimeout(0);
      if (res.statusCode !== 200) { res.resume(); res.on('end', () => end(res.statusCode ?? 0)); return; }
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        buf += c;
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) { const l = buf.slice(0, i); buf = buf.slice(i + 1); if (l.trim()) line(l); }
        if (buf.length > MAX_LINE_BYTES) { res.destroy(); onFail(new Error('watch event too large')); }
      });
      res.on('end', () => { if (!failed) end(200); });
      res.on('error', onFail);
    });
    r.on('timeout', () => r.destroy(new Error('timed out')));
    r.on('error', onFail);
    r.end();
    return r;
  }

  close(): void {
    this.closed = true;
    for (const st of this.namespaces.values()) st.stop();
  }
}
