import { Construct } from 'constructs';
import { ConsistentHashModel, Duration, HeaderMatchModel, hostFor, HttpHeaders, RuleModel, ServiceRef, TrafficPolicyModel } from '../../model';
import { DataPlane, DestinationPolicyRendering, GatewayRendering, MeshRenderer, RolloutRendering, RouteRendering, ServiceEntryRendering, TracingRendering } from '../mesh';
import { renderArgoRollout } from '../progressive/argo-rollouts';
import type { MeshNamespace } from '../mesh-namespace';
import type { MeshWorkload } from '../mesh-workload';
import {
  DestinationRule, Gateway, IstioDestination, IstioHeaderOperations, IstioHttpRoute, IstioStringMatch,
  IstioConsistentHash, IstioServiceEntry, IstioTrafficPolicy, Telemetry, VirtualService,
} from './resources';

/** Istio's injection controls (namespace label, pod label and annotation). */
export const ISTIO_INJECTION_LABEL = 'istio-injection';
export const ISTIO_INJECT_POD_KEY = 'sidecar.istio.io/inject';

/** Drop keys whose value is undefined, so the YAML shows only what was set. */
function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
const d = (x: Duration | undefined) => x?.toIstio();

function stringMatch(m: HeaderMatchModel): IstioStringMatch {
  // Istio matches header presence with an empty StringMatch.
  return m.kind === 'present' ? {} : { [m.kind]: m.value };
}
function matchMap(map: Readonly<Record<string, HeaderMatchModel>>): Record<string, IstioStringMatch> | undefined {
  const entries = Object.entries(map);
  return entries.length ? Object.fromEntries(entries.map(([k, v]) => [k, stringMatch(v)])) : undefined;
}
function destination(to: ServiceRef, subset: string | undefined, port: number | undefined, ns: string | undefined): IstioDestination {
  return compact({ host: hostFor(to, ns), subset, port: port === undefined ? undefined : { number: port } });
}
function headerOps(h: HttpHeaders | undefined): IstioHttpRoute['headers'] {
  if (!h) return undefined;
  const op = (o: HttpHeaders['request']): IstioHeaderOperations | undefined =>
    o && compact({ set: o.set && { ...o.set }, add: o.add && { ...o.add }, remove: o.remove && [...o.remove] });
  return compact({ request: op(h.request), response: op(h.response) });
}

export function renderHttpRoute(r: RuleModel, ns: string | undefined): IstioHttpRoute {
  const single = r.route.length === 1;
  return compact({
    name: r.name,
    match: r.match.length
      ? r.match.map((m) => compact({
        name: m.name,
        uri: m.uri && stringMatch(m.uri),
        method: m.method && stringMatch(m.method),
        headers: matchMap(m.headers),
        withoutHeaders: matchMap(m.withoutHeaders),
        queryParams: matchMap(m.queryParams),
        port: m.port,
        ignoreUriCase: m.ignoreUriCase || undefined,
      }))
      : undefined,
    // A lone destination gets all traffic whatever its weight: leave the weight out.
    route: r.route.length
      ? r.route.map((x) => compact({ destination: destination(x.to, x.subset, x.port, ns), weight: single ? undefined : x.weight }))
      : undefined,
    redirect: r.redirect && compact({ ...r.redirect }),
    rewrite: r.rewrite && compact({ ...r.rewrite }),
    timeout: d(r.timeout),
    retries: r.retries && compact({
      attempts: r.retries.attempts,
      perTryTimeout: d(r.retries.perTryTimeout),
      retryOn: r.retries.retryOn?.join(','),
    }),
    fault: r.fault && compact({
      delay: r.fault.delay && { fixedDelay: r.fault.delay.fixedDelay.toIstio(), percentage: { value: r.fault.delay.percentage } },
      abort: r.fault.abort && { httpStatus: r.fault.abort.httpStatus, percentage: { value: r.fault.abort.percentage } },
    }),
    mirror: r.mirror && destination(r.mirror.to, r.mirror.subset, r.mirror.port, ns),
    mirrorPercentage: r.mirror && { value: r.mirror.percentage },
    headers: headerOps(r.headers),
  });
}

export function renderTrafficPolicy(p: TrafficPolicyModel | undefined): IstioTrafficPolicy | undefined {
  if (!p) return undefined;
  const cp = p.connectionPool;
  const od = p.outlierDetection;
  return compact({
    loadBalancer: p.loadBalancer ? { simple: p.loadBalancer } : p.consistentHash && { consistentHash: consistentHash(p.consistentHash) },
    connectionPool: cp && compact({
      tcp: cp.tcp && compact({
        maxConnections: cp.tcp.maxConnections,
        connectTimeout: d(cp.tcp.connectTimeout),
        tcpKeepalive: cp.tcp.tcpKeepalive && compact({ probes: cp.tcp.tcpKeepalive.probes, time: d(cp.tcp.tcpKeepalive.time), interval: d(cp.tcp.tcpKeepalive.interval) }),
      }),
      http: cp.http && compact({
        http1MaxPendingRequests: cp.http.http1MaxPendingRequests,
        http2MaxRequests: cp.http.http2MaxRequests,
        maxRequestsPerConnection: cp.http.maxRequestsPerConnection,
        maxRetries: cp.http.maxRetries,
        idleTimeout: d(cp.http.idleTimeout),
      }),
    }),
    outlierDetection: od && compact({
      consecutive5xxErrors: od.consecutive5xxErrors,
      consecutiveGatewayErrors: od.consecutiveGatewayErrors,
      interval: d(od.interval),
      baseEjectionTime: d(od.baseEjectionTime),
      maxEjectionPercent: od.maxEjectionPercent,
      minHealthPercent: od.minHealthPercent,
    }),
    tls: p.tls && { mode: p.tls },
  });
}

