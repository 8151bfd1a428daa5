// The mesh proxy: `cdk8s-mesh sidecar --config routes.json [options]`.
// Sidecar mode: an HTTP forward proxy for the pod's apps (HTTP_PROXY points here).
// Gateway mode: a reverse proxy on the gateway's server ports.
import { createHash } from 'node:crypto';
import { readFileSync, statSync, unwatchFile, watchFile } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { Socket } from 'node:net';
import { basename, join } from 'node:path';
import * as tls from 'node:tls';
import { parseArgs } from 'node:util';
import { OutboundTrafficPolicy, RouteTable, RtGatewayServer, SIDECAR_PORTS } from '../../model/route-table';
import { PickStrategy } from './balancer';
import { ProxyMetrics } from './metrics';
import { DEFAULT_MAX_PIPELINED, Downstream } from './downstream';
import { GatewayListener, MeshProxy, serverFor } from './proxy';
import { Tunnels } from './tunnel';
import { GrpcTunnels } from './grpc';
import { Tracer } from './tracing';
import { Binding, compileTable, ConfigError, parseRouteTable } from './table';
import { checkTable, readTableFile, runTableWorker } from './table-worker';
import { Upstreams } from './upstream';
import { Clusters } from './clusters';
import { EndpointSource, FileEndpoints, KubernetesEndpoints } from './endpoints';

/** After the drain period the proxy stays while requests come; this long without one ends it. */
const DRAIN_QUIET_MS = 1000;

const USAGE = `usage: cdk8s-mesh sidecar --config FILE [options]

  --config FILE            route table (JSON) written by the node-sidecar renderer
  --mode sidecar|gateway   forward proxy for a pod, or ingress gateway (default sidecar)
  --gateway NS/NAME[,...]  gateway mode: the Gateways whose servers and rules to serve (repeatable);
                           servers of several Gateways on one port share its listener, picked by Host (SNI for HTTPS)
  --tls-dir DIR            gateway mode: where the TLS Secrets are, one directory per credentialName with
                           tls.crt and tls.key (default: the route table's, /etc/mesh-proxy/tls); a missing
                           Secret takes down only its HTTPS server (logged), the other listeners start
  --namespace NS           the pod's namespace (default $POD_NAMESPACE or "default")
  --listen ADDR:PORT       sidecar listener (default 127.0.0.1:15001)
  --admin ADDR:PORT        /healthz/ready, /stats/prometheus, /config_dump, /prestop/SECONDS (default 0.0.0.0:15000)
  --stats ADDR:PORT        Istio's merged metrics port: /stats/prometheus and /healthz/ready (default 0.0.0.0:15020)
  --merge-metrics URL      the app's own metrics (its prometheus.io annotations), appended to /stats/prometheus on
                           the stats port, as Istio's agent merges them
  --cluster NAME           Istio's cluster ID in the source_cluster label (default $MESH_CLUSTER or "Kubernetes")
                           The istio_* labels source_workload, source_app and source_version come from
                           $MESH_WORKLOAD_NAME, $MESH_APP and $MESH_VERSION (the renderer sets them)
  --bind ADDR              gateway listeners' address (default 0.0.0.0)
  --port-offset N          add N to every gateway listen port (local runs)
  --resolve H:P=A:P        connect to A:P for host H port P (repeatable, like curl --resolve)
  --outbound-policy P      ALLOW_ANY or REGISTRY_ONLY (default: the table's)
  --endpoints SOURCE       where the pods behind Services come from: kubernetes (EndpointSlices, list and watch with
                           the token in --token-file), a file (JSON: {"apiVersion": "mesh.cdk8s.io/v1alpha1",
                           "kind": "Endpoints", "clusters": {"host:port": [{"address", "port", "ready"?, "terminating"?}]}},
                           reloaded when it changes), or none (default: every request to the Service's name, kube-proxy picks)
  --api-server URL         the Kubernetes API (default https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT)
  --token-file FILE        the projected ServiceAccount token (default /var/run/secrets/mesh-proxy/token)
  --ca-file FILE           the API server's CA (default /var/run/secrets/mesh-proxy/ca.crt)
  --pick round-robin|random  weighted split: smooth round robin (exact) or random
  --reload-interval MS     how often the config file is checked (default 2000; SIGHUP reloads now)
  --drain-timeout MS       on SIGTERM, keep serving at least this long (default 5000, Istio's terminationDrainDuration)
  --drain-max MS           then go on while requests still come or are in flight (the app is still
                           shutting down), until 1 s without one, at most this long in all (default 25000)
  --max-buffer BYTES       bodies up to this size are kept for retries and mirrors (default 65536)
  --header-timeout MS      time a client may take to send its request headers (default 10000; then 408)
  --stream-idle-timeout MS a request with no bytes either way for this long ends (default 300000, Envoy's; 408)
  --tunnel-idle-timeout MS a CONNECT tunnel or WebSocket with no bytes either way for this long closes (default 3600000,
                           Istio's idle timeout)
  --max-connections N      downstream connections (default 1024); at the cap the keep-alive connection idle
                           longest is closed; when none is idle, new requests get 503 x-envoy-overloaded
  --max-upstream-connections N  connections per destination (default 1024, Envoy's circuit breaker)
  --max-pending N          requests waiting for a connection per destination; beyond it 503 (default 1024)
  --max-headers-count N    request headers allowed; beyond it 431 (default 100, Envoy's)
  --max-pipelined N        pipelined requests waiting behind another, all connections together; the connection
                           that overruns it is closed (default 10000)
  --max-header-bytes N     request header size (431) and upstream response header size (503) (default 61440, Envoy's 60 KiB)
  --path-normalization M   base (RFC 3986 dot segments, decoded unreserved characters; default, as Istio),
                           merge-slashes (base and // -> /), or none
  --max-table-bytes N      largest route table accepted, at start and on reload (default 1048576: a ConfigMap's
                           1 MiB limit); a larger file is refused and the last good table keeps serving
  --preserve-external-request-id  gateway mode: keep a client's x-request-id (default: a fresh one, as Envoy at the edge)
  --access-log             one JSON line per request on stdout
  healthcheck [--admin ADDR:PORT]  exit 0 when the admin port says ready (Docker HEALTHCHECK)
  wait [--admin ADDR:PORT] [--timeout MS]  wait until ready (the pod's postStart hook)`;

