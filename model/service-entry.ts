// Services outside the cluster's registry (Istio's ServiceEntry): external APIs the mesh may
// call, with the protocols of their ports and where their endpoints are. Plain data.
import { Check } from './errors';
import { checkDns1123Label, checkLabelValue } from './names';

/** Istio's port protocols (the ones a ServiceEntry port may declare). */
export const SERVICE_ENTRY_PROTOCOLS = ['HTTP', 'HTTPS', 'HTTP2', 'GRPC', 'TCP', 'TLS', 'MONGO', 'REDIS', 'MYSQL'] as const;
export type ServiceEntryProtocol = typeof SERVICE_ENTRY_PROTOCOLS[number];
export type ServiceEntryLocation = 'MESH_EXTERNAL' | 'MESH_INTERNAL';
/** Istio's resolutions (DYNAMIC_DNS, new in 1.29, is not offered). */
export type ServiceEntryResolution = 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN';

/** One port of a ServiceEntry. */
export interface ServiceEntryPort {
  /** The port clients call. */
  readonly number: number;
  /** What it speaks; HTTPS and TLS are passed through encrypted. */
  readonly protocol: ServiceEntryProtocol;
  /** The port's name (a DNS-1123 label). @default - the protocol and number, e.g. "https-443" */
  readonly name?: string;
  /** The endpoints' port, when it differs (STATIC and DNS resolution). @default - number */
  readonly targetPort?: number;
}

/** One endpoint (Istio's WorkloadEntry inside a ServiceEntry). */
export interface ServiceEntryEndpoint {
  /** An IP address (STATIC) or a DNS name (DNS). */
  readonly address: string;
  /** Per port name, the endpoint's port. @default - the port's targetPort or number */
  readonly ports?: Readonly<Record<string, number>>;
  /** Labels subsets may select. @default - none */
  readonly labels?: Readonly<Record<string, string>>;
  /** Relative share of traffic among the endpoints. @default - equal */
  readonly weight?: number;
}

/** What a ServiceEntry declares, as its props take it. */
export interface ServiceEntrySpec {
  /** Host names (DNS names, or "*.example.com" wildcards; never "*"). */
  readonly hosts: string[];
  /** Virtual IPs or CIDR ranges for the hosts (TCP services without a host header). @default - none */
  readonly addresses?: string[];
  /** The ports and their protocols. */
  readonly ports: ServiceEntryPort[];
  /** Outside the mesh (no mTLS, no sidecar) or inside it. @default "MESH_EXTERNAL" */
  readonly location?: ServiceEntryLocation;
  /** How the proxy finds the endpoints: the address the client asked for (NONE), `endpoints` (STATIC), or DNS. @default "NONE" (Istio's default) */
  readonly resolution?: ServiceEntryResolution;
  /** Endpoints for STATIC (and optionally DNS) resolution. @default - none */
  readonly endpoints?: ServiceEntryEndpoint[];
  /** Namespaces that see the entry ("." this one, "*" all). @default - all (Istio's default) */
  readonly exportTo?: string[];
}

/** A validated ServiceEntry port: named, with its protocol. */
export interface ServiceEntryPortModel {
  readonly number: number;
  readonly protocol: ServiceEntryProtocol;
  readonly name: string;
  readonly targetPort?: number;
}

/** A validated ServiceEntry: every port named, defaults filled in. */
export interface ServiceEntryModel {
  readonly hosts: string[];
  readonly addresses: string[];
  readonly ports: ServiceEntryPortModel[];
  readonly location: ServiceEntryLocation;
  readonly resolution: ServiceEntryResolution;
  readonly endpoints: ServiceEntryEndpoint[];
  readonly exportTo?: string[];
}

// A DNS name with an optional leading "*." (Istio's ValidateWildcardDomain): labels of at most 63.
const DOMAIN = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const IPV6 = /^[0-9a-fA-F:]*:[0-9a-fA-F:.]*$/;

function isIp(s: string): boolean {
  return IPV4.test(s) || (IPV6.test(s) && s.split('::').length <= 2);
}
function isCidr(s: string): boolean {
  const [ip, bits, ...rest] = s.split('/');
  if (rest.length || bits === undefined || !/^\d{1,3}$/.test(bits)) return false;
  return isIp(ip) && Number(bits) <= (ip.includes(':') ? 128 : 32);
}

/** Whether `host` is covered by one of `patterns` (exact, or "*.suffix" for any deeper name). */
export function hostCovered(host: string, patterns: readonly string[]): boolean {
  const h = host.toLowerCase();
  return patterns.some((p) => p === h || (p.startsWith('*.') && h.endsWith(p.slice(1))));
}

/**
 * Check a ServiceEntry's props as Istio's validation does (pkg/config/validation
 * ValidateServiceEntry and the CRD's rules), naming the field and what is expected.
 */
