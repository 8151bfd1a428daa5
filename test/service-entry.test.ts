// ServiceEntry: the construct's checks (Istio's validation), what each data plane makes of
// it, lint and plan, and the node sidecar's REGISTRY_ONLY admission of its hosts on loopback.
import { App, Testing } from 'cdk8s';
import {
  DataPlane, DestinationPolicy, MeshChart, MeshChartProps, MeshWorkload, ServiceEntry, ServiceEntryProps, TrafficRoute, validationErrorsOf,
} from '../constructs';
import { lintApp } from '../lint/sources';
import { Duration, RouteTable } from '../model';
import { chartPlan, planOfChart } from '../plan';
import { crdError, schemaError } from './support/schemas';
import { backend, startProxy, viaProxy } from './support/sidecar';
import { meshSynth, ofKind } from './support/synth';

const HTTPBIN: ServiceEntryProps = {
  name: 'httpbin-ext', hosts: ['httpbin.org'], resolution: 'DNS',
  ports: [{ number: 80, protocol: 'HTTP' }, { number: 443, protocol: 'HTTPS' }],
};

function chart(props: MeshChartProps = {}): MeshChart {
  return new MeshChart(Testing.app(), 'c', { namespace: 'shop', ...props });
}
function refusal(props: Partial<ServiceEntryProps>): string {
  try {
    new ServiceEntry(chart(), 'e', { ...HTTPBIN, ...props } as ServiceEntryProps);
  } catch (e) { return (e as Error).message; }
  return 'accepted';
}

describe('the construct checks a ServiceEntry as Istio validates it', () => {
  test.each([
    [{ hosts: ['*'] }, 'c/e: hosts[0] is "*"; expected a host name or "*.domain" wildcard: a ServiceEntry cannot stand for every host'],
    [{ hosts: ['Bad_Host'] }, 'c/e: hosts[0] is "Bad_Host"; expected a lower-case DNS name, optionally with a leading "*." wildcard'],
    [{ hosts: [] }, 'c/e: hosts is []; expected an array with at least 1 item(s)'],
    [{ addresses: ['10.0.0.0/8'] }, 'c/e: addresses[0] is "10.0.0.0/8"; expected an IP address: CIDR ranges are allowed only with resolution NONE or STATIC (it is DNS)'],
    [{ addresses: ['10.0.0.300'] }, 'c/e: addresses[0] is "10.0.0.300"; expected an IP address or a CIDR range (10.0.0.0/8)'],
    [{ resolution: 'NONE', endpoints: [{ address: '10.0.0.1' }] }, 'c/e: endpoints is ["10.0.0.1"]; expected no endpoints with resolution NONE (the proxy connects to the address the client asked for); use STATIC or DNS'],
    [{ resolution: 'STATIC' }, 'c/e: endpoints is []; expected at least one endpoint: resolution STATIC connects only to the endpoints listed'],
    [{ resolution: 'STATIC', endpoints: [{ address: 'db.example.com' }] }, 'c/e: endpoints[0].address is "db.example.com"; expected an IP address (resolution STATIC); a DNS name needs resolution DNS'],
    [{ hosts: ['*.example.com'] }, 'c/e: hosts[0] is "*.example.com"; expected a host name without wildcard: resolution DNS with no endpoints resolves the hosts themselves (use NONE for a wildcard)'],
    [{ ports: [{ number: 80, protocol: 'HTTP' }, { number: 80, protocol: 'HTTPS', name: 'web' }] }, 'c/e: ports[1].number is 80; expected a port number not used by another port of this entry'],
    [{ ports: [{ number: 80, protocol: 'HTTP', name: 'web' }, { number: 81, protocol: 'HTTP', name: 'web' }] }, 'c/e: ports[1].name is "web"; expected a port name not used by another port of this entry'],
    [{ ports: [{ number: 80, protocol: 'QUIC' as never }] }, 'c/e: ports[0].protocol is "QUIC"; expected one of HTTP, HTTPS, HTTP2, GRPC, TCP, TLS, MONGO, REDIS, MYSQL'],
    [{ endpoints: [{ address: 'eu.httpbin.org', ports: { grpc: 8443 } }] }, 'c/e: endpoints[0].ports.grpc is 8443; expected a port name of this entry (http-80, https-443)'],
    [{ resolution: 'DNS_ROUND_ROBIN', endpoints: [{ address: 'a.example.com' }, { address: 'b.example.com' }] }, 'c/e: endpoints is 2; expected at most one endpoint with resolution DNS_ROUND_ROBIN'],
  ])('%j is refused', (props, message) => {
    expect(refusal(props as Partial<ServiceEntryProps>)).toBe(message);
  });

  test('a wildcard entry is no destination by itself; entry.host() names one host it covers', () => {
    const c = chart();
    const wiki = new ServiceEntry(c, 'wiki', { name: 'wiki', hosts: ['*.wikipedia.org'], ports: [{ number: 443, protocol: 'TLS' }] });
    expect(() => new TrafficRoute(c, 'r', { name: 'r', hosts: ['en.wikipedia.org'], http: [{ route: [{ to: wiki }] }] }))
      .toThrow('c/r: http[0].route[0].to is "*.wikipedia.org"; expected a destination with a Service: *.wikipedia.org is a wildcard of ServiceEntry wiki: route to one host of it (entry.host("api.wikipedia.org"))');
    expect(wiki.host('en.wikipedia.org')).toEqual({ serviceName: 'en.wikipedia.org', servicePorts: [443], serviceEntryRef: { name: 'wiki' } });
    expect(() => wiki.host('wikipedia.org')).toThrow('c/wiki: host() is "wikipedia.org"; expected one of the entry\'s hosts (*.wikipedia.org) or a name a wildcard of them covers');
  });
});

