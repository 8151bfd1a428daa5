// Loading a route table: JSON, then the shared JSON Schema (ajv), then the
// cross-field rules, then compiled into lookups the request path uses.
import type { ValidateFunction } from 'ajv';
import { BlockList, isIP } from 'node:net';
import { RE2JS } from 're2js';
import {
  ROUTE_TABLE_SCHEMA, RouteTable, RtHeaderMatch, RtMatch, RtRoute, RtStringMatch, RtVirtualHost,
} from '../../model/route-table';
import { DATA_PLANE_HEADERS, hostHeaderProblems } from '../../model/host-header';
import { Picker, PickStrategy, newPicker } from './balancer';

export { hostCandidates } from '../../model/service-ref';

/** A route table that cannot be used; the message says where and why. */
export class ConfigError extends Error {}

/** The bundle (build.ts) carries a validator ajv generated ahead of time; sources compile the schema now. */
function loadValidator(): ValidateFunction<RouteTable> {
  let v: ValidateFunction<RouteTable>;
  // An if/else on a constant, so that esbuild drops the branch it does not take.
  if (process.env.MESH_PRECOMPILED_VALIDATOR === 'true') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    v = require('./generated/route-table-validator.js') as ValidateFunction<RouteTable>;
  } else {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const Ajv = require('ajv').default as typeof import('ajv').default;
    v = new Ajv({ allErrors: true, strict: true }).compile<RouteTable>(ROUTE_TABLE_SCHEMA);
  }
  return v;
}
const validate = loadValidator();

function compileRegex(pattern: string, ignoreCase: boolean): RE2JS {
  return RE2JS.compile(pattern, ignoreCase ? RE2JS.CASE_INSENSITIVE : 0);
}

/** Parse and validate; throws ConfigError naming the file and the JSON path. */
export function parseRouteTable(text: string, source: string): RouteTable {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${source}: not valid JSON (${(e as Error).message})`);
  }
  if (!validate(data)) {
    const errs = (validate.errors ?? []).slice(0, 5).map((e) => `${e.instancePath || '/'} ${e.message}${e.params && 'allowedValues' in e.params ? ` (${(e.params.allowedValues as unknown[]).join(', ')})` : ''}`);
    throw new ConfigError(`${source}: does not match the route table schema: ${errs.join('; ')}`);
  }
  data.virtualHosts.forEach((vh, i) => vh.routes.forEach((r, j) => {
    const where = `${source}: /virtualHosts/${i}/routes/${j}`;
    if ((r.destinations.length === 0) === (r.redirect === undefined)) throw new ConfigError(`${where}: needs destinations or a redirect (exactly one)`);
    if (r.destinations.length && r.destinations.every((d) => d.weight === 0)) throw new ConfigError(`${where}/destinations: all weights are 0; at least one must be above 0`);
    checkHostOps(r, where);
    r.match.forEach((m, k) => forEachStringMatch(m, (field, sm) => {
      if (sm.kind !== 'regex') return;
      try {
        compileRegex(sm.value, false);
      } catch {
        throw new ConfigError(`${where}/match/${k}/${field}: ${JSON.stringify(sm.value)} is not an RE2 regular expression`);
      }
    }));
  }));
  data.services.forEach((svc, i) => {
    const where = `${source}: /services/${i}`;
    if (svc.protocols && svc.protocols.length !== svc.ports.length) throw new ConfigError(`${where}/protocols: ${svc.protocols.length} protocols for ${svc.ports.length} ports; one per port`);
    if (svc.host.startsWith('*.') && !svc.external) throw new ConfigError(`${where}/host: ${svc.host} is a wildcard; only a ServiceEntry's host (with "external") may be`);
    (svc.external?.addresses ?? []).forEach((a, k) => {
      const [ip, bits] = a.split('/');
      const family = isIP(ip);
      if (!family || (bits !== undefined && Number(bits) > (family === 6 ? 128 : 32))) throw new ConfigError(`${where}/external/addresses/${k}: ${JSON.stringify(a)} is not an IP address or CIDR range`);
    });
    for (const port of Object.keys(svc.external?.endpoints ?? {})) {
      if (!svc.ports.includes(Number(port))) throw new ConfigError(`${where}/external/endpoints/${port}: not a port of ${svc.host} (${svc.ports.join(', ')})`);
    }
  });
  return data;
}