/** A gateway port as the route table describes it: its servers, their Gateways, the TLS material. */
interface ListenerPlan extends GatewayListener {
  readonly contexts: ReadonlyArray<{ readonly server: RtGatewayServer; readonly context: tls.SecureContext; readonly cert: string; readonly key: string }>;
  /** What makes a running listener reusable as it is: the protocol (a TLS one is re-created when its default certificate changes). */
  readonly kind: string;
}

/** The largest route table a ConfigMap can carry (its 1 MiB object limit). */
const DEFAULT_MAX_TABLE_BYTES = 1024 * 1024;

function hostPort(s: string, flag: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  const port = Number(s.slice(i + 1));
  if (i <= 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new ConfigError(`${flag} is "${s}"; expected ADDR:PORT such as 127.0.0.1:15001`);
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port };
}

function int(v: string | undefined, flag: string, dflt: number, min = 0): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new ConfigError(`${flag} is "${v}"; expected an integer of at least ${min}`);
  return n;
}

async function healthcheck(admin: string): Promise<number> {
  const { host, port } = hostPort(admin, '--admin');
  return new Promise((resolve) => {
    const req = http.get({ host: host === '0.0.0.0' ? '127.0.0.1' : host, port, path: '/healthz/ready', timeout: 2000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? 0 : 1);
    });
    req.on('error', () => resolve(1));
    req.on('timeout', () => { req.destroy(); resolve(1); });
  });
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'healthcheck') {
    const { values } = parseArgs({ args: argv.slice(1), options: { admin: { type: 'string' } } });
    return healthcheck(values.admin ?? `127.0.0.1:${SIDECAR_PORTS.admin}`);
  }
  if (argv[0] === 'wait') {
    // The postStart hook: hold the pod's next containers until the proxy is ready.
    const { values } = parseArgs({ args: argv.slice(1), options: { admin: { type: 'string' }, timeout: { type: 'string' } } });
    const until = Date.now() + int(values.timeout, '--timeout', 60_000);
    while (Date.now() < until) {
      if (await healthcheck(values.admin ?? `127.0.0.1:${SIDECAR_PORTS.admin}`) === 0) return 0;
      await new Promise((r) => setTimeout(r, 100));
    }
    return 1;
  }
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' }, mode: { type: 'string' }, gateway: { type: 'string', multiple: true }, 'tls-dir': { type: 'string' }, namespace: { type: 'string' },
      listen: { type: 'string' }, admin: { type: 'string' }, bind: { type: 'string' }, 'port-offset': { type: 'string' },
      resolve: { type: 'string', multiple: true }, 'outbound-policy': { type: 'string' }, pick: { type: 'string' },
      'reload-interval': { type: 'string' }, 'drain-timeout': { type: 'string' }, 'drain-max': { type: 'string' }, 'max-buffer': { type: 'string' },
      'header-timeout': { type: 'string' }, 'access-log': { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
      'stream-idle-timeout': { type: 'string' }, 'max-connections': { type: 'string' }, 'tunnel-idle-timeout': { type: 'string' },
      'max-upstream-connections': { type: 'string' }, 'max-pending': { type: 'string' }, 'max-headers-count': { type: 'string' }, 'max-header-bytes': { type: 'string' }, 'path-normalization': { type: 'string' },
      'max-table-bytes': { type: 'string' }, 'preserve-external-request-id': { type: 'boolean' }, 'max-pipelined': { type: 'string' },
      stats: { type: 'string' }, 'merge-metrics': { type: 'string' }, cluster: { type: 'string' },
      endpoints: { type: 'string' }, 'api-server': { type: 'string' }, 'token-file': { type: 'string' }, 'ca-file': { type: 'string' },
    },
    strict: true,
  });
  if (values.help) { process.stdout.write(`${USAGE}\n`); return 0; }
  if (!values.config) throw new ConfigError('--config is missing; expected the route table file (see --help)');
  const mode = values.mode ?? 'sidecar';
  if (mode !== 'sidecar' && mode !== 'gateway') throw new ConfigError(`--mode is "${mode}"; expected sidecar or gateway`);
  const gatewayNames = (values.gateway ?? []).flatMap((g) => g.split(',')).map((g) => g.trim());
  if (mode === 'gateway' && (!gatewayNames.length || gatewayNames.some((g) => !/^[a-z0-9-]+\/[a-z0-9.-]+$/.test(g)))) {
    throw new ConfigError(`--gateway is "${(values.gateway ?? []).join(',')}"; expected NAMESPACE/NAME (or several, comma-separated) in gateway mode`);
  }
  const binding: Binding = mode === 'gateway' ? { kind: 'gateway', names: gatewayNames } : { kind: 'mesh' };
  const pick = (values.pick ?? 'round-robin') as PickStrategy;
  if (pick !== 'round-robin' && pick !== 'random') throw new ConfigError(`--pick is "${String(pick)}"; expected round-robin or random`);
  const policy = values['outbound-policy'] as OutboundTrafficPolicy | undefined;
  if (policy !== undefined && policy !== 'ALLOW_ANY' && policy !== 'REGISTRY_ONLY') throw new ConfigError(`--outbound-policy is "${String(policy)}"; expected ALLOW_ANY or REGISTRY_ONLY`);
  const resolve = new Map<string, string>();
  for (const r of values.resolve ?? []) {
    const [from, to] = r.split('=');
    if (!from || !to) throw new ConfigError(`--resolve is "${r}"; expected HOST:PORT=ADDR:PORT`);
    hostPort(from, '--resolve'); hostPort(to, '--resolve');
    resolve.set(from.toLowerCase(), to);
  }
  const listen = hostPort(values.listen ?? `127.0.0.1:${SIDECAR_PORTS.outbound}`, '--listen');
  const admin = hostPort(values.admin ?? `0.0.0.0:${SIDECAR_PORTS.admin}`, '--admin');
  const stats = hostPort(values.stats ?? `0.0.0.0:${SIDECAR_PORTS.stats}`, '--stats');
  const mergeUrl = values['merge-metrics'];
  if (mergeUrl !== undefined && !/^http:\/\/(127\.0\.0\.1|localhost|\[::1\]):\d{1,5}\//.test(mergeUrl)) {
    throw new ConfigError(`--merge-metrics is "${mergeUrl}"; expected http://127.0.0.1:PORT/PATH (the app in the same pod)`);
  }
  const portOffset = int(values['port-offset'], '--port-offset', 0);
  const reloadMs = int(values['reload-interval'], '--reload-interval', 2000, 10);
  const drainMs = int(values['drain-timeout'], '--drain-timeout', 5000);
  // 25 s: the pod's default 30 s grace period minus the 5 s preStop wait. Never below the drain period.
  const drainMaxMs = Math.max(drainMs, int(values['drain-max'], '--drain-max', 25_000));
  const maxBuffer = int(values['max-buffer'], '--max-buffer', 64 * 1024);
  const headerTimeout = int(values['header-timeout'], '--header-timeout', 10_000, 1);
  const streamIdleMs = int(values['stream-idle-timeout'], '--stream-idle-timeout', 300_000, 1);
  const tunnelIdleMs = int(values['tunnel-idle-timeout'], '--tunnel-idle-timeout', 3_600_000, 1);
  const maxConnections = int(values['max-connections'], '--max-connections', 1024, 1);
  const maxUpstream = int(values['max-upstream-connections'], '--max-upstream-connections', 1024, 1);
  const maxPending = int(values['max-pending'], '--max-pending', 1024, 0);
  const maxHeadersCount = int(values['max-headers-count'], '--max-headers-count', 100, 1);
  const maxPipelined = int(values['max-pipelined'], '--max-pipelined', DEFAULT_MAX_PIPELINED, 1);
  const maxHeaderBytes = int(values['max-header-bytes'], '--max-header-bytes', 60 * 1024, 1024);
  const pathNormalization = values['path-normalization'] ?? 'base';
  if (pathNormalization !== 'base' && pathNormalization !== 'merge-slashes' && pathNormalization !== 'none') {
    throw new ConfigError(`--path-normalization is "${pathNormalization}"; expected base, merge-slashes or none`);
  }
  const maxTableBytes = int(values['max-table-bytes'], '--max-table-bytes', DEFAULT_MAX_TABLE_BYTES, 1024);
  const configPath = values.config;
  const namespace = values.namespace ?? process.env.POD_NAMESPACE ?? 'default';
  const podName = process.env.POD_NAME ?? 'mesh-proxy';
  const metrics = new ProxyMetrics({
    // A gateway's workload is its Deployment, named after the first Gateway it serves.
    workload: process.env.MESH_WORKLOAD_NAME || (binding.kind === 'gateway' ? binding.names[0].split('/')[1] : podName),
    namespace, app: process.env.MESH_APP, version: process.env.MESH_VERSION, cluster: values.cluster ?? process.env.MESH_CLUSTER,
  });
  /** The file as it was when the table in use was read (taken before reading, so a change while reading shows). */
  const fileId = () => { const st = statSync(configPath); return `${st.ino}:${st.size}:${st.mtimeMs}`; };
  let loadedId = fileId();
  let loaded = { text: readTableFile(configPath, maxTableBytes), at: new Date() };
  const compile = (t: RouteTable) => compileTable(t, binding, pick, namespace);
  const first = parseRouteTable(loaded.text, configPath);
  metrics.reloads.inc({ result: 'applied' });
  const ownPorts = new Set<number>();
  const upstreams = new Upstreams({ resolve, maxConnectionsPerDestination: maxUpstream, maxPendingPerDestination: maxPending, ownPorts, maxHeaderBytes });
  // Filled in once the listeners are bound (ports may be 0: chosen by the kernel).
  const ownEndpoints = new Set<string>();
  // Who reports the spans, as Istio names Envoy: `<app>.<namespace>` and the node id
  // `sidecar~<pod IP>~<pod>.<namespace>~<namespace>.svc.cluster.local` (the renderer
  // passes the pod's name, IP and app through the downward API).
  const podIp = process.env.POD_IP ?? '127.0.0.1';
  const clusters = new Clusters(endpointSource(values, metrics), upstreams.defaults, {
    ejected: (cluster, e, ms, reason) => {
      metrics.outlier.inc({ cluster, event: 'ejected' });
      log('warn', 'outlier ejected', { cluster, endpoint: `${e.address}:${e.port}`, ms, reason });
    },
    returned: (cluster, e) => {
      metrics.outlier.inc({ cluster, event: 'returned' });
      log('info', 'outlier returned', { cluster, endpoint: `${e.address}:${e.port}` });
    },
  });
  clusters.setTable(first);
  const tracer = new Tracer(metrics, {
    serviceName: process.env.MESH_SERVICE_NAME || `${binding.kind === 'gateway' ? binding.names[0].split('/')[1] : podName}.${namespace}`,
    nodeId: `${binding.kind === 'gateway' ? 'router' : 'sidecar'}~${podIp}~${podName}.${namespace}~${namespace}.svc.cluster.local`,
    ipv4: /^\d+\.\d+\.\d+\.\d+$/.test(podIp) ? podIp : undefined,
    namespace,
  });
  tracer.configure(first.tracing);
  const downstream = new Downstream(maxConnections, (limit) => metrics.overflows.inc({ limit }), maxPipelined);
  const proxy = new MeshProxy({
    namespace, tracer, downstream,
    binding, outboundTrafficPolicy: policy, ownEndpoints, maxBufferBytes: maxBuffer, accessLog: values['access-log'] === true,
    maxHeadersCount, pathNormalization, preserveExternalRequestId: values['preserve-external-request-id'] === true, clusters,
    upgradeIdleTimeoutMs: tunnelIdleMs,
  }, upstreams, metrics, compile(first));

  const grpc = new GrpcTunnels(proxy, metrics, upstreams, { maxBufferBytes: maxBuffer, accessLog: values['access-log'] === true });
  const tunnels = new Tunnels(proxy, metrics, {
    grpc,
    upstreams, connectTimeoutMs: upstreams.connectTimeoutMs, idleTimeoutMs: tunnelIdleMs,
    maxPerDestination: maxUpstream, accessLog: values['access-log'] === true, clusters,
  });

  // Servers: bounded header size and header read time; malformed requests get a clear 4xx.
  // (Node checks header deadlines every connectionsCheckingInterval, 30s by default: too coarse.)
  const serverOptions: http.ServerOptions = {
    maxHeaderSize: maxHeaderBytes, headersTimeout: headerTimeout, requestTimeout: 0, keepAliveTimeout: 30_000,
    connectionsCheckingInterval: Math.min(1000, headerTimeout),
  };
  const servers = new Set<http.Server>();
  const refused = new WeakSet<Socket>();
  const sockets = new Set<Socket>();
  const track = (s: http.Server, mesh = false) => {
    servers.add(s);
    // Downstream limit: up to maxConnections are served; the next 64 are accepted only to be
    // told 503 (x-envoy-overloaded) and closed; beyond that Node closes each new connection
    // as it is accepted (server.maxConnections), so no socket is held for them.
    s.maxConnections = maxConnections + 64;
    // Node drops headers beyond maxHeadersCount silently: parse one more, so that the
    // proxy can see there were too many and answer 431.
    s.maxHeadersCount = maxHeadersCount + 1;
    // Envoy's stream_idle_timeout as the sockets' inactivity timeout: armed once per
    // connection, restarted by every read and write (not a timer per request).
    s.setTimeout(streamIdleMs, (sock: Socket) => proxy.streamIdle(sock));
    // CONNECT: tunnels from the pod's own apps (the sidecar listener, on loopback). A gateway
    // is no forward proxy: an edge client's CONNECT is refused there. The socket is handed over
    // without Node's error handling: a client that resets it must not take the process down.
    s.on('connect', (req: http.IncomingMessage, sock: Socket, head: Buffer) => {
      if (mesh) return tunnels.handle(req, sock, head);
      sock.on('error', () => sock.destroy());
      metrics.clientErrors.inc({ code: '405' });
      const body = 'mesh-proxy: CONNECT is not served by a gateway (it is not a forward proxy)\n';
      sock.end(`HTTP/1.1 405 Method Not Allowed\r\nallow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
    });
    s.on('connection', (sock: Socket) => {
      sockets.add(sock);
      sock.once('close', () => sockets.delete(sock));
    });
    // At the cap the connection idle longest gives way (Envoy's overload manager); only when
    // all are busy is the new one told 503. Counted on the socket requests arrive on: for
    // HTTPS the TLS socket ('secureConnection'), not the TCP one under it.
    s.on(s instanceof https.Server ? 'secureConnection' : 'connection', (sock: Socket) => downstream.accept(sock));
    s.on('clientError', (err: NodeJS.ErrnoException, sock: Socket) => {
      // One answer and one count per connection: the rest of an oversized head that is
      // still arriving must not be counted again.
      if (refused.has(sock)) { sock.destroy(); return; }
      refused.add(sock);
      const code = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
      metrics.clientErrors.inc({ code: String(code) });
      if (sock.writable && !(err.code === 'ECONNRESET')) {
        const reason = code === 431 ? 'Request Header Fields Too Large' : code === 408 ? 'Request Timeout' : 'Bad Request';
        const body = `mesh-proxy: ${reason.toLowerCase()}${code === 400 ? ` (${err.code ?? 'malformed request'})` : ''}\n`;
        sock.end(`HTTP/1.1 ${code} ${reason}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
      } else {
        sock.destroy();
      }
    });
    return s;
  };
  const listenOn = (s: http.Server, port: number, host: string) => new Promise<void>((res, rej) => {
    s.once('error', rej);
    s.listen(port, host, () => { s.off('error', rej); res(); });
  });

  /**
   * Gateway ports from a table: one listener per port, shared by the servers of every bound
   * Gateway on it. Throws ConfigError (nothing applied) when a port mixes protocols.
   */
  const planListeners = (table: RouteTable): Map<number, ListenerPlan> => {
    if (binding.kind !== 'gateway') return new Map();
    const byPort = new Map<number, Array<{ gateway: string; server: RtGatewayServer }>>();
    for (const gw of table.gateways.filter((g) => binding.names.includes(g.name))) {
      for (const server of gw.servers) byPort.set(server.listenPort, [...(byPort.get(server.listenPort) ?? []), { gateway: gw.name, server }]);
    }
    const plans = new Map<number, ListenerPlan>();
    for (const [port, entries] of byPort) {
      const protocols = new Set(entries.map((e) => e.server.protocol));
      if (protocols.size > 1) throw new ConfigError(`${configPath}: listener ${port} has both HTTP and HTTPS servers (${entries.map((e) => `${e.gateway} ${e.server.protocol}`).join(', ')}); one protocol per port`);
      const protocol = entries[0].server.protocol;
      let served = entries;
      const contexts: Array<ListenerPlan['contexts'][number]> = [];
      if (protocol === 'HTTPS') {
        for (const e of entries) {
          const dir = values['tls-dir'] ? join(values['tls-dir'], basename(e.server.tlsDir ?? '')) : e.server.tlsDir;
          try {
            const cert = readFileSync(join(dir ?? '', 'tls.crt'), 'utf8');
            const key = readFileSync(join(dir ?? '', 'tls.key'), 'utf8');
            contexts.push({ server: e.server, context: tls.createSecureContext({ cert, key }), cert, key });
          } catch (err) {
            metrics.tlsMissing.inc({ gateway: e.gateway, port: String(e.server.port) });
            proxy.log('error', 'TLS secret missing or unreadable: this HTTPS server is not served; the other listeners are', { gateway: e.gateway, port: e.server.port, dir, error: (err as Error).message });
          }
        }
        served = entries.filter((e) => contexts.some((c) => c.server === e.server));
        if (!served.length) continue;
      }
      plans.set(port, { port, protocol, servers: served, contexts, kind: protocol === 'HTTPS' ? `HTTPS ${contexts[0].cert}${contexts[0].key}` : 'HTTP' });
    }
    return plans;
  };
  /** Running gateway listeners by listen port; `plan` is read per request, so a reload changes it in place. */
  const listeners = new Map<number, { server: http.Server; plan: ListenerPlan }>();
  const bindAddress = values.bind ?? '0.0.0.0';
  const addOwn = (s: http.Server) => {
    const a = s.address();
    if (a && typeof a === 'object') { ownEndpoints.add(`127.0.0.1:${a.port}`).add(`${a.address}:${a.port}`); ownPorts.add(a.port); }
  };
  /** Stop accepting on a listener; its open connections finish what they carry (told `connection: close`), then go. */
  const retire = (s: http.Server) => {
    servers.delete(s);
    s.close();
    s.closeIdleConnections();
    setTimeout(() => s.closeAllConnections(), drainMs).unref();
  };
  const applyListeners = async (plans: Map<number, ListenerPlan>): Promise<void> => {
    for (const [port, running] of [...listeners]) {
      const next = plans.get(port);
      if (next && next.kind === running.plan.kind) continue;
      listeners.delete(port);
      retire(running.server);
      proxy.log('info', next ? 'gateway listener re-created (protocol or default certificate changed)' : 'gateway listener closed: no server of the bound Gateways uses its port', { port: port + portOffset });
    }
    for (const [port, plan] of plans) {
      const running = listeners.get(port);
      if (running) { running.plan = plan; continue; }
      const entry: { server: http.Server; plan: ListenerPlan } = { server: undefined as unknown as http.Server, plan };
      const handler = (req: http.IncomingMessage, res: http.ServerResponse) => proxy.handle(req, res, entry.plan);
      entry.server = plan.protocol === 'HTTPS'
        ? track(https.createServer({
          ...serverOptions, cert: plan.contexts[0].cert, key: plan.contexts[0].key,
          // Several certificates on one port: the one whose server names the requested host.
          SNICallback: (name, cb) => cb(null, (entry.plan.contexts.find((c) => c.server === serverFor(entry.plan.servers, name).server) ?? entry.plan.contexts[0]).context),
        }, handler))
        : track(http.createServer(serverOptions, handler));
      // WebSocket through the gateway: routed by the rules bound to this listener's Gateways.
      entry.server.on('upgrade', (req: http.IncomingMessage, sock: Socket, head: Buffer) => proxy.upgrade(req, sock, head, entry.plan));
      try {
        await listenOn(entry.server, port + portOffset, bindAddress);
      } catch (err) {
        servers.delete(entry.server);
        // At start every listener must open, as Envoy's static listeners must (a gateway missing
        // a port would serve part of its Gateways and look ready); on a reload the ones running stay.
        if (!started) {
          for (const l of listeners.values()) l.server.close();
          throw err;
        }
        proxy.log('error', 'gateway listener could not be opened', { port: port + portOffset, error: (err as Error).message });
        continue;
      }
      listeners.set(port, entry);
      addOwn(entry.server);
      if (started) proxy.log('info', 'gateway listener opened', { port: port + portOffset, protocol: plan.protocol });
    }
  };
  let started = false;

  if (binding.kind === 'mesh') {
    const s = track(http.createServer(serverOptions, (req, res) => proxy.handle(req, res)), true);
    s.on('upgrade', (req: http.IncomingMessage, sock: Socket, head: Buffer) => proxy.upgrade(req, sock, head));
    await listenOn(s, listen.port, listen.host);
  } else {
    const missing = binding.names.filter((n) => !first.gateways.some((g) => g.name === n));
    if (missing.length) throw new ConfigError(`${configPath}: no gateway "${missing.join('", "')}" in the route table (it has: ${first.gateways.map((g) => g.name).join(', ') || 'none'})`);
    await applyListeners(planListeners(first));
  }
  started = true;

  // Admin: readiness and metrics for everyone; the config only for loopback callers.
  const adminServer = http.createServer((req, res) => {
    // One leading slash: the 1.20 kubelet's lifecycle hooks ask for "//<path>".
    const path = (req.url ?? '/').split('?')[0].replace(/^\/+/, '/');
    if (path === '/healthz/ready') {
      const ok = !proxy.draining;
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ready\n' : 'draining\n');
    } else if (path === '/stats/prometheus') {
      metrics.registry.metrics().then((text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (e) => res.writeHead(500).end(String(e)));
    } else if (path === '/prestop' || path.startsWith('/prestop/')) {
      // The kubelet's preStop hook (httpGet): answer after /prestop/<seconds> (at most 60),
      // so that the container's SIGTERM comes once the pod has left its Services'
      // endpoints.
      const wait = Number(path.slice('/prestop/'.length) || '0');
      const ms = Number.isFinite(wait) && wait > 0 ? Math.min(wait, 60) * 1000 : 0;
      proxy.log('info', 'preStop: waiting before SIGTERM', { seconds: ms / 1000 });
      setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end(`waited ${ms / 1000} s\n`), ms).unref();
    } else if (path === '/config_dump') {
      const remote = req.socket.remoteAddress ?? '';
      if (!/^(127\.|::1$|::ffff:127\.)/.test(remote)) {
        res.writeHead(403, { 'content-type': 'text/plain' }).end('config_dump is served to loopback callers only\n');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({
        source: configPath, loadedAt: loaded.at.toISOString(),
        sha256: createHash('sha256').update(loaded.text).digest('hex'),
        mode, binding, namespace: values.namespace ?? process.env.POD_NAMESPACE ?? 'default',
        table: proxy.table.table,
      }, null, 2));
    } else if (path === '/clusters') {
      // Envoy's admin /clusters, as JSON: each cluster's endpoints, in-flight requests and ejections.
      const out: Record<string, unknown> = {};
      for (const c of clusters.all()) out[c.key] = { source: clusters.source?.kind ?? 'cluster-ip', balanced: c.balanced, active: c.active, connections: c.pool.connections, pending: c.pool.pending, hosts: c.snapshot() };
      res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(out, null, 2)}\n`);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('admin: /healthz/ready, /stats/prometheus, /config_dump, /clusters, /prestop/SECONDS\n');
    }
  });
  await listenOn(adminServer, admin.port, admin.host);
  // Istio's agent port: what Prometheus scrapes (the pod's prometheus.io annotations name it).
  const statsServer = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz/ready') {
      const ok = !proxy.draining;
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' }).end(ok ? 'ready\n' : 'draining\n');
    } else if (path === '/stats/prometheus') {
      void mergedMetrics(metrics, mergeUrl, (m, e) => proxy.log('warn', m, e)).then((text) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text),
        (e) => res.writeHead(500).end(String(e)));
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('stats: /stats/prometheus, /healthz/ready\n');
    }
  });
  await listenOn(statsServer, stats.port, stats.host);
  for (const s of [...servers, adminServer, statsServer]) addOwn(s);

  // Hot reload: a broken file is refused, logged and counted; the last good table keeps serving.
  // The text last refused: the same broken file is refused (logged, counted) once, not on
  // every check that sees it, unless SIGHUP asks again.
  let refusedText: string | undefined;
  let refusedId: string | undefined;
  // Reloads run one at a time; a change that comes during one is checked after it.
  let reloading: Promise<void> | undefined;
  let again: string | undefined;
  const reload = (why: string): void => {
    if (reloading) { again = again === 'SIGHUP' ? again : why; return; }
    reloading = reloadNow(why).finally(() => {
      reloading = undefined;
      const next = again;
      again = undefined;
      if (next !== undefined && !stopping) reload(next);
    });
  };
  const reloadNow = async (why: string): Promise<void> => {
    // The same file as the table in use (the start-up check, a touch): nothing to do, no worker.
    let id: string;
    try { id = fileId(); } catch { id = 'missing'; }
    if ((id === loadedId || id === refusedId) && why !== 'SIGHUP') return;
    // Read, size check, parse and schema check in a worker thread: off the request path.
    const checked = await checkTable(configPath, maxTableBytes);
    if (stopping) return;
    const text = checked.text;
    if (text !== undefined && text === loaded.text) { loadedId = id; return; }
    if (text !== undefined && text === refusedText && why !== 'SIGHUP') { refusedId = id; return; }
    try {
      if ('error' in checked) throw new ConfigError(checked.error);
      const table = checked.table;
      const gone = binding.kind === 'gateway' ? binding.names.filter((n) => !table.gateways.some((g) => g.name === n)) : [];
      if (gone.length) throw new ConfigError(`${configPath}: the new table has no gateway "${gone.join('", "')}"`);
      const plans = planListeners(table);
      proxy.table = compile(table);
      // Servers follow the table: new ports open, removed ones drain, changed hosts apply at once.
      if (binding.kind === 'gateway') await applyListeners(plans);
      tracer.configure(table.tracing);
      loaded = { text: checked.text, at: new Date() };
      loadedId = id;
      refusedText = undefined;
      refusedId = undefined;
      metrics.reloads.inc({ result: 'applied' });
      proxy.log('info', 'config reloaded', { why, virtualHosts: table.virtualHosts.length, checkedIn: checked.checkedIn });
    } catch (e) {
      refusedText = text;
      refusedId = id;
      metrics.reloads.inc({ result: 'rejected' });
      proxy.log('error', 'config reload refused; the previous route table stays in use', { why, error: (e as Error).message });
    }
  };
  watchFile(configPath, { interval: reloadMs, persistent: false }, (cur, prev) => {
    if (cur.mtimeMs !== prev.mtimeMs || cur.ino !== prev.ino || cur.size !== prev.size) reload('file changed');
  });
  process.on('SIGHUP', () => reload('SIGHUP'));
  // watchFile's baseline is its own first stat, taken after the table was read: a change
  // landing in between (a ConfigMap update during start-up) would wait for the next one.
  // One comparison of the file with the loaded text, once the watcher is armed, closes that gap.
  setTimeout(() => { if (!stopping) reload('start-up check'); }, reloadMs).unref();

  // SIGTERM: not ready at once, and every listener keeps accepting for the whole drain
  // period, answering with `connection: close`, as Istio's Envoy does. A sidecar's app is
  // shutting down too and may still make its last calls; a gateway's Service keeps
  // sending it new connections until every node's kube-proxy has dropped the endpoint
  // (measured on the local cluster: a gateway that stopped accepting at once refused 3
  // page loads during a rollout restart). The process exits at the end of the drain
  // period, or at once if it gets a second signal.
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) {
      proxy.log('warn', 'second signal while draining: exiting now', { signal, leftInFlight: proxy.inflight });
      process.exit(0);
    }
    stopping = true;
    proxy.draining = true;
    proxy.log('info', 'draining', { signal, inflight: proxy.inflight, drainTimeoutMs: drainMs });
    unwatchFile(configPath);
    // The drain period, then as long as the app (or, for a gateway, its Service) still sends
    // requests: an app that outlives its sidecar would find 127.0.0.1:15001 refused (seen on
    // the local cluster: an old productpage kept answering a gateway's pooled connection for
    // 25 s after its proxy had exited). Quiet for 1 s with nothing in flight, or drain-max: exit.
    const t0 = Date.now();
    while (Date.now() - t0 < drainMs) await new Promise((r) => setTimeout(r, 10));
    while (Date.now() - t0 < drainMaxMs && (proxy.inflight > 0 || performance.now() - proxy.lastRequestAt < DRAIN_QUIET_MS)) {
      await new Promise((r) => setTimeout(r, 10));
    }
    if (Date.now() - t0 > drainMs + 20) proxy.log('info', 'drain extended while requests came', { ms: Date.now() - t0, drainTimeoutMs: drainMs, drainMaxMs });
    for (const s of servers) s.close();
    for (const s of servers) s.closeAllConnections();
    for (const sock of sockets) sock.destroy();
    tunnels.closeAll();
    grpc.close();
    for (const s of [adminServer, statsServer]) { s.close(); s.closeAllConnections(); }
    clusters.close();
    await upstreams.close();
    await tracer.close();
    proxy.log('info', 'stopped', { leftInFlight: proxy.inflight });
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));

  proxy.log('info', 'listening', {
    mode, binding, namespace: values.namespace ?? process.env.POD_NAMESPACE ?? 'default',
    addresses: [...servers].map((s) => s.address()), admin: adminServer.address(), stats: statsServer.address(), virtualHosts: first.virtualHosts.length,
  });
  return -1; // keep running
}

function log(level: 'info' | 'warn' | 'error', msg: string, extra: Record<string, unknown> = {}): void {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...extra })}\n`);
}

