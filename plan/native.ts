// The rules of a node-sidecar or Gateway API chart read back from its own YAML as the
// Istio objects they stand for, so that `plan --diff` compares (and gates) charts on every
// data plane, also when the base is only YAML (a directory, or a git ref's synth). The
// node sidecar's route table (ConfigMap mesh-routes) and the HTTPRoutes carry the rules;
// per-version Services (labels mesh.cdk8s.io/subset-of, mesh.cdk8s.io/subset) are read
// back as subsets. Istio objects pass through. Plain data in, plain data out.
import type { K8s, Manifest } from '../lint/analyze';
import { Duration } from '../model/duration';
import type { RouteTable, RtGatewayServer, RtHeaderMatch, RtRoute, RtStringMatch, RtUpstream } from '../model/route-table';

const SUBSET_OF = 'mesh.cdk8s.io/subset-of';
const SUBSET = 'mesh.cdk8s.io/subset';
const nsOf = (o: K8s) => o.metadata.namespace ?? 'default';

/**
 * Per-version Service host (`reviews-v1.ns.svc.<domain>`, or `reviews-v1` in `ns`) -> its
 * Service and subset; the port is left out when it is the Service's only one (the renderers
 * write it, the model need not name it).
 */
function subsetIndex(manifests: readonly Manifest[]): (host: string, ns: string, port?: number) => { host: string; subset?: string; port?: number } {
  const by = new Map<string, { service: string; subset: string }>();
  const ports = new Map<string, number[]>();
  for (const { obj } of manifests) {
    if (obj.kind !== 'Service') continue;
    const l = obj.metadata.labels ?? {};
    const key = `${obj.metadata.name}.${nsOf(obj)}`;
    ports.set(key, (obj.spec?.ports ?? []).map((p: { port: number }) => p.port));
    if (l[SUBSET_OF] && l[SUBSET]) by.set(key, { service: l[SUBSET_OF], subset: l[SUBSET] });
  }
  return (host, ns, port) => {
    const [name, hostNs = ns, ...rest] = host.split('.');
    const key = `${name}.${hostNs}`;
    const only = ports.get(key)?.length === 1 && ports.get(key)![0] === port;
    const s = by.get(key);
    return { host: s ? [s.service, hostNs, ...rest].join('.') : host, ...(s ? { subset: s.subset } : {}), ...(port !== undefined && !only ? { port } : {}) };
  };
}

/** The Istio objects a manifest set stands for: its own Istio objects, plus its route table's and HTTPRoutes' rules as VirtualServices. */
export function istioFormOf(manifests: readonly Manifest[]): Manifest[] {
  const subset = subsetIndex(manifests);
  const native = (m: Manifest) => isRouteTable(m.obj) || /^gateway\.networking\.k8s\.io\//.test(m.obj.apiVersion);
  const tables = manifests.filter((m) => isRouteTable(m.obj));
  // Every namespace's ConfigMap holds the chart's whole table: read one.
  const fromTable = tables.length ? tableObjects(tables[0], subset) : [];
  const fromRoutes = manifests.filter((m) => m.obj.kind === 'HTTPRoute' && /^gateway\.networking\.k8s\.io\//.test(m.obj.apiVersion))
    .map((m) => ({ obj: httpRouteToVirtualService(m.obj, subset), path: m.path }));
  return [...manifests.filter((m) => !native(m)), ...fromTable, ...fromRoutes];
}

function isRouteTable(o: K8s): boolean {
  return o.kind === 'ConfigMap' && o.metadata.labels?.['mesh.cdk8s.io/route-table'] !== undefined;
}

const stringMatch = (m: RtStringMatch | RtHeaderMatch) => (m.kind === 'present' ? {} : { [m.kind]: m.value });
const matchMap = (map: Readonly<Record<string, RtStringMatch | RtHeaderMatch>> | undefined) =>
  map && Object.keys(map).length ? Object.fromEntries(Object.entries(map).map(([k, v]) => [k, stringMatch(v)])) : undefined;
const seconds = (ms: number) => `${ms / 1000}s`;
/** A Gateway API duration ("2ms", "1m30s") in Istio's form ("0.002s"), as the model renders it. */
const istioDuration = (d: string | undefined) => {
  if (d === undefined) return undefined;
  try { return Duration.parse(d).toIstio(); } catch { return d; }
};
const compact = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));