/** Istio's rules for Host in header operations (model/host-header.ts), for tables written by hand. */
function checkHostOps(r: RtRoute, where: string): void {
  for (const dir of ['request', 'response'] as const) {
    for (const op of ['set', 'add'] as const) {
      for (const name of Object.keys(r.headers?.[dir]?.[op] ?? {})) {
        if (DATA_PLANE_HEADERS.includes(name.toLowerCase())) throw new ConfigError(`${where}/headers/${dir}/${op}: ${name} is a framing or connection header; the proxy writes those itself`);
      }
    }
  }
  const [p] = hostHeaderProblems(r.headers, r.rewrite?.authority);
  if (p?.kind === 'removed') throw new ConfigError(`${where}/headers/request/remove: Host cannot be removed (change it with rewrite.authority)`);
  if (p?.kind === 'on-response') throw new ConfigError(`${where}/headers/response/${p.op}: a response has no Host header to change`);
  if (p?.kind === 'set-twice') throw new ConfigError(`${where}: Host is set ${p.count} times (rewrite.authority, headers.request set/add); at most once`);
}

function forEachStringMatch(m: RtMatch, f: (field: string, sm: RtHeaderMatch) => void): void {
  if (m.uri) f('uri', m.uri);
  if (m.method) f('method', m.method);
  for (const [k, v] of Object.entries(m.headers ?? {})) f(`headers/${k}`, v);
  for (const [k, v] of Object.entries(m.withoutHeaders ?? {})) f(`withoutHeaders/${k}`, v);
  for (const [k, v] of Object.entries(m.queryParams ?? {})) f(`queryParams/${k}`, v);
}

// ---------------------------------------------------------------------------
// Compiled form

export interface RequestView {
  readonly method: string;
  /** Path with query, as sent. */
  readonly path: string;
  readonly headers: NodeJS.Dict<string | string[]>;
  readonly port: number;
}

type Test = (v: string) => boolean;

function stringTest(m: RtStringMatch | RtHeaderMatch, ignoreCase = false): Test {
  const value = ignoreCase ? m.value.toLowerCase() : m.value;
  switch (m.kind) {
    case 'exact': return ignoreCase ? (v) => v.toLowerCase() === value : (v) => v === value;
    case 'prefix': return ignoreCase ? (v) => v.toLowerCase().startsWith(value) : (v) => v.startsWith(value);
    case 'present': return () => true;
    case 'regex': {
      // Envoy's safe_regex is RE2 and must match the whole value.
      const re = compileRegex(m.value, ignoreCase);
      return (v) => re.matches(v);
    }
  }
}

function headerValue(h: string | string[] | undefined): string | undefined {
  return Array.isArray(h) ? h.join(',') : h;
}

export interface CompiledRoute {
  readonly route: RtRoute;
  /** The URI match that selected it (for prefix rewrites), per match block. */
  readonly matches: ReadonlyArray<{ test: (r: RequestView, path: string) => boolean; uri?: RtStringMatch }>;
  readonly picker?: Picker;
}

export interface CompiledVirtualHost {
  readonly vh: RtVirtualHost;
  readonly routes: readonly CompiledRoute[];
}

