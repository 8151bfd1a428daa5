import { Check } from './errors';
import { checkDns1123Label, checkHost } from './names';

export type ServerProtocol = 'HTTP' | 'HTTPS' | 'HTTP2' | 'GRPC' | 'TCP' | 'TLS';
export const SERVER_PROTOCOLS: readonly ServerProtocol[] = ['HTTP', 'HTTPS', 'HTTP2', 'GRPC', 'TCP', 'TLS'];
export type ServerTlsMode = 'SIMPLE' | 'MUTUAL' | 'PASSTHROUGH' | 'ISTIO_MUTUAL';

/** TLS of a gateway server: SIMPLE (or MUTUAL) with the TLS Secret `credentialName`, or PASSTHROUGH. */
export interface ServerTls {
  readonly mode: ServerTlsMode;
  /** A TLS Secret in the gateway's namespace. @default - none (PASSTHROUGH, ISTIO_MUTUAL) */
  readonly credentialName?: string;
}

/** One listener of an ingress gateway (Istio's Gateway `servers[]`). */
export interface GatewayServer {
  /** Port the gateway listens on, e.g. 80. */
  readonly port: number;
  /** @default HTTP */
  readonly protocol?: ServerProtocol;
  /** Port name. @default - the protocol in lower case followed by the port, e.g. "http-80" */
  readonly name?: string;
  /** Hosts this server accepts, e.g. ["*"] or ["bookinfo.example.com"]. */
  readonly hosts: string[];
  /** For HTTPS/TLS servers: SIMPLE with a credentialName (a TLS Secret in the gateway's namespace). */
  readonly tls?: ServerTls;
  /** For HTTP servers: answer every request with a 301 to https. @default false */
  readonly httpsRedirect?: boolean;
}

/** A validated gateway listener. */
export interface GatewayServerModel {
  readonly port: number;
  readonly protocol: ServerProtocol;
  readonly name: string;
  readonly hosts: string[];
  readonly tls?: ServerTls;
  readonly httpsRedirect: boolean;
}

export function buildGatewayServers(where: string, servers: readonly GatewayServer[]): GatewayServerModel[] {
  const check: Check = new Check(where);
  check.array('servers', servers, 1);
  const seen = new Set<string>();
  return servers.map((s, i) => {
    const f = `servers[${i}]`;
    check.object(f, s);
    check.port(`${f}.port`, s.port);
    const protocol = s.protocol ?? 'HTTP';
    check.oneOf(`${f}.protocol`, protocol, SERVER_PROTOCOLS);
    const name = s.name ?? `${protocol.toLowerCase()}-${s.port}`;
    checkDns1123Label(check, `${f}.name`, name);
    check.array(`${f}.hosts`, s.hosts, 1);
    check.shape(f, s, { hosts: 'strings', httpsRedirect: 'boolean?', name: 'string?', tls: 'object?' });
    s.hosts.forEach((h, j) => checkHost(check, `${f}.hosts[${j}]`, h.includes('/') ? h.split('/')[1] : h));
    if ((protocol === 'HTTPS' || protocol === 'TLS') && !s.tls) check.fail(`${f}.tls`, s.tls, `a tls block for a ${protocol} server`);
    if (s.tls) {
      check.oneOf(`${f}.tls.mode`, s.tls.mode, ['SIMPLE', 'MUTUAL', 'PASSTHROUGH', 'ISTIO_MUTUAL']);
      if (protocol === 'HTTP') check.fail(`${f}.tls`, s.tls, 'no tls block on a plain HTTP server (use protocol HTTPS)');
      if ((s.tls.mode === 'SIMPLE' || s.tls.mode === 'MUTUAL') && !s.tls.credentialName) {
        check.fail(`${f}.tls.credentialName`, s.tls.credentialName, `the name of a TLS Secret for mode ${s.tls.mode}`);
      }
      if (s.tls.credentialName !== undefined) checkDns1123Label(check, `${f}.tls.credentialName`, s.tls.credentialName);
    }
    if (s.httpsRedirect && protocol !== 'HTTP') check.fail(`${f}.httpsRedirect`, true, 'httpsRedirect only on an HTTP server');
    if (seen.has(String(s.port))) check.fail(`${f}.port`, s.port, 'a port not used by another server of this gateway');
    seen.add(String(s.port));
    return { port: s.port, protocol, name, hosts: s.hosts, tls: s.tls, httpsRedirect: s.httpsRedirect === true };
  });
}
