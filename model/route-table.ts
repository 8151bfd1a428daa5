/**
 * The route table: what the node-sidecar renderer writes into a ConfigMap and what
 * the sidecar proxy (apps/sidecar/) reads. One type for both sides, plus the JSON
 * Schema the proxy validates every (re)loaded file against.
 *
 * Durations are whole or fractional milliseconds, hosts are fully qualified
 * (`name.namespace.svc.cluster.local`) or patterns ("*", "*.example.com").
 */

export const ROUTE_TABLE_API_VERSION = 'mesh.cdk8s.io/v1alpha1';
export const ROUTE_TABLE_KIND = 'RouteTable';
/** File name of the table inside the ConfigMap (and so in the mounted directory). */
export const ROUTE_TABLE_FILE = 'routes.json';

/** The proxy's ports inside a pod (Istio's numbers: 15001 outbound, 15000 admin, 15020 merged Prometheus metrics). */
export const SIDECAR_PORTS = { outbound: 15001, admin: 15000, stats: 15020 } as const;
/**
 * The preStop wait of meshed pods: the kubelet calls the proxy's admin
 * `/prestop/<s>` before it sends SIGTERM to the app and to the proxy, so that both
 * keep serving while the pod leaves its Services' endpoints (kube-proxy still sends new
 * connections to a terminating pod for a moment).
 */
export const PRESTOP_WAIT_SECONDS = 5;
/** Where the route table ConfigMap is mounted in the proxy container. */
export const ROUTE_TABLE_DIR = '/etc/mesh-proxy';

/** Istio's retryOn when a route sets retries without one, and the policy of routes that set none. */
export const ISTIO_DEFAULT_RETRY_ON: readonly string[] = ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes'];
export const ISTIO_DEFAULT_RETRY_ATTEMPTS = 2;

export type OutboundTrafficPolicy = 'ALLOW_ANY' | 'REGISTRY_ONLY';

/** A string condition in the route table. */
export interface RtStringMatch { readonly kind: 'exact' | 'prefix' | 'regex'; readonly value: string }
/** A header condition in the route table. */
export interface RtHeaderMatch { readonly kind: 'exact' | 'prefix' | 'regex' | 'present'; readonly value: string }

/** A match block in the route table. */
export interface RtMatch {
  readonly uri?: RtStringMatch;
  readonly method?: RtStringMatch;
  /** Lower-case header names. */
  readonly headers?: Readonly<Record<string, RtHeaderMatch>>;
  readonly withoutHeaders?: Readonly<Record<string, RtHeaderMatch>>;
  readonly queryParams?: Readonly<Record<string, RtStringMatch>>;
  readonly port?: number;
  readonly ignoreUriCase?: boolean;
}

/** An upstream: a Kubernetes Service host (per-subset Services for subsets). */
export interface RtUpstream {
  readonly host: string;
  /** @default - the port the request was addressed to */
  readonly port?: number;
}

export interface RtDestination extends RtUpstream {
  /** Relative weight (the model's percentages). */
  readonly weight: number;
}

/** Header operations in the route table. */
export interface RtHeaderOps {
  readonly set?: Readonly<Record<string, string>>;
  readonly add?: Readonly<Record<string, string>>;
  readonly remove?: readonly string[];
}

/** A rule in the route table: matches, weighted destinations and what to do on the way. */
export interface RtRoute {
  readonly name?: string;
  /** OR of these; empty: every request. */
  readonly match: readonly RtMatch[];
  /** Weighted upstreams; empty when the route redirects. */
  readonly destinations: readonly RtDestination[];
  readonly redirect?: {
    readonly uri?: string; readonly authority?: string; readonly port?: number;
    readonly scheme?: 'http' | 'https'; readonly code: number;
  };
  readonly rewrite?: { readonly uri?: string; readonly authority?: string };
  /** Whole-request timeout. @default - none */
  readonly timeoutMs?: number;
  /** Istio's default when absent: 2 attempts on connect-failure, refused-stream, 503. */
  readonly retries?: { readonly attempts: number; readonly perTryTimeoutMs?: number; readonly retryOn: readonly string[] };
  readonly fault?: {
    readonly delay?: { readonly fixedDelayMs: number; readonly percentage: number };
    readonly abort?: { readonly httpStatus: number; readonly percentage: number };
  };
  readonly mirror?: RtUpstream & { readonly percentage: number };
  readonly headers?: { readonly request?: RtHeaderOps; readonly response?: RtHeaderOps };
}