/** Istio's egress task (egress-control): httpbin.org with a 3 s timeout on calls to it. */
function egressChart(props: MeshChartProps): { app: App; chart: MeshChart } {
  const app = Testing.app();
  const c = new MeshChart(app, 'egress', { namespace: 'shop', ...props });
  new MeshWorkload(c, 'sleep', { app: 'sleep', image: 'curlimages/curl:8.8.0' });
  const httpbin = new ServiceEntry(c, 'httpbin', HTTPBIN);
  new ServiceEntry(c, 'wiki', { name: 'wikipedia', hosts: ['*.wikipedia.org'], ports: [{ number: 443, protocol: 'TLS', name: 'tls' }], exportTo: ['.'] });
  new ServiceEntry(c, 'db', {
    name: 'orders-db', hosts: ['db.internal.example'], addresses: ['10.20.0.0/16'], resolution: 'STATIC',
    ports: [{ number: 8080, protocol: 'HTTP', name: 'http' }], endpoints: [{ address: '10.20.0.5' }, { address: '10.20.0.6', ports: { http: 9090 } }],
  });
  new TrafficRoute(c, 'httpbin-timeout', { name: 'httpbin-ext', hosts: [httpbin], http: [{ timeout: Duration.seconds(3), route: [{ to: httpbin, port: 80 }] }] });
  new DestinationPolicy(c, 'httpbin-pool', { name: 'httpbin-ext', service: httpbin, trafficPolicy: { connectionPool: { tcp: { maxConnections: 10 } } } });
  return { app, chart: c };
}

