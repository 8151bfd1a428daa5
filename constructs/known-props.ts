// Unknown props are refused at run time: TypeScript reports a misspelt key, JavaScript
// (and `as any`) users would otherwise lose it silently (`tcp: [...]` beside `http` in a
// route). The known paths come from the props interfaces (prop-paths.generated.ts).
import { MeshRefusals, MeshValidationError } from '../model';
import { PROP_PATHS } from './prop-paths.generated';

const isPlain = (v: unknown): v is Record<string, unknown> => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

/** Edit distance with adjacent transpositions (optimal string alignment), for "did you mean". */
function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The nearest of `names` to `key`, when it is near enough to be what was meant. */
export function nearest(key: string, names: readonly string[]): string | undefined {
  const scored = names.map((n) => ({ n, d: distance(key.toLowerCase(), n.toLowerCase()) })).sort((x, y) => x.d - y.d);
  const best = scored[0];
  return best && best.d <= Math.max(1, Math.floor(key.length / 3)) ? best.n : undefined;
}

/**
 * Istio fields the model does not carry, with why and what to use instead: said in place of
 * "a prop that ... declares", since the user wrote something Istio knows.
 */
const NOT_MODELLED: Readonly<Record<string, string>> = {
  'TrafficRouteProps.tcp': NOT_L4('tcp', 'a TCP connection names no host to route on'),
  'TrafficRouteProps.tls': NOT_L4('tls', 'a TLS connection names its host only in the SNI of a handshake the proxy does not terminate'),
};
function NOT_L4(key: string, detail: string): string {
  return `no ${key} routes: the model routes HTTP only, so no data plane gets them. The node sidecar could not carry them either: it sees only the clients that use it as a proxy (HTTP_PROXY, HTTPS_PROXY), with no transparent interception, and ${detail}. `
    + 'Instead: a ServiceEntry with the port and its addresses (clients that use HTTPS_PROXY reach it through a CONNECT tunnel, under the outbound policy), a Kubernetes Service (kube-proxy balances the connections), '
    + `or DataPlane.ISTIO with the VirtualService's ${key} section written as an ApiObject`;
}

/** For each declared path: the paths, and the prefixes followed by "[]", "{}" or "." in some path. */
interface PathIndex { paths: Set<string>; arrays: Set<string>; records: Set<string>; parents: Set<string> }
const INDEXES = new Map<string, PathIndex>();
// Built once per interface: every construct checks its props, so the walk must not scan the
// whole path list at each level (it did: 3% of synth at 3,000 services).
function indexOf(iface: string, known: readonly string[]): PathIndex {
  let index = INDEXES.get(iface);
  if (index) return index;
  index = { paths: new Set(known), arrays: new Set(), records: new Set(), parents: new Set() };
  for (const p of known) {
    for (let i = 0; i < p.length; i++) {
      if (p.startsWith('[]', i)) index.arrays.add(p.slice(0, i));
      else if (p.startsWith('{}', i)) index.records.add(p.slice(0, i));
      else if (p[i] === '.') index.parents.add(p.slice(0, i));
    }
  }
  INDEXES.set(iface, index);
  return index;
}

/**
 * Refuse keys of `props` that its interface does not declare, at any depth of plain
 * objects and arrays, each with the construct path, the field and the nearest valid name.
 * Values that are not plain objects (constructs, Durations, service references) and
 * records (labels, env, header maps: the user's keys) are not looked into.
 */
export function refuseUnknownProps(where: string, iface: string, props: unknown): void {
  const known = PROP_PATHS[iface];
  if (!known) throw new Error(`cdk8s-mesh: no prop paths for ${iface} (npm run docs:props)`);
  const { paths, arrays, records, parents } = indexOf(iface, known);
  const childrenOf = (parent: string) => [...new Set(known
    .filter((p) => (parent ? p.startsWith(`${parent}.`) : true))
    .map((p) => (parent ? p.slice(parent.length + 1) : p).split(/[.[{]/)[0])
    .filter(Boolean))];
  const problems: MeshValidationError[] = [];
  const walk = (value: unknown, decl: string, field: string) => {
    if (Array.isArray(value)) {
      if (arrays.has(decl)) value.forEach((v, i) => walk(v, `${decl}[]`, `${field}[${i}]`));
      return;
    }
    if (!isPlain(value)) return;
    const record = records.has(decl);
    if (decl && !record && !parents.has(decl)) return; // a leaf: its own checks read it
    for (const [key, v] of Object.entries(value)) {
      const f = field ? `${field}.${key}` : key;
      if (record) { walk(v, `${decl}{}`, f); continue; }
      const d = decl ? `${decl}.${key}` : key;
      if (!paths.has(d)) {
        if (v === undefined) continue; // an optional prop spread as undefined changes nothing
        const names = childrenOf(decl);
        const guess = nearest(key, names);
        const known = NOT_MODELLED[`${iface}.${d}`];
        problems.push(new MeshValidationError(where, f, v, known ?? `a prop that ${iface}${decl ? ` (at ${decl})` : ''} declares${guess ? `: did you mean "${guess}"?` : ''} (${names.join(', ')})`));
        continue;
      }
      walk(v, d, f);
    }
  };
  walk(props, '', '');
  if (problems.length === 1) throw problems[0];
  if (problems.length > 1) throw new MeshRefusals(problems.map((p) => p.message), where);
}