/** The rules of one VirtualService. */
export interface RtVirtualHost {
  /** `namespace/name` of the rule object, for logs and metrics. */
  readonly name: string;
  /** Fully qualified hosts or patterns ("*", "*.example.com"). */
  readonly hosts: readonly string[];
  /** "mesh" (sidecars) and/or `namespace/gateway`. */
  readonly gateways: readonly string[];
  readonly routes: readonly RtRoute[];
}

/** A gateway listener in the route table. */
export interface RtGatewayServer {
  /** The port clients use (the gateway Service's port). */
  readonly port: number;
  /** The port the proxy listens on (non-root: ports below 1024 move up by 8000, as Istio's gateways do). */
  readonly listenPort: number;
  readonly protocol: 'HTTP' | 'HTTPS';
  readonly hosts: readonly string[];
  readonly httpsRedirect?: boolean;
  /** HTTPS: a mounted kubernetes.io/tls Secret directory (tls.crt, tls.key). */
  readonly tlsDir?: string;
}

/** A gateway in the route table: its listeners. */
export interface RtGateway {
  /** `namespace/name`. */
  readonly name: string;
  readonly servers: readonly RtGatewayServer[];
}

/** A Service the mesh knows (the registry REGISTRY_ONLY admits). */
export interface RtService {
  readonly host: string;
  readonly ports: readonly number[];
  /** The ports' names, in the order of `ports` (EndpointSlices name their ports after the Service's). @default - unnamed */
  readonly portNames?: readonly string[];
  /** How the proxy balances, limits and ejects the Service's endpoints (its DestinationRule's policy). @default - Istio's defaults */
  readonly policy?: RtTrafficPolicy;
  /** Who answers behind it, for Istio's `destination_*` metric labels. @default - unknown workload, app and version */
  readonly telemetry?: RtServiceTelemetry;
  /**
   * What each port speaks, in the order of `ports` (Istio's protocol selection: the port's
   * appProtocol, else its name's prefix; a ServiceEntry's declared protocol).
   * @default - HTTP/1.1 on every port
   */
  readonly protocols?: readonly RtProtocol[];
  /** A ServiceEntry's host (`host` may be a `*.domain` wildcard): how to reach it. @default - a Kubernetes Service */
  readonly external?: RtExternal;
}

/** A port's protocol as the proxy treats it. */
export type RtProtocol = 'HTTP' | 'HTTPS' | 'HTTP2' | 'GRPC' | 'TCP' | 'TLS' | 'MONGO' | 'REDIS' | 'MYSQL';

/** A ServiceEntry host in the route table. */
export interface RtExternal {
  /** NONE and DNS: connect to the host as asked; STATIC (and DNS with endpoints): to `endpoints`. */
  readonly resolution: 'NONE' | 'STATIC' | 'DNS' | 'DNS_ROUND_ROBIN';
  /** Per port (the entry's port number as a string), where to connect. @default - the host itself */
  readonly endpoints?: Readonly<Record<string, ReadonlyArray<{ readonly address: string; readonly port: number }>>>;
  /** IP addresses and CIDR ranges a request or tunnel may name instead of the host. @default - none */
  readonly addresses?: readonly string[];
  /** The namespaces whose proxies see the entry. @default - all */
  readonly exportTo?: readonly string[];
}

/** The load balancers (Istio's simple ones). */
export type RtLoadBalancer = 'ROUND_ROBIN' | 'LEAST_REQUEST' | 'RANDOM' | 'PASSTHROUGH';