function tableObjects(m: Manifest, subset: ReturnType<typeof subsetIndex>): Manifest[] {
  let table: RouteTable;
  try {
    table = JSON.parse(String(Object.values(m.obj.data ?? {})[0] ?? ''));
  } catch {
    return []; // not JSON: no rules to compare (the proxy would refuse it too)
  }
  if (!Array.isArray(table?.virtualHosts) || !Array.isArray(table.gateways)) return [];
  const vss = table.virtualHosts.map((vh) => {
    const [ns, name] = vh.name.includes('/') ? vh.name.split('/') : ['default', vh.name];
    const dest = (u: RtUpstream) => {
      const s = subset(u.host, ns, u.port);
      return compact({ host: s.host, subset: s.subset, port: s.port === undefined ? undefined : { number: s.port } });
    };
    const gateways = vh.gateways.filter((g: string) => g !== 'mesh');
    const obj: K8s = {
      apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name, namespace: ns },
      spec: compact({
        hosts: [...vh.hosts],
        gateways: gateways.length ? [...vh.gateways] : undefined,
        http: vh.routes.map((r: RtRoute) => compact({
          name: r.name,
          match: r.match.length ? r.match.map((x) => compact({
            uri: x.uri && stringMatch(x.uri), method: x.method && stringMatch(x.method), headers: matchMap(x.headers),
            withoutHeaders: matchMap(x.withoutHeaders), queryParams: matchMap(x.queryParams), port: x.port, ignoreUriCase: x.ignoreUriCase,
          })) : undefined,
          route: r.destinations.length ? r.destinations.map((d) => ({ destination: dest(d), weight: d.weight })) : undefined,
          redirect: r.redirect && compact({ uri: r.redirect.uri, authority: r.redirect.authority, port: r.redirect.port, scheme: r.redirect.scheme, redirectCode: r.redirect.code }),
          rewrite: r.rewrite,
          timeout: r.timeoutMs === undefined ? undefined : seconds(r.timeoutMs),
          retries: r.retries && compact({ attempts: r.retries.attempts, perTryTimeout: r.retries.perTryTimeoutMs === undefined ? undefined : seconds(r.retries.perTryTimeoutMs), retryOn: r.retries.retryOn.join(',') }),
          fault: r.fault && compact({
            delay: r.fault.delay && { fixedDelay: seconds(r.fault.delay.fixedDelayMs), percentage: { value: r.fault.delay.percentage } },
            abort: r.fault.abort && { httpStatus: r.fault.abort.httpStatus, percentage: { value: r.fault.abort.percentage } },
          }),
          mirror: r.mirror && dest(r.mirror),
          mirrorPercentage: r.mirror && { value: r.mirror.percentage },
          headers: r.headers,
        })),
      }),
    };
    return { obj, path: m.path };
  });
  const gws = table.gateways.map((g) => {
    const [ns, name] = g.name.split('/');
    const obj: K8s = {
      apiVersion: 'networking.istio.io/v1', kind: 'Gateway', metadata: { name, namespace: ns },
      spec: { servers: g.servers.map((s: RtGatewayServer) => ({ port: { number: s.port, name: `${s.protocol.toLowerCase()}-${s.port}`, protocol: s.protocol }, hosts: [...s.hosts] })) },
    };
    return { obj, path: m.path };
  });
  return [...vss, ...gws];
}