function compileMatch(m: RtMatch): CompiledRoute['matches'][number] {
  const tests: Array<(r: RequestView, path: string) => boolean> = [];
  if (m.uri) {
    const t = stringTest(m.uri, m.ignoreUriCase === true);
    tests.push((_, path) => t(path));
  }
  if (m.method) {
    const t = stringTest(m.method);
    tests.push((r) => t(r.method));
  }
  // Header names are case-insensitive and Node lower-cases them: so are the table's keys
  // (a hand-written `End-User` would otherwise never match).
  for (const [key, hm] of Object.entries(m.headers ?? {})) {
    const name = key.toLowerCase();
    const t = stringTest(hm);
    tests.push((r) => { const v = headerValue(r.headers[name]); return v !== undefined && t(v); });
  }
  for (const [key, hm] of Object.entries(m.withoutHeaders ?? {})) {
    const name = key.toLowerCase();
    const t = stringTest(hm);
    tests.push((r) => { const v = headerValue(r.headers[name]); return v === undefined || !t(v); });
  }
  const qp = Object.entries(m.queryParams ?? {}).map(([k, sm]) => [k, stringTest(sm)] as const);
  if (qp.length) {
    tests.push((r) => {
      const q = r.path.indexOf('?');
      if (q < 0) return false;
      const params = rawQuery(r.path.slice(q + 1));
      return qp.every(([k, t]) => { const v = params.get(k); return v !== undefined && t(v); });
    });
  }
  if (m.port !== undefined) {
    const port = m.port;
    tests.push((r) => r.port === port);
  }
  return { test: (r, path) => tests.every((t) => t(r, path)), uri: m.uri };
}

/**
 * Query parameters as Envoy's route matching reads them (parseQueryString): split on `&`
 * and the first `=`, nothing percent-decoded, the first value of a repeated key.
 */
export function rawQuery(query: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const pair of query.split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const key = eq < 0 ? pair : pair.slice(0, eq);
    if (!out.has(key)) out.set(key, eq < 0 ? '' : pair.slice(eq + 1));
  }
  return out;
}

/**
 * A virtual host whose matchers and pickers are built on its first request: a table of
 * 1,000 hosts of which a pod calls a few costs memory for those few only. (Regexes were
 * already compiled once by parseRouteTable, so nothing can fail later.)
 */
function compileVirtualHost(vh: RtVirtualHost, strategy: PickStrategy): CompiledVirtualHost {
  let routes: CompiledRoute[] | undefined;
  return {
    vh,
    get routes() {
      routes ??= vh.routes.map((route) => ({
        route,
        matches: route.match.map(compileMatch),
        picker: route.destinations.length ? newPicker(route.destinations.map((d) => d.weight), strategy) : undefined,
      }));
      return routes;
    },
  };
}

/** Host lookup as Envoy does it: exact name, then the longest `*.suffix`, then `*`. */
export class HostIndex<T> {
  private readonly exact = new Map<string, T>();
  /** `*.suffix` patterns by suffix (`.example.com`): the first added wins, as for exact names. */
  private readonly suffixes = new Map<string, T>();
  private any?: T;

  add(pattern: string, value: T): void {
    const p = pattern.toLowerCase();
    if (p === '*') this.any ??= value;
    else if (p.startsWith('*.')) { const s = p.slice(1); if (!this.suffixes.has(s)) this.suffixes.set(s, value); }
    else if (!this.exact.has(p)) this.exact.set(p, value);
  }

  /**
   * The longest suffix first: each `.label` suffix of the host is looked up, longest
   * first (a host has a few labels; a table may have thousands of wildcards). Adding is O(1),
   * so a table of n hosts indexes in O(n), with no sort per insertion.
   */
  get(host: string): T | undefined {
    const e = this.exact.get(host);
    if (e !== undefined) return e;
    if (this.suffixes.size) {
      // `*.example.com` matches `a.example.com` and `a.b.example.com`, never `example.com`.
      for (let i = host.indexOf('.', 1); i > 0; i = host.indexOf('.', i + 1)) {
        const v = this.suffixes.get(host.slice(i));
        if (v !== undefined) return v;
      }
    }
    return this.any;
  }
}

/** Which rules this proxy applies: a pod's sidecar ("mesh") or the gateways its pods serve. */
export type Binding = { readonly kind: 'mesh' } | { readonly kind: 'gateway'; readonly names: readonly string[] };