/** A DestinationRule's traffic policy as the proxy applies it to one Service's endpoints. */
export interface RtTrafficPolicy {
  /** @default LEAST_REQUEST (Istio's default) */
  readonly loadBalancer?: RtLoadBalancer;
  /** Instead of `loadBalancer`: one hash key, ring hash unless `maglev`. */
  readonly consistentHash?: {
    readonly httpHeaderName?: string;
    /** With `ttlMs`, a request without the cookie gets one (0: a session cookie). */
    readonly httpCookie?: { readonly name: string; readonly path?: string; readonly ttlMs?: number };
    readonly useSourceIp?: boolean;
    readonly httpQueryParameterName?: string;
    readonly ringHash?: { readonly minimumRingSize?: number };
    readonly maglev?: { readonly tableSize?: number };
  };
  /** Envoy's circuit breakers and connection settings; unset fields take the proxy's flags (Envoy's defaults). */
  readonly connectionPool?: {
    readonly maxConnections?: number;
    readonly connectTimeoutMs?: number;
    /** TCP keepalive after this long idle (Node sets the first probe's delay; count and interval are the kernel's). */
    readonly tcpKeepalive?: { readonly timeMs?: number; readonly probes?: number; readonly intervalMs?: number };
    readonly http1MaxPendingRequests?: number;
    readonly http2MaxRequests?: number;
    /** 0: unlimited. */
    readonly maxRequestsPerConnection?: number;
    readonly maxRetries?: number;
    readonly idleTimeoutMs?: number;
  };
  /** Envoy's outlier detection; fields as Istio's, defaults as Istio's. */
  readonly outlierDetection?: {
    readonly consecutive5xxErrors?: number;
    readonly consecutiveGatewayErrors?: number;
    readonly intervalMs?: number;
    readonly baseEjectionTimeMs?: number;
    readonly maxEjectionPercent?: number;
    readonly minHealthPercent?: number;
  };
}

/**
 * What the renderer knows at synth time about the pods behind a Service. Istio learns it
 * per response from the answering sidecar (metadata exchange); the node sidecar sees only
 * its own side, so it is written here when it is certain (one workload behind the Service).
 */
export interface RtServiceTelemetry {
  /** The Service clients asked for, fully qualified: the base Service of a per-subset Service. */
  readonly service: string;
  readonly workload?: string;
  readonly app?: string;
  readonly version?: string;
}

/** What the node-sidecar renderer writes into the mesh-routes ConfigMap and the proxy reads: services, virtual hosts, gateways. */
export interface RouteTable {
  readonly apiVersion: typeof ROUTE_TABLE_API_VERSION;
  readonly kind: typeof ROUTE_TABLE_KIND;
  /** @default cluster.local */
  readonly clusterDomain: string;
  /** Hosts without rules: pass through (ALLOW_ANY) or refuse with 502 (REGISTRY_ONLY). */
  readonly outboundTrafficPolicy: OutboundTrafficPolicy;
  readonly services: readonly RtService[];
  readonly virtualHosts: readonly RtVirtualHost[];
  readonly gateways: readonly RtGateway[];
  /** Where the proxies report spans, and how many requests they trace. Absent: no spans are sent (tracing headers still travel). */
  readonly tracing?: RtTracing;
}

/** Span export, as Istio's Telemetry and meshConfig extension provider configure Envoy. */
export interface RtTracing {
  /** `zipkin`: Zipkin v2 JSON (POST /api/v2/spans); `otlp`: OTLP/HTTP JSON (POST /v1/traces). */
  readonly format: 'zipkin' | 'otlp';
  /** The collector's full URL, e.g. http://zipkin.istio-system.svc.cluster.local:9411/api/v2/spans */
  readonly endpoint: string;
  /** Share of new traces recorded (Istio's randomSamplingPercentage); an incoming x-b3-sampled decides instead. */
  readonly samplingPercentage: number;
}

// ---------------------------------------------------------------------------
// JSON Schema (draft 2020-12 subset ajv understands): structure and ranges.
// Cross-field rules (regexes, weights) are checked by the proxy after the schema.