/**
 * The endpoint source `--endpoints` asks for. Kubernetes without a token or CA (no API
 * access granted): requests go to the Services' names, said once here and in the
 * mesh_proxy_endpoint_source metric.
 */
function endpointSource(values: { endpoints?: string; 'api-server'?: string; 'token-file'?: string; 'ca-file'?: string }, metrics: ProxyMetrics): EndpointSource | undefined {
  const want = values.endpoints ?? 'none';
  let source: EndpointSource | undefined;
  if (want === 'kubernetes') {
    const host = process.env.KUBERNETES_SERVICE_HOST;
    const server = values['api-server'] ?? (host ? `https://${host.includes(':') ? `[${host}]` : host}:${process.env.KUBERNETES_SERVICE_PORT ?? '443'}` : undefined);
    const tokenFile = values['token-file'] ?? '/var/run/secrets/mesh-proxy/token';
    const caFile = values['ca-file'] ?? '/var/run/secrets/mesh-proxy/ca.crt';
    try {
      if (!server) throw new Error('no --api-server and no KUBERNETES_SERVICE_HOST');
      source = new KubernetesEndpoints({ server, tokenFile, caFile, log });
    } catch (e) {
      log('warn', 'no access to the Kubernetes API: requests go to each Service\'s ClusterIP (no load balancing, outlier detection or per-endpoint pools)', { error: (e as Error).message });
    }
  } else if (want !== 'none') {
    const file = new FileEndpoints(want);
    watchFile(want, { interval: 1000, persistent: false }, () => {
      try { file.reload(); log('info', 'endpoints reloaded', { file: want }); } catch (e) { log('error', 'endpoints file refused; the last good one stays', { error: (e as Error).message }); }
    });
    source = file;
  }
  metrics.endpointSource.set({ source: source?.kind ?? 'cluster-ip' }, 1);
  return source;
}