export interface CompiledTable {
  readonly table: RouteTable;
  /** Sidecar mode: the virtual hosts bound to `mesh`. */
  readonly hosts: HostIndex<CompiledVirtualHost>;
  /** Gateway mode: per Gateway (`namespace/name`), the virtual hosts bound to it, so a listener serves only its own Gateway's. */
  readonly gateways: ReadonlyMap<string, HostIndex<CompiledVirtualHost>>;
  /** Known Service hosts (fully qualified) and ServiceEntry hosts this proxy sees, and their ports. */
  readonly services: ReadonlyMap<string, readonly number[]>;
  /** ServiceEntry wildcard hosts and addresses this proxy sees: requests to a name or IP under them are admitted on their ports. */
  readonly externals: readonly ExternalMatch[];
}

/** A ServiceEntry's wildcard hosts (`.example.com` suffixes) and addresses, for REGISTRY_ONLY admission. */
export interface ExternalMatch {
  readonly entry: string;
  readonly suffixes: readonly string[];
  readonly addresses?: BlockList;
  readonly ports: readonly number[];
}

/** The ServiceEntry host or address range that admits `host:port`, if any (exact hosts are in `services`). */
export function externalFor(externals: readonly ExternalMatch[], host: string, port: number): string | undefined {
  for (const x of externals) {
    if (!x.ports.includes(port)) continue;
    if (x.suffixes.some((s) => host.endsWith(s) && host.length > s.length)) return x.entry;
    if (x.addresses && isIP(host) && x.addresses.check(host, isIP(host) === 6 ? 'ipv6' : 'ipv4')) return x.entry;
  }
  return undefined;
}

/** `namespace`: a ServiceEntry exported to other namespaces only is left out. @default - every entry */
export function compileTable(table: RouteTable, binding: Binding, strategy: PickStrategy, namespace?: string): CompiledTable {
  const hosts = new HostIndex<CompiledVirtualHost>();
  const gateways = new Map<string, HostIndex<CompiledVirtualHost>>();
  if (binding.kind === 'gateway') for (const n of binding.names) gateways.set(n, new HostIndex());
  for (const vh of table.virtualHosts) {
    const indexes = binding.kind === 'mesh'
      ? (vh.gateways.includes('mesh') ? [hosts] : [])
      : vh.gateways.flatMap((g) => gateways.get(g) ?? []);
    if (!indexes.length) continue;
    const compiled = compileVirtualHost(vh, strategy);
    for (const index of indexes) for (const h of vh.hosts) index.add(h, compiled);
  }
  const seen = table.services.filter((s) => !s.external?.exportTo || namespace === undefined || s.external.exportTo.includes(namespace));
  const externals: ExternalMatch[] = [];
  for (const s of seen) {
    const x = s.external;
    if (!x || (!s.host.startsWith('*.') && !x.addresses?.length)) continue;
    let addresses: BlockList | undefined;
    for (const a of x.addresses ?? []) {
      addresses ??= new BlockList();
      const [ip, bits] = a.split('/');
      const type = isIP(ip) === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) addresses.addAddress(ip, type);
      else addresses.addSubnet(ip, Number(bits), type);
    }
    externals.push({ entry: s.host, suffixes: s.host.startsWith('*.') ? [s.host.slice(1).toLowerCase()] : [], ...(addresses ? { addresses } : {}), ports: s.ports });
  }
  return {
    table, hosts, gateways, externals,
    services: new Map(seen.filter((s) => !s.host.startsWith('*.')).map((s) => [s.host.toLowerCase(), s.ports])),
  };
}

/** The first route whose match holds, with the match block that held. */
export function selectRoute(vh: CompiledVirtualHost, req: RequestView): { route: CompiledRoute; uri?: RtStringMatch } | undefined {
  const q = req.path.indexOf('?');
  const path = q < 0 ? req.path : req.path.slice(0, q);
  for (const r of vh.routes) {
    if (r.matches.length === 0) return { route: r };
    for (const m of r.matches) if (m.test(req, path)) return { route: r, uri: m.uri };
  }
  return undefined;
}