describe('what each data plane makes of it', () => {
  test('Istio: ServiceEntries as written, valid against Istio\'s CRD; the route and policy name the external host', () => {
    const objs = meshSynth(egressChart({}).chart);
    const entries = ofKind(objs, 'ServiceEntry');
    expect(entries.map((e) => e.spec)).toEqual([
      { hosts: ['httpbin.org'], location: 'MESH_EXTERNAL', resolution: 'DNS', ports: [{ number: 80, protocol: 'HTTP', name: 'http-80' }, { number: 443, protocol: 'HTTPS', name: 'https-443' }] },
      { hosts: ['*.wikipedia.org'], location: 'MESH_EXTERNAL', resolution: 'NONE', ports: [{ number: 443, protocol: 'TLS', name: 'tls' }], exportTo: ['.'] },
      {
        hosts: ['db.internal.example'], addresses: ['10.20.0.0/16'], location: 'MESH_EXTERNAL', resolution: 'STATIC', ports: [{ number: 8080, protocol: 'HTTP', name: 'http' }],
        endpoints: [{ address: '10.20.0.5' }, { address: '10.20.0.6', ports: { http: 9090 } }],
      },
    ]);
    for (const o of objs) expect([o.kind, schemaError(o) ?? (o.apiVersion.includes('istio') ? crdError(o) : undefined)]).toEqual([o.kind, undefined]);
    expect(ofKind(objs, 'VirtualService')[0].spec.hosts).toEqual(['httpbin.org']);
    expect(ofKind(objs, 'DestinationRule')[0].spec.host).toBe('httpbin.org');
  });

  test('node sidecar: the route table lists the hosts, ports, protocols, endpoints and who sees them', () => {
    const objs = meshSynth(egressChart({ dataPlane: DataPlane.NODE_SIDECAR, sidecar: { outboundTrafficPolicy: 'REGISTRY_ONLY' } }).chart);
    const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'mesh-routes')!;
    const table = JSON.parse(cm.data['routes.json']) as RouteTable;
    expect(table.outboundTrafficPolicy).toBe('REGISTRY_ONLY');
    expect(table.services).toEqual([
      { host: 'httpbin.org', ports: [80, 443], portNames: ['http-80', 'https-443'], protocols: ['HTTP', 'HTTPS'], policy: { connectionPool: { maxConnections: 10 } }, external: { resolution: 'DNS' } },
      { host: '*.wikipedia.org', ports: [443], portNames: ['tls'], protocols: ['TLS'], external: { resolution: 'NONE', exportTo: ['shop'] } },
      {
        host: 'db.internal.example', ports: [8080], portNames: ['http'],
        external: { resolution: 'STATIC', endpoints: { 8080: [{ address: '10.20.0.5', port: 8080 }, { address: '10.20.0.6', port: 9090 }] }, addresses: ['10.20.0.0/16'] },
      },
    ]);
    expect(table.virtualHosts.map((v) => [v.hosts, v.routes[0].timeoutMs])).toEqual([[['httpbin.org'], 3000]]);
    // No Istio object on this plane; the route table carries it all.
    expect(ofKind(objs, 'ServiceEntry')).toEqual([]);
  });

  test('Gateway API: an Istio ServiceEntry for an Istio mesh; refused, with the reason, for a mesh without one', () => {
    const app = Testing.app();
    const c = new MeshChart(app, 'gw', { dataPlane: DataPlane.GATEWAY_API, gatewayApi: { mesh: 'istio-ambient' } });
    new ServiceEntry(c, 'httpbin', HTTPBIN);
    expect(ofKind(meshSynth(c), 'ServiceEntry').map((e) => e.spec.hosts)).toEqual([['httpbin.org']]);
    const app2 = new App();
    const l = new MeshChart(app2, 'gw', { dataPlane: DataPlane.GATEWAY_API, gatewayApi: { mesh: 'linkerd' } });
    new ServiceEntry(l, 'httpbin', HTTPBIN);
    expect(validationErrorsOf(app2)).toEqual([
      'gw/httpbin: dataPlane is "gateway-api with mesh \\"linkerd\\""; expected gatewayApi.mesh "istio" or "istio-ambient" for a ServiceEntry (Gateway API has no resource for external hosts; Istio\'s ServiceEntry is emitted for those meshes), or DataPlane.ISTIO or NODE_SIDECAR',
    ]);
  });
});

describe('Gateway API with an Istio mesh routes to ServiceEntry hosts as Istio reads them', () => {
  test('a ServiceEntry parentRef and a Hostname backendRef, valid against the Gateway API CRDs; refused with another mesh, saying why', () => {
    const build = (mesh: 'istio' | 'linkerd') => {
      const app = new App();
      const c = new MeshChart(app, 'gw', { namespace: 'shop', dataPlane: DataPlane.GATEWAY_API, gatewayApi: { mesh } });
      const httpbin = new ServiceEntry(c, 'httpbin', HTTPBIN);
      new TrafficRoute(c, 'r', { name: 'httpbin-ext', hosts: [httpbin], http: [{ timeout: Duration.seconds(3), route: [{ to: httpbin, port: 80 }] }] });
      return app;
    };
    const objs = meshSynth(build('istio').charts[0]);
    const route = ofKind(objs, 'HTTPRoute')[0];
    expect(route.spec.parentRefs).toEqual([{ group: 'networking.istio.io', kind: 'ServiceEntry', name: 'httpbin-ext' }]);
    expect(route.spec.rules[0].backendRefs).toEqual([{ group: 'networking.istio.io', kind: 'Hostname', name: 'httpbin.org', port: 80 }]);
    expect(crdError(route)).toBeUndefined();
    expect(validationErrorsOf(build('linkerd'))).toEqual(expect.arrayContaining([
      'gw/r: http[0].route[0].to is "httpbin.org"; expected a Service: httpbin.org is a ServiceEntry host, which only gatewayApi.mesh "istio" or "istio-ambient" routes to (mesh is "linkerd"); or DataPlane.ISTIO or NODE_SIDECAR',
    ]));
  });
});