let lastMergeError: string | undefined;
/** The proxy's metrics, then the app's (fetched from the pod, 5 s at most, 4 MiB at most): a failing app leaves the proxy's own. */
async function mergedMetrics(metrics: ProxyMetrics, appUrl: string | undefined, warn: (msg: string, extra: Record<string, unknown>) => void): Promise<string> {
  if (!appUrl) return metrics.registry.metrics();
  // The app first, so that this scrape's result is in the proxy's own counters.
  let app = '';
  try {
    const r = await fetch(appUrl, { signal: AbortSignal.timeout(5000), redirect: 'error' });
    if (!r.ok) throw new Error(`status ${r.status}`);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of r.body ?? []) {
      size += (c as Uint8Array).length;
      if (size > 4 * 1024 * 1024) throw new Error('over 4 MiB');
      chunks.push(Buffer.from(c as Uint8Array));
    }
    const text = Buffer.concat(chunks).toString('utf8');
    metrics.appScrapes.inc({ result: 'merged' });
    lastMergeError = undefined;
    app = text;
  } catch (e) {
    metrics.appScrapes.inc({ result: 'failed' });
    // Said once per kind of failure, not on every scrape (counted in mesh_proxy_app_metrics_scrapes_total).
    const why = String((e as Error).message ?? e);
    if (why !== lastMergeError) warn('app metrics not merged', { url: appUrl, error: why });
    lastMergeError = why;
  }
  const own = await metrics.registry.metrics();
  return app ? `${own}${own.endsWith('\n') ? '' : '\n'}${app}` : own;
}

// The bundle is also the entry of the worker that checks reloaded tables (table-worker.ts).
if (require.main === module && !runTableWorker()) {
  main(process.argv.slice(2)).then((code) => {
    if (code >= 0) process.exit(code);
  }, (e: unknown) => {
    const msg = e instanceof ConfigError || (e as { code?: string })?.code?.startsWith?.('ERR_PARSE_ARGS') ? (e as Error).message : String((e as Error)?.stack ?? e);
    process.stderr.write(`cdk8s-mesh sidecar: ${msg}\n`);
    process.exit(1);
  });
}
