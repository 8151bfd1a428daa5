// Conventions of the mesh that constructs enforce and lint checks: one definition each.

/** Istio's protocol selection: a Service port name `<protocol>` or `<protocol>-<suffix>`. */
export const PORT_NAME_PROTOCOLS: readonly string[] = ['http', 'http2', 'https', 'grpc', 'grpc-web', 'tcp', 'tls', 'mongo', 'mysql', 'redis'];

/** Does a Service port name carry a protocol Istio recognizes? */
export function hasProtocolPrefix(portName: string | undefined): boolean {
  return portName !== undefined && PORT_NAME_PROTOCOLS.some((p) => portName === p || portName.startsWith(`${p}-`));
}

/** Ports the Istio proxy reserves inside every pod (15000-15090). */
export const PROXY_RESERVED_PORTS = { from: 15000, to: 15090 } as const;

/** The proxy's own UID: an app running as it bypasses the mesh's traffic capture. */
export const PROXY_UID = 1337;

/** Pod annotation the constructs write and lint reads: the hosts a workload calls, comma-separated. */
export const CALLS_ANNOTATION = 'mesh.cdk8s.io/calls';