export function buildServiceEntry(check: Check, spec: ServiceEntrySpec): ServiceEntryModel {
  check.array('hosts', spec.hosts, 1);
  if (spec.hosts.length > 256) check.fail('hosts', spec.hosts.length, 'at most 256 hosts');
  spec.hosts.forEach((h, i) => {
    if (h === '*') check.fail(`hosts[${i}]`, h, 'a host name or "*.domain" wildcard: a ServiceEntry cannot stand for every host');
    if (typeof h !== 'string' || h.length > 253 || !DOMAIN.test(h) || h.split('.').some((l) => l.length > 63)) {
      check.fail(`hosts[${i}]`, h, 'a lower-case DNS name, optionally with a leading "*." wildcard');
    }
  });
  if (new Set(spec.hosts).size !== spec.hosts.length) check.fail('hosts', spec.hosts, 'each host once');
  const resolution = spec.resolution ?? 'NONE';
  check.oneOf('resolution', resolution, ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN']);
  const location = spec.location ?? 'MESH_EXTERNAL';
  check.oneOf('location', location, ['MESH_EXTERNAL', 'MESH_INTERNAL']);
  const addresses = spec.addresses ?? [];
  check.array('addresses', addresses);
  addresses.forEach((a, i) => {
    if (typeof a !== 'string' || !(isIp(a) || isCidr(a))) check.fail(`addresses[${i}]`, a, 'an IP address or a CIDR range (10.0.0.0/8)');
    if (a.includes('/') && resolution !== 'NONE' && resolution !== 'STATIC') {
      check.fail(`addresses[${i}]`, a, `an IP address: CIDR ranges are allowed only with resolution NONE or STATIC (it is ${resolution})`);
    }
  });

  check.array('ports', spec.ports, 1);
  const names = new Set<string>();
  const numbers = new Set<number>();
  const ports = spec.ports.map((p, i) => {
    const f = `ports[${i}]`;
    check.object(f, p);
    check.shape(f, p, { number: 'number', protocol: 'string', name: 'string?', targetPort: 'number?' });
    check.port(`${f}.number`, p.number);
    check.oneOf(`${f}.protocol`, p.protocol, SERVICE_ENTRY_PROTOCOLS);
    const name = p.name ?? `${p.protocol.toLowerCase()}-${p.number}`;
    checkDns1123Label(check, `${f}.name`, name);
    if (p.targetPort !== undefined) check.port(`${f}.targetPort`, p.targetPort);
    if (names.has(name)) check.fail(`${f}.name`, name, 'a port name not used by another port of this entry');
    if (numbers.has(p.number)) check.fail(`${f}.number`, p.number, 'a port number not used by another port of this entry');
    names.add(name);
    numbers.add(p.number);
    return { number: p.number, protocol: p.protocol, name, ...(p.targetPort !== undefined ? { targetPort: p.targetPort } : {}) };
  });

  const endpoints = spec.endpoints ?? [];
  check.array('endpoints', endpoints);
  if (resolution === 'NONE' && endpoints.length) {
    check.fail('endpoints', endpoints.map((e) => e.address), 'no endpoints with resolution NONE (the proxy connects to the address the client asked for); use STATIC or DNS');
  }
  if (resolution === 'STATIC' && !endpoints.length) {
    check.fail('endpoints', endpoints, 'at least one endpoint: resolution STATIC connects only to the endpoints listed');
  }
  if (resolution === 'DNS_ROUND_ROBIN' && endpoints.length > 1) check.fail('endpoints', endpoints.length, 'at most one endpoint with resolution DNS_ROUND_ROBIN');
  if ((resolution === 'DNS' || resolution === 'DNS_ROUND_ROBIN') && !endpoints.length) {
    spec.hosts.forEach((h, i) => {
      if (h.startsWith('*.')) check.fail(`hosts[${i}]`, h, `a host name without wildcard: resolution ${resolution} with no endpoints resolves the hosts themselves (use NONE for a wildcard)`);
    });
  }
  endpoints.forEach((e, i) => {
    const f = `endpoints[${i}]`;
    check.object(f, e);
    check.shape(f, e, { address: 'string', ports: 'object?', labels: 'stringMap?', weight: 'number?' });
    if (resolution === 'STATIC' && !isIp(e.address)) check.fail(`${f}.address`, e.address, 'an IP address (resolution STATIC); a DNS name needs resolution DNS');
    if (!isIp(e.address) && !(DOMAIN.test(e.address) && !e.address.startsWith('*.'))) check.fail(`${f}.address`, e.address, 'an IP address or a DNS name');
    for (const [name, port] of Object.entries(e.ports ?? {})) {
      if (!names.has(name)) check.fail(`${f}.ports.${name}`, port, `a port name of this entry (${[...names].join(', ')})`);
      check.port(`${f}.ports.${name}`, port);
    }
    for (const [k, v] of Object.entries(e.labels ?? {})) checkLabelValue(check, `${f}.labels.${k}`, v);
    if (e.weight !== undefined) check.integer(`${f}.weight`, e.weight, 1, 4_294_967_295);
  });
  if (spec.exportTo !== undefined) {
    check.array('exportTo', spec.exportTo, 1);
    spec.exportTo.forEach((n, i) => {
      if (n !== '.' && n !== '*') checkDns1123Label(check, `exportTo[${i}]`, n);
    });
  }
  return {
    hosts: [...spec.hosts], addresses: [...addresses], ports, location, resolution,
    endpoints: endpoints.map((e) => ({ ...e, ...(e.ports ? { ports: { ...e.ports } } : {}), ...(e.labels ? { labels: { ...e.labels } } : {}) })),
    ...(spec.exportTo ? { exportTo: [...spec.exportTo] } : {}),
  };
}