const HOST = { type: 'string', minLength: 1, maxLength: 253, pattern: '^(\\*|(\\*\\.)?[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*)$' };
const PORT = { type: 'integer', minimum: 1, maximum: 65535 };
/** A Kubernetes label value (the metric labels are made from them). */
const LABEL_VALUE = { type: 'string', maxLength: 63, pattern: '^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$' };
const MS = { type: 'number', exclusiveMinimum: 0, maximum: 86_400_000 };
const PERCENT = { type: 'number', minimum: 0, maximum: 100 };
const HEADER_NAME = { type: 'string', pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$" };
const strMatch = (kinds: string[]) => ({
  type: 'object', additionalProperties: false, required: ['kind', 'value'],
  properties: { kind: { enum: kinds }, value: { type: 'string' } },
});
const STRING_MATCH = strMatch(['exact', 'prefix', 'regex']);
const HEADER_MATCH = strMatch(['exact', 'prefix', 'regex', 'present']);
const headerMap = (m: object) => ({ type: 'object', propertyNames: HEADER_NAME, additionalProperties: m });
// A header value never carries CR, LF or NUL (RFC 9110 5.5): Node would refuse to send it.
// A path as it goes on the request line: no whitespace or control characters.
const URI_PATH = { type: 'string', pattern: '^/[^\\s\\u0000-\\u001f\\u007f]*$' };
const HEADER_VALUE = { type: 'string', pattern: '^[^\\r\\n\\u0000]*$' };
const HEADER_OPS = {
  type: 'object', additionalProperties: false,
  properties: {
    set: headerMap(HEADER_VALUE), add: headerMap(HEADER_VALUE),
    remove: { type: 'array', items: HEADER_NAME },
  },
};
const UPSTREAM_PROPS = { host: HOST, port: PORT };
const COUNT = { type: 'integer', minimum: 0, maximum: 4_294_967_295 };
const obj = (properties: Record<string, unknown>, required: string[] = []) => ({ type: 'object', additionalProperties: false, required, properties });
const TRAFFIC_POLICY = obj({
  loadBalancer: { enum: ['ROUND_ROBIN', 'LEAST_REQUEST', 'RANDOM', 'PASSTHROUGH'] },
  consistentHash: obj({
    httpHeaderName: HEADER_NAME,
    httpCookie: obj({ name: HEADER_NAME, path: { type: 'string', pattern: '^/[\\x21-\\x3a\\x3c-\\x7e]*$' }, ttlMs: { type: 'number', minimum: 0, maximum: 315_360_000_000 } }, ['name']),
    useSourceIp: { type: 'boolean' },
    httpQueryParameterName: { type: 'string', minLength: 1 },
    ringHash: obj({ minimumRingSize: { type: 'integer', minimum: 1, maximum: 8_388_608 } }),
    maglev: obj({ tableSize: { type: 'integer', minimum: 2, maximum: 5_000_011 } }),
  }),
  connectionPool: obj({
    maxConnections: COUNT, connectTimeoutMs: MS, tcpKeepalive: obj({ timeMs: MS, probes: COUNT, intervalMs: MS }),
    http1MaxPendingRequests: COUNT, http2MaxRequests: COUNT, maxRequestsPerConnection: COUNT, maxRetries: COUNT, idleTimeoutMs: MS,
  }),
  outlierDetection: obj({
    consecutive5xxErrors: COUNT, consecutiveGatewayErrors: COUNT, intervalMs: MS, baseEjectionTimeMs: MS,
    maxEjectionPercent: PERCENT, minHealthPercent: PERCENT,
  }),
});

export const ROUTE_TABLE_SCHEMA = {
  $id: 'https://cdk8s-mesh.dev/schemas/route-table.json',
  type: 'object',
  additionalProperties: false,
  required: ['apiVersion', 'kind', 'clusterDomain', 'outboundTrafficPolicy', 'services', 'virtualHosts', 'gateways'],
  properties: {
    apiVersion: { const: ROUTE_TABLE_API_VERSION },
    kind: { const: ROUTE_TABLE_KIND },
    clusterDomain: HOST,
    outboundTrafficPolicy: { enum: ['ALLOW_ANY', 'REGISTRY_ONLY'] },
    services: {
      type: 'array',
      items: {
        type: 'object', additionalProperties: false, required: ['host', 'ports'],
        properties: {
          host: HOST,
          ports: { type: 'array', items: PORT },
          portNames: { type: 'array', items: { type: 'string', maxLength: 63 } },
          policy: TRAFFIC_POLICY,
          telemetry: {
            type: 'object', additionalProperties: false, required: ['service'],
            properties: { service: HOST, workload: HOST, app: LABEL_VALUE, version: LABEL_VALUE },
          },
          protocols: { type: 'array', items: { enum: ['HTTP', 'HTTPS', 'HTTP2', 'GRPC', 'TCP', 'TLS', 'MONGO', 'REDIS', 'MYSQL'] } },
          external: obj({
            resolution: { enum: ['NONE', 'STATIC', 'DNS', 'DNS_ROUND_ROBIN'] },
            endpoints: {
              type: 'object', propertyNames: { pattern: '^[1-9][0-9]{0,4}$' },
              additionalProperties: { type: 'array', maxItems: 4096, items: obj({ address: { type: 'string', pattern: '^([0-9.]+|[0-9a-fA-F:]+|[A-Za-z0-9]([-A-Za-z0-9.]*[A-Za-z0-9])?)$', maxLength: 253 }, port: PORT }, ['address', 'port']) },
            },
            addresses: { type: 'array', maxItems: 256, items: { type: 'string', pattern: '^[0-9a-fA-F:.]+(/[0-9]{1,3})?$' } },
            exportTo: { type: 'array', items: { type: 'string', pattern: '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' } },
          }, ['resolution']),
        },
      },
    },
    virtualHosts: {
      type: 'array',
      items: {
        type: 'object', additionalProperties: false, required: ['name', 'hosts', 'gateways', 'routes'],
        properties: {
          name: { type: 'string', minLength: 1 },
          hosts: { type: 'array', minItems: 1, items: HOST },
          gateways: { type: 'array', minItems: 1, items: { type: 'string', minLength: 1 } },
          routes: {
            type: 'array', minItems: 1,
            items: {
              type: 'object', additionalProperties: false, required: ['match', 'destinations'],
              properties: {
                name: { type: 'string' },
                match: {
                  type: 'array',
                  items: {
                    type: 'object', additionalProperties: false,
                    properties: {
                      uri: STRING_MATCH, method: STRING_MATCH,
                      headers: headerMap(HEADER_MATCH), withoutHeaders: headerMap(HEADER_MATCH),
                      queryParams: headerMap(strMatch(['exact', 'regex'])), port: PORT, ignoreUriCase: { type: 'boolean' },
                    },
                  },
                },
                destinations: {
                  type: 'array',
                  items: {
                    type: 'object', additionalProperties: false, required: ['host', 'weight'],
                    properties: { ...UPSTREAM_PROPS, weight: { type: 'integer', minimum: 0, maximum: 1_000_000 } },
                  },
                },
                redirect: {
                  type: 'object', additionalProperties: false, required: ['code'],
                  properties: {
                    uri: URI_PATH, authority: HOST, port: PORT,
                    scheme: { enum: ['http', 'https'] }, code: { enum: [301, 302, 303, 307, 308] },
                  },
                },
                rewrite: {
                  type: 'object', additionalProperties: false,
                  properties: { uri: URI_PATH, authority: HOST },
                },
                timeoutMs: MS,
                retries: {
                  type: 'object', additionalProperties: false, required: ['attempts', 'retryOn'],
                  properties: {
                    attempts: { type: 'integer', minimum: 0, maximum: 100 },
                    perTryTimeoutMs: MS,
                    retryOn: { type: 'array', items: { type: 'string', minLength: 1 } },
                  },
                },
                fault: {
                  type: 'object', additionalProperties: false,
                  properties: {
                    delay: {
                      type: 'object', additionalProperties: false, required: ['fixedDelayMs', 'percentage'],
                      properties: { fixedDelayMs: MS, percentage: PERCENT },
                    },
                    abort: {
                      type: 'object', additionalProperties: false, required: ['httpStatus', 'percentage'],
                      properties: { httpStatus: { type: 'integer', minimum: 200, maximum: 599 }, percentage: PERCENT },
                    },
                  },
                },
                mirror: {
                  type: 'object', additionalProperties: false, required: ['host', 'percentage'],
                  properties: { ...UPSTREAM_PROPS, percentage: PERCENT },
                },
                headers: {
                  type: 'object', additionalProperties: false,
                  properties: { request: HEADER_OPS, response: HEADER_OPS },
                },
              },
            },
          },
        },
      },
    },
    tracing: {
      type: 'object', additionalProperties: false, required: ['format', 'endpoint', 'samplingPercentage'],
      properties: {
        format: { enum: ['zipkin', 'otlp'] },
        endpoint: { type: 'string', pattern: '^http://[^/\\s]+(/\\S*)?$', maxLength: 2048 },
        samplingPercentage: PERCENT,
      },
    },
    gateways: {
      type: 'array',
      items: {
        type: 'object', additionalProperties: false, required: ['name', 'servers'],
        properties: {
          name: { type: 'string', pattern: '^[a-z0-9-]+/[a-z0-9.-]+$' },
          servers: {
            type: 'array', minItems: 1,
            items: {
              type: 'object', additionalProperties: false, required: ['port', 'listenPort', 'protocol', 'hosts'],
              properties: {
                port: PORT, listenPort: PORT, protocol: { enum: ['HTTP', 'HTTPS'] },
                hosts: { type: 'array', minItems: 1, items: HOST },
                httpsRedirect: { type: 'boolean' },
                tlsDir: { type: 'string', pattern: '^/' },
              },
            },
          },
        },
      },
    },
  },
} as const;