describe('lint and plan see ServiceEntries on every plane', () => {
  test.each([DataPlane.ISTIO, DataPlane.NODE_SIDECAR])('%s: the external services table, the graph leads out of the cluster, and no unknown-host finding', (dataPlane) => {
    const { app, chart: c } = egressChart({ dataPlane });
    const { plan } = chartPlan(c);
    expect(plan.externals.map((x) => [x.serviceEntry, x.hosts, x.ports, x.resolution, x.endpoints])).toEqual([
      ['shop/httpbin-ext', ['httpbin.org'], ['80/HTTP', '443/HTTPS'], 'DNS', []],
      ['shop/orders-db', ['db.internal.example'], ['8080/HTTP'], 'STATIC', ['10.20.0.5', '10.20.0.6']],
      ['shop/wikipedia', ['*.wikipedia.org'], ['443/TLS'], 'NONE', []],
    ]);
    expect(lintApp(app).filter((f) => /httpbin/.test(f.message))).toEqual([]);
  });

  test('the Markdown plan has the table and a cylinder for the entry behind the routed host', () => {
    const { chart: c } = egressChart({});
    const md = planOfChart(c);
    expect(md).toContain('| shop/httpbin-ext | httpbin.org | 80/HTTP, 443/HTTPS | MESH_EXTERNAL | DNS | the hosts, by DNS | every namespace |');
    expect(md).toContain('| shop/wikipedia | *.wikipedia.org | 443/TLS | MESH_EXTERNAL | NONE | the address the client asked for | . |');
    expect(md).toMatch(/n\d+\[\("ServiceEntry shop\/httpbin-ext \(outside the mesh, DNS\)"\)\]/);
  });
});

describe('node sidecar: REGISTRY_ONLY admits ServiceEntry hosts, wildcards and addresses on their ports', () => {
  const base = (services: RouteTable['services']): RouteTable => ({
    apiVersion: 'mesh.cdk8s.io/v1alpha1', kind: 'RouteTable', clusterDomain: 'cluster.local', outboundTrafficPolicy: 'REGISTRY_ONLY',
    services, virtualHosts: [], gateways: [],
  });

  test('exact host, wildcard, CIDR, exportTo and STATIC endpoints', async () => {
    const api = await backend('api');
    const db = await backend('db');
    const p = await startProxy(base([
      { host: 'api.example.com', ports: [api.port], external: { resolution: 'DNS' } },
      { host: '*.example.org', ports: [api.port], external: { resolution: 'NONE' } },
      { host: 'nets.example', ports: [api.port], external: { resolution: 'NONE', addresses: ['127.0.0.0/8'] } },
      { host: 'hidden.example.com', ports: [api.port], external: { resolution: 'DNS', exportTo: ['other'] } },
      { host: 'db.example.net', ports: [5000], external: { resolution: 'STATIC', endpoints: { 5000: [{ address: '127.0.0.1', port: db.port }] } } },
    ]), ['--resolve', `api.example.com:${api.port}=127.0.0.1:${api.port}`, '--resolve', `en.example.org:${api.port}=127.0.0.1:${api.port}`, '--namespace', 'shop']);
    try {
      expect((await viaProxy(p.port, `http://api.example.com:${api.port}/get`)).body).toBe('api');
      expect((await viaProxy(p.port, `http://en.example.org:${api.port}/get`)).body).toBe('api');
      expect((await viaProxy(p.port, `http://127.0.0.1:${api.port}/get`)).body).toBe('api');
      // Another port of an admitted host, a name the wildcard does not cover, an entry exported elsewhere: 502 with the reason.
      const otherPort = await viaProxy(p.port, `http://api.example.com:${db.port}/get`);
      expect([otherPort.status, otherPort.body.trim()]).toEqual([502, `mesh-proxy: port ${db.port} is not a port of service api.example.com (it has ${api.port}) and outboundTrafficPolicy is REGISTRY_ONLY`]);
      expect((await viaProxy(p.port, `http://example.org:${api.port}/get`)).status).toBe(502);
      const hidden = await viaProxy(p.port, `http://hidden.example.com:${api.port}/get`);
      expect([hidden.status, hidden.body.trim()]).toEqual([502, 'mesh-proxy: hidden.example.com is not a service of this mesh and outboundTrafficPolicy is REGISTRY_ONLY']);
      // STATIC: the entry's port 5000 is served by its endpoint, not by DNS (db.example.net resolves nowhere).
      expect((await viaProxy(p.port, 'http://db.example.net:5000/q')).body).toBe('db');
    } finally {
      await p.stop();
      await api.close();
      await db.close();
    }
  });

  test('a table with a bad address or an endpoint on an undeclared port is refused at start, naming the place', async () => {
    await expect(startProxy(base([{ host: 'a.example.com', ports: [80], external: { resolution: 'NONE', addresses: ['300.1.1.1/8'] } }])))
      .rejects.toThrow(/\/services\/0\/external\/addresses\/0: "300.1.1.1\/8" is not an IP address or CIDR range/);
    await expect(startProxy(base([{ host: 'a.example.com', ports: [80], external: { resolution: 'STATIC', endpoints: { 81: [{ address: '10.0.0.1', port: 81 }] } } }])))
      .rejects.toThrow(/\/services\/0\/external\/endpoints\/81: not a port of a.example.com \(80\)/);
    await expect(startProxy(base([{ host: '*.example.com', ports: [80] }])))
      .rejects.toThrow(/\/services\/0\/host: \*.example.com is a wildcard; only a ServiceEntry's host \(with "external"\) may be/);
  });
});