/** One HTTPRoute as the VirtualService it stands for (GAMMA: the Services are the hosts; else the Gateways bind its hostnames). */
function httpRouteToVirtualService(o: K8s, subset: ReturnType<typeof subsetIndex>): K8s {
  const ns = nsOf(o);
  const parents: Array<{ kind?: string; name: string; namespace?: string }> = o.spec?.parentRefs ?? [];
  const services = parents.filter((p) => p.kind === 'Service');
  const gateways = parents.filter((p) => p.kind !== 'Service').map((p) => `${p.namespace ?? ns}/${p.name}`);
  const hosts = services.length ? services.map((p) => `${p.name}.${p.namespace ?? ns}.svc.cluster.local`) : (o.spec?.hostnames ?? ['*']);
  const backend = (b: { name: string; namespace?: string; port?: number }) => {
    const s = subset(`${b.name}.${b.namespace ?? ns}.svc.cluster.local`, ns, b.port);
    return compact({ host: s.host, subset: s.subset, port: s.port === undefined ? undefined : { number: s.port } });
  };
  const value = (m: { type?: string; value: string }) => (m.type === 'RegularExpression' ? { regex: m.value } : { exact: m.value });
  const named = (list: Array<{ type?: string; name: string; value: string }> | undefined) =>
    list?.length ? Object.fromEntries(list.map((h) => [h.name, value(h)])) : undefined;
  const headerOps = (h: { set?: Array<{ name: string; value: string }>; add?: Array<{ name: string; value: string }>; remove?: string[] } | undefined) => h && compact({
    set: h.set && Object.fromEntries(h.set.map((x) => [x.name, x.value])), add: h.add && Object.fromEntries(h.add.map((x) => [x.name, x.value])), remove: h.remove,
  });
  const http = (o.spec?.rules ?? []).map((r: any) => {
    const f = (type: string) => (r.filters ?? []).find((x: { type: string }) => x.type === type);
    const mirror = f('RequestMirror')?.requestMirror;
    const redirect = f('RequestRedirect')?.requestRedirect;
    const rewrite = f('URLRewrite')?.urlRewrite;
    const refs: any[] = r.backendRefs ?? [];
    return compact({
      match: r.matches?.length ? r.matches.map((m: any) => compact({
        uri: m.path && (m.path.type === 'PathPrefix' ? { prefix: m.path.value } : m.path.type === 'RegularExpression' ? { regex: m.path.value } : { exact: m.path.value }),
        method: m.method && { exact: m.method },
        headers: named(m.headers),
        queryParams: named(m.queryParams),
      })) : undefined,
      route: refs.length ? refs.map((b) => compact({ destination: backend(b), weight: refs.length > 1 ? b.weight ?? 1 : undefined })) : undefined,
      redirect: redirect && compact({ scheme: redirect.scheme, authority: redirect.hostname, uri: redirect.path?.replaceFullPath, port: redirect.port, redirectCode: redirect.statusCode }),
      rewrite: rewrite && compact({ uri: rewrite.path?.replacePrefixMatch ?? rewrite.path?.replaceFullPath, authority: rewrite.hostname }),
      timeout: istioDuration(r.timeouts?.request),
      retries: r.retry && compact({ attempts: r.retry.attempts, perTryTimeout: istioDuration(r.timeouts?.backendRequest), retryOn: r.retry.codes?.join(',') }),
      mirror: mirror && backend(mirror.backendRef),
      mirrorPercentage: mirror && { value: mirror.percent ?? 100 },
      headers: (f('RequestHeaderModifier') || f('ResponseHeaderModifier')) ? compact({
        request: headerOps(f('RequestHeaderModifier')?.requestHeaderModifier), response: headerOps(f('ResponseHeaderModifier')?.responseHeaderModifier),
      }) : undefined,
    });
  });
  return {
    apiVersion: 'networking.istio.io/v1', kind: 'VirtualService', metadata: { name: o.metadata.name, namespace: o.metadata.namespace },
    spec: compact({ hosts, gateways: gateways.length ? gateways : undefined, http }),
  };
}