function consistentHash(h: ConsistentHashModel): IstioConsistentHash {
  return compact({
    httpHeaderName: h.httpHeaderName,
    httpCookie: h.httpCookie && compact({ name: h.httpCookie.name, path: h.httpCookie.path, ttl: d(h.httpCookie.ttl) }),
    useSourceIp: h.useSourceIp,
    httpQueryParameterName: h.httpQueryParameterName,
    ringHash: h.ringHash && compact({ ...h.ringHash }),
    maglev: h.maglev && compact({ ...h.maglev }),
  });
}

/** A ServiceEntry object for the model (also what the Gateway API renderer writes for an Istio mesh). */
export function renderServiceEntry(scope: Construct, id: string, e: ServiceEntryRendering): IstioServiceEntry {
  const m = e.model;
  return new IstioServiceEntry(scope, id, {
    metadata: { name: e.name, namespace: e.namespace },
    spec: compact({
      hosts: [...m.hosts],
      addresses: m.addresses.length ? [...m.addresses] : undefined,
      ports: m.ports.map((p) => compact({ number: p.number, protocol: p.protocol, name: p.name, targetPort: p.targetPort })),
      location: m.location,
      resolution: m.resolution,
      endpoints: m.endpoints.length
        ? m.endpoints.map((x) => compact({ address: x.address, ports: x.ports && { ...x.ports }, labels: x.labels && { ...x.labels }, weight: x.weight }))
        : undefined,
      exportTo: m.exportTo && [...m.exportTo],
    }),
  });
}

/** The default data plane: Istio sidecars and networking.istio.io objects. */
export class IstioRenderer implements MeshRenderer {
  readonly dataPlane = DataPlane.ISTIO;
  readonly rolloutTrafficRouter = true;

  enrollNamespace(ns: MeshNamespace): void {
    ns.resource.metadata.addLabel(ISTIO_INJECTION_LABEL, ns.injects ? 'enabled' : 'disabled');
  }

  enrollWorkload(w: MeshWorkload): void {
    const nsInjects = w.meshNamespace?.injects ?? false;
    if (w.inMesh && !nsInjects) {
      // Namespace not owned (or not injecting): opt the pod in. The label is what
      // Istio's webhook selects on since 1.10; the annotation serves older injectors.
      // Either way the webhook runs once per pod, so nothing is injected twice.
      w.addPodLabel(ISTIO_INJECT_POD_KEY, 'true');
      w.addPodAnnotation(ISTIO_INJECT_POD_KEY, 'true');
    } else if (!w.inMesh && nsInjects) {
      w.addPodLabel(ISTIO_INJECT_POD_KEY, 'false');
    }
  }

  renderRoute(scope: Construct, id: string, r: RouteRendering): void {
    const ns = r.namespace;
    new VirtualService(scope, id, {
      metadata: { name: r.name, namespace: ns },
      spec: compact({
        hosts: r.model.hosts.map((h) => (typeof h === 'string' ? h : hostFor(h, ns))),
        gateways: r.model.gateways.length ? [...r.model.gateways] : undefined,
        http: r.model.http.map((rule) => renderHttpRoute(rule, ns)),
      }),
    });
  }

  renderDestinationPolicy(scope: Construct, id: string, p: DestinationPolicyRendering): void {
    new DestinationRule(scope, id, {
      metadata: { name: p.name, namespace: p.namespace },
      spec: compact({
        host: hostFor(p.service, p.namespace),
        trafficPolicy: renderTrafficPolicy(p.trafficPolicy),
        subsets: p.subsets.length
          ? p.subsets.map((s) => compact({ name: s.name, labels: { ...s.labels }, trafficPolicy: renderTrafficPolicy(s.trafficPolicy) }))
          : undefined,
      }),
    });
  }

  renderServiceEntry(scope: Construct, id: string, e: ServiceEntryRendering): void {
    renderServiceEntry(scope, id, e);
  }

  /** Istio traffic routing: the VirtualService's route and the DestinationRule's subsets. */
  renderRollout(scope: Construct, id: string, r: RolloutRendering): void {
    renderArgoRollout(scope, id, r, 'istio');
  }

  /** A Telemetry in Istio's root namespace: every proxy of the mesh reports to the provider (meshConfig names its address). */
  renderTracing(scope: Construct, id: string, t: TracingRendering): void {
    new Telemetry(scope, id, {
      metadata: { name: 'mesh-default', namespace: t.rootNamespace },
      spec: { tracing: [{ providers: [{ name: t.providerName }], randomSamplingPercentage: t.samplingPercentage }] },
    });
  }

  renderGateway(scope: Construct, id: string, g: GatewayRendering): void {
    new Gateway(scope, id, {
      metadata: { name: g.name, namespace: g.namespace },
      spec: {
        selector: { ...g.selector },
        servers: g.servers.map((s) => compact({
          port: { number: s.port, name: s.name, protocol: s.protocol },
          hosts: [...s.hosts],
          tls: s.tls || s.httpsRedirect
            ? compact({ mode: s.tls?.mode, credentialName: s.tls?.credentialName, httpsRedirect: s.httpsRedirect || undefined })
            : undefined,
        })),
      },
    });
  }
}
