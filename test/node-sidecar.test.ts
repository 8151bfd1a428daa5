// The node-sidecar renderer: what every chart becomes on clusters without Istio.
import { Testing } from 'cdk8s';
import { CHART_VARIANTS } from '../charts';
import {
  CanaryRelease, DataPlane, DestinationPolicy, IngressGateway, MeshChart, MeshGateway, MeshWorkload, NO_PROXY, TrafficRoute,
} from '../constructs';
import { externalHost, RouteTable } from '../model';
import { parseRouteTable } from '../apps/sidecar/table';
import { find, K8sObject, meshSynth, ofKind, refusalsOf, synthVariant, variant } from './support/synth';

const sidecarVariants = CHART_VARIANTS.filter((v) => v.dataPlane === DataPlane.NODE_SIDECAR);
const containers = (d: K8sObject) => d.spec.template.spec.containers as Array<Record<string, any>>;
const tableOf = (cm: K8sObject): RouteTable => parseRouteTable(cm.data['routes.json'], `${cm.metadata.namespace ?? ''}/${cm.metadata.name}`);
const synth = (chart: MeshChart) => meshSynth(chart);
const sidecarChart = (props: ConstructorParameters<typeof MeshChart>[2] = {}) =>
  new MeshChart(Testing.app(), 'c', { dataPlane: DataPlane.NODE_SIDECAR, ...props });

describe.each(sidecarVariants.map((v) => [v.id, v]))('%s', (_id, v) => {
  const objs = synthVariant(v);

  test('has no Istio objects, labels or annotations', () => {
    expect(objs.filter((o) => o.apiVersion.includes('istio.io'))).toEqual([]);
    const text = JSON.stringify(objs);
    expect(text).not.toMatch(/istio-injection|sidecar\.istio\.io/);
  });

  test('every pod in the mesh runs the proxy first, with the route table mounted and the proxy env on its apps', () => {
    const meshPods = ofKind(objs, 'Deployment').filter((d) => d.spec.template.metadata.annotations?.['mesh.cdk8s.io/proxy'] === 'node-sidecar');
    // Exactly the pods Istio would inject in the same chart.
    const istio = synthVariant(variant(v.entry.name));
    const injecting = new Set(ofKind(istio, 'Namespace').filter((n) => n.metadata.labels?.['istio-injection'] === 'enabled').map((n) => n.metadata.name));
    const istioInjected = ofKind(istio, 'Deployment').filter((d) => {
      const marker = d.spec.template.metadata.labels?.['sidecar.istio.io/inject'];
      return marker === 'true' || (marker !== 'false' && injecting.has(d.metadata.namespace!));
    });
    expect(meshPods.map((d) => d.metadata.name).sort()).toEqual(istioInjected.map((d) => d.metadata.name).sort());
    for (const d of meshPods) {
      const [proxy, ...apps] = containers(d);
      expect(proxy.name).toBe('mesh-proxy');
      // The app's own scrape target (productpage's /metrics) moves behind the proxy's stats port, merged there as Istio's agent does.
      const istioAnn = find(istio, 'Deployment', d.metadata.name, d.metadata.namespace).spec.template.metadata.annotations ?? {};
      const merge = istioAnn['prometheus.io/scrape'] === 'true' ? ['--merge-metrics', `http://127.0.0.1:${istioAnn['prometheus.io/port']}${istioAnn['prometheus.io/path']}`] : [];
      expect(proxy.args).toEqual(['--config', '/etc/mesh-proxy/routes.json', '--endpoints', 'kubernetes', ...merge]);
      // Istio's injector's scrape annotations, and who the proxy is in Istio's source_* labels.
      expect(d.spec.template.metadata.annotations).toMatchObject({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '15020', 'prometheus.io/path': '/stats/prometheus' });
      expect(proxy.ports).toContainEqual({ containerPort: 15020, name: 'mesh-stats' });
      const labels = d.spec.template.metadata.labels;
      expect(proxy.env).toEqual(expect.arrayContaining([
        { name: 'MESH_WORKLOAD_NAME', value: d.metadata.name }, { name: 'MESH_APP', value: labels.app }, { name: 'MESH_VERSION', value: labels.version },
      ]));
      expect(proxy.volumeMounts).toEqual([
        { mountPath: '/etc/mesh-proxy', name: 'mesh-routes', readOnly: true },
        { mountPath: '/var/run/secrets/mesh-proxy', name: 'mesh-proxy-token', readOnly: true },
      ]);
      // The token is the proxy's alone: no automounted token, no token volume in the apps.
      expect(d.spec.template.spec.automountServiceAccountToken).toBe(false);
      for (const app of apps) expect(JSON.stringify(app.volumeMounts ?? [])).not.toContain('mesh-proxy-token');
      // The pod's account may list and watch EndpointSlices in its own namespace (and every one with Services).
      const account = d.spec.template.spec.serviceAccountName;
      expect(account).toBeDefined();
      const binding = find(objs, 'RoleBinding', 'mesh-proxy-endpoints', d.metadata.namespace);
      expect(binding.subjects).toContainEqual({ kind: 'ServiceAccount', name: account, namespace: d.metadata.namespace ?? 'default' });
      expect(proxy.readinessProbe.httpGet).toMatchObject({ path: '/healthz/ready', port: 15000 });
      expect(proxy.lifecycle.postStart.exec.command).toEqual(['node', '/app/main.js', 'wait']);
      // Proxy and app wait 5 s before their SIGTERM while the pod leaves the endpoints.
      expect(proxy.lifecycle.preStop).toEqual({ httpGet: { path: '/prestop/5', port: 15000, scheme: 'HTTP' } });
      expect(d.spec.template.spec.volumes).toContainEqual({ name: 'mesh-routes', configMap: { name: 'mesh-routes' } });
      for (const app of apps) {
        expect(app.lifecycle).toEqual({ preStop: { httpGet: { path: '/prestop/5', port: 15000, scheme: 'HTTP' } } });
        expect(app.env).toEqual(expect.arrayContaining([
          { name: 'HTTP_PROXY', value: 'http://127.0.0.1:15001' }, { name: 'http_proxy', value: 'http://127.0.0.1:15001' },
          { name: 'NO_PROXY', value: NO_PROXY }, { name: 'no_proxy', value: NO_PROXY },
        ]));
      }
      // The ConfigMap lives in the pod's own namespace (pods cannot mount another's).
      find(objs, 'ConfigMap', 'mesh-routes', d.metadata.namespace);
    }
  });

  test('each route table passes the proxy\'s own validation and names only Services of the chart', () => {
    const maps = ofKind(objs, 'ConfigMap').filter((c) => c.metadata.name === 'mesh-routes');
    if (maps.length === 0) {
      // Nothing in the mesh (the seeds' first steps): no proxy anywhere, and no rules to carry.
      expect(JSON.stringify(objs)).not.toContain('mesh-proxy');
      expect(ofKind(synthVariant(variant(v.entry.name)), 'VirtualService')).toEqual([]);
      return;
    }
    const tables = maps.map(tableOf);
    for (const t of tables) expect(t).toEqual(tables[0]); // one mesh-wide table
    const known = new Set(tables[0].services.map((s) => s.host));
    const serviceHosts = ofKind(objs, 'Service').map((s) => `${s.metadata.name}.${s.metadata.namespace ?? 'default'}.svc.cluster.local`);
    expect([...known].sort()).toEqual([...serviceHosts].sort());
    for (const vh of tables[0].virtualHosts) {
      for (const r of vh.routes) for (const d of r.destinations) expect(known).toContain(d.host);
    }
  });
});

describe('node-sidecar rendering', () => {
  test('endpoint access: a Role that lists and watches EndpointSlices only, in each namespace with Services, bound to every proxy\'s account', () => {
    const c = sidecarChart();
    new MeshWorkload(c, 'api', { app: 'api', image: 'api:1', port: 8080, namespace: 'backend', mesh: false });
    new MeshWorkload(c, 'web', { app: 'web', image: 'web:1', port: 8080, namespace: 'front' });
    const objs = synth(c);
    for (const ns of ['backend', 'front']) {
      expect(find(objs, 'Role', 'mesh-proxy-endpoints', ns).rules).toEqual([{ apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] }]);
      expect(find(objs, 'RoleBinding', 'mesh-proxy-endpoints', ns)).toMatchObject({
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'mesh-proxy-endpoints' },
        subjects: [{ kind: 'ServiceAccount', name: 'mesh-proxy', namespace: 'front' }],
      });
    }
    // The account the web pod runs as: made here, with no token automounted for other pods that use it.
    expect(find(objs, 'ServiceAccount', 'mesh-proxy', 'front').automountServiceAccountToken).toBe(false);
    expect(ofKind(objs, 'ServiceAccount').filter((a) => a.metadata.namespace === 'backend')).toEqual([]);
    const web = find(objs, 'Deployment', 'web', 'front');
    expect(web.spec.template.spec.serviceAccountName).toBe('mesh-proxy');
    expect(web.spec.template.spec.volumes).toContainEqual({
      name: 'mesh-proxy-token',
      projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3600 } }, { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }], optional: true } }] },
    });
  });

  test('a DestinationPolicy\'s traffic policy reaches the route table: the Service\'s, and each subset\'s merged over it', () => {
    const c = sidecarChart();
    const web = new CanaryRelease(c, 'web', {
      app: 'web', port: 8080, namespace: 'shop', stable: { version: 'v1', image: 'web:1' }, canary: { version: 'v2', image: 'web:2' }, canaryWeight: 10,
      trafficPolicy: {
        consistentHash: { httpCookie: { name: 'sid', path: '/', ttl: '1h' }, maglev: { tableSize: 65537 } },
        connectionPool: { tcp: { maxConnections: 1, connectTimeout: '250ms', tcpKeepalive: { time: '30s' } }, http: { http1MaxPendingRequests: 1, idleTimeout: '2s' } },
        outlierDetection: { consecutive5xxErrors: 3, interval: '1s', baseEjectionTime: '30s', maxEjectionPercent: 100 },
      },
    });
    expect(web).toBeDefined();
    const table = tableOf(find(synth(c), 'ConfigMap', 'mesh-routes', 'shop'));
    const policy = (h: string) => table.services.find((s) => s.host === h)!.policy;
    const expected = {
      consistentHash: { httpCookie: { name: 'sid', path: '/', ttlMs: 3_600_000 }, maglev: { tableSize: 65537 } },
      connectionPool: { maxConnections: 1, connectTimeoutMs: 250, tcpKeepalive: { timeMs: 30_000 }, http1MaxPendingRequests: 1, idleTimeoutMs: 2000 },
      outlierDetection: { consecutive5xxErrors: 3, intervalMs: 1000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 100 },
    };
    expect(policy('web.shop.svc.cluster.local')).toEqual(expected);
    expect(policy('web-v1.shop.svc.cluster.local')).toEqual(expected);
    expect(table.services.find((s) => s.host === 'web-v1.shop.svc.cluster.local')!.portNames).toEqual(['http']);

    // A subset's own load balancer replaces the rule's consistent hash (one field in Istio); the rest is inherited.
    const d = sidecarChart();
    const api = new MeshWorkload(d, 'api', { app: 'api', image: 'api:1', port: 8080 });
    new DestinationPolicy(d, 'dr', {
      name: 'api', service: api,
      trafficPolicy: { consistentHash: { useSourceIp: true }, outlierDetection: { consecutive5xxErrors: 2 } },
      subsets: [{ name: 'v1', labels: { app: 'api' }, trafficPolicy: { loadBalancer: 'ROUND_ROBIN' } }],
    });
    const t2 = tableOf(find(synth(d), 'ConfigMap', 'mesh-routes'));
    expect(t2.services.find((s) => s.host === 'api-v1.default.svc.cluster.local')!.policy).toEqual({ loadBalancer: 'ROUND_ROBIN', outlierDetection: { consecutive5xxErrors: 2 } });
    expect(t2.services.find((s) => s.host === 'api.default.svc.cluster.local')!.policy).toEqual({ consistentHash: { useSourceIp: true }, outlierDetection: { consecutive5xxErrors: 2 } });
  });

  test('a 70/30 canary routes to per-subset Services that select version pods', () => {
    const objs = synthVariant(CHART_VARIANTS.find((v) => v.id === 'springboot-canary-node-sidecar')!);
    const v1 = find(objs, 'Service', 'springbootapp-svc-v1', 'springistiodemo');
    expect(v1.spec.selector).toEqual({ app: 'springbootapp', version: 'v1' });
    expect(v1.spec.ports).toEqual([{ name: 'http', port: 8080, targetPort: 8080, protocol: 'TCP' }]);
    const table = tableOf(find(objs, 'ConfigMap', 'mesh-routes', 'istioclient'));
    expect(table.virtualHosts).toEqual([{
      name: 'springistiodemo/springbootapp-svc-vs',
      hosts: ['springbootapp-svc.springistiodemo.svc.cluster.local'],
      gateways: ['mesh'],
      routes: [{
        match: [],
        destinations: [
          { host: 'springbootapp-svc-v1.springistiodemo.svc.cluster.local', port: 8080, weight: 70 },
          { host: 'springbootapp-svc-v2.springistiodemo.svc.cluster.local', port: 8080, weight: 30 },
        ],
      }],
    }]);
  });

  test('the 0.002s timeout becomes 2 ms', () => {
    const objs = synthVariant(CHART_VARIANTS.find((v) => v.id === 'springboot-canary-timeout-node-sidecar')!);
    expect(tableOf(find(objs, 'ConfigMap', 'mesh-routes', 'springistiodemo')).virtualHosts[0].routes[0].timeoutMs).toBe(2);
  });

  test('a gateway becomes a proxy Deployment and a LoadBalancer Service, 80 -> 8080 for a non-root listener', () => {
    const objs = synthVariant(CHART_VARIANTS.find((v) => v.id === 'demo-gateway-node-sidecar')!);
    const d = find(objs, 'Deployment', 'demo-gateway');
    expect(containers(d)[0].args).toEqual(['--mode', 'gateway', '--gateway', 'default/demo-gateway', '--config', '/etc/mesh-proxy/routes.json', '--endpoints', 'kubernetes']);
    expect(containers(d)[0].ports).toContainEqual({ containerPort: 8080, name: 'http' });
    const svc = find(objs, 'Service', 'demo-gateway');
    expect(svc.spec).toMatchObject({ type: 'LoadBalancer', selector: { istio: 'ingressgateway' }, ports: [{ name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }] });
    const table = tableOf(find(objs, 'ConfigMap', 'mesh-routes'));
    expect(table.gateways).toEqual([{ name: 'default/demo-gateway', servers: [{ port: 80, listenPort: 8080, protocol: 'HTTP', hosts: ['*'] }] }]);
    expect(table.virtualHosts[0]).toMatchObject({ name: 'default/demoinfo', hosts: ['*'], gateways: ['default/demo-gateway'] });
  });

  test('options: image, gateway Service type, REGISTRY_ONLY, random pick; HTTPS gateways mount their Secret', () => {
    const chart = sidecarChart({ sidecar: { image: 'registry.example/proxy:1', gatewayServiceType: 'NodePort', outboundTrafficPolicy: 'REGISTRY_ONLY', pick: 'random' } });
    const web = new MeshWorkload(chart, 'web', { app: 'web', image: 'nginx', port: 8080 });
    const gw = new MeshGateway(chart, 'gw', {
      name: 'gw',
      servers: [
        { port: 80, hosts: ['shop.example.com'], httpsRedirect: true },
        { port: 443, protocol: 'HTTPS', hosts: ['shop.example.com'], tls: { mode: 'SIMPLE', credentialName: 'shop-cert' } },
      ],
    });
    new TrafficRoute(chart, 'vs', { name: 'shop', hosts: ['shop.example.com'], gateways: [gw.name], http: [{ route: [{ to: web }] }] });
    const objs = synth(chart);
    expect(containers(find(objs, 'Deployment', 'web'))[0]).toMatchObject({ image: 'registry.example/proxy:1', args: ['--config', '/etc/mesh-proxy/routes.json', '--endpoints', 'kubernetes', '--pick', 'random'] });
    expect(find(objs, 'Service', 'gw').spec.type).toBe('NodePort');
    const gwPod = find(objs, 'Deployment', 'gw').spec.template.spec;
    // Optional: a missing Secret takes down only the HTTPS server, not the pod.
    expect(gwPod.volumes).toContainEqual({ name: 'tls-shop-cert', secret: { secretName: 'shop-cert', optional: true } });
    expect(gwPod.containers[0].volumeMounts).toContainEqual({ mountPath: '/etc/mesh-proxy/tls/shop-cert', name: 'tls-shop-cert', readOnly: true });
    const table = tableOf(find(objs, 'ConfigMap', 'mesh-routes'));
    expect(table.outboundTrafficPolicy).toBe('REGISTRY_ONLY');
    expect(table.gateways[0].servers).toEqual([
      { port: 80, listenPort: 8080, protocol: 'HTTP', hosts: ['shop.example.com'], httpsRedirect: true },
      { port: 443, listenPort: 8443, protocol: 'HTTPS', hosts: ['shop.example.com'], tlsDir: '/etc/mesh-proxy/tls/shop-cert' },
    ]);
  });

  test('workloads outside the mesh get no proxy', () => {
    const chart = sidecarChart();
    new MeshWorkload(chart, 'legacy', { app: 'legacy', image: 'busybox', mesh: false });
    const d = find(synth(chart), 'Deployment', 'legacy');
    expect(containers(d).map((c) => c.name)).toEqual(['legacy']);
    expect(JSON.stringify(d)).not.toContain('HTTP_PROXY');
  });

  test('an app that asks to be scraped keeps its metrics, merged behind the proxy\'s stats port; a bad scrape port is refused', () => {
    const chart = sidecarChart();
    new MeshWorkload(chart, 'api', { app: 'api', image: 'x', port: 8080, podAnnotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9102', 'prometheus.io/path': 'stats' } });
    const d = find(synth(chart), 'Deployment', 'api');
    expect(containers(d)[0].args).toEqual(['--config', '/etc/mesh-proxy/routes.json', '--endpoints', 'kubernetes', '--merge-metrics', 'http://127.0.0.1:9102/stats']);
    expect(d.spec.template.metadata.annotations).toMatchObject({ 'prometheus.io/port': '15020', 'prometheus.io/path': '/stats/prometheus' });
    for (const port of ['http', '15020', '70000']) {
      const bad = sidecarChart();
      expect(() => new MeshWorkload(bad, 'api', { app: 'api', image: 'x', port: 8080, podAnnotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': port } }))
        .toThrow(`c/api: podAnnotations.prometheus.io/port is "${port}"; expected the app's metrics port (1-65535, not the proxy's 15000 or 15020)`);
    }
  });

  test('routes carry matches, retries with Istio\'s default retryOn, faults, mirror, rewrite and header operations', () => {
    const chart = sidecarChart();
    const a = new MeshWorkload(chart, 'a', { app: 'a', image: 'x', port: 8080 });
    const b = new MeshWorkload(chart, 'b', { app: 'b', image: 'x', port: 9090 });
    new TrafficRoute(chart, 'r', {
      name: 'a-vs', hosts: [a],
      http: [
        {
          match: [{ headers: { 'End-User': { exact: 'jason' } }, uri: { prefix: '/api' } }],
          route: [{ to: b }], rewrite: { uri: '/v2' }, retries: { attempts: 3, perTryTimeout: '100ms' },
          fault: { delay: { fixedDelay: '7s', percentage: 100 } }, mirror: { to: a, percentage: 10 },
          headers: { request: { set: { 'x-tier': 'gold' } } },
        },
        { route: [{ to: a }], fault: { abort: { httpStatus: 500, percentage: 50 } } },
      ],
    });
    const [r1, r2] = tableOf(find(synth(chart), 'ConfigMap', 'mesh-routes')).virtualHosts[0].routes;
    expect(r1).toEqual({
      match: [{ headers: { 'end-user': { kind: 'exact', value: 'jason' } }, uri: { kind: 'prefix', value: '/api' } }],
      destinations: [{ host: 'b.default.svc.cluster.local', port: 9090, weight: 100 }],
      rewrite: { uri: '/v2' },
      retries: { attempts: 3, perTryTimeoutMs: 100, retryOn: ['connect-failure', 'refused-stream', 'unavailable', 'cancelled', 'retriable-status-codes'] },
      fault: { delay: { fixedDelayMs: 7000, percentage: 100 } },
      mirror: { host: 'a.default.svc.cluster.local', port: 8080, percentage: 10 },
      headers: { request: { set: { 'x-tier': 'gold' } } },
    });
    expect(r2.fault).toEqual({ abort: { httpStatus: 500, percentage: 50 } });
  });

  test('subsets of a service the chart does not define are refused, naming the construct: both in one run', () => {
    const { problems } = refusalsOf(() => {
      const chart = sidecarChart();
      new DestinationPolicy(chart, 'dr', { name: 'ext', service: externalHost('api.example.com'), subsets: [{ name: 'v1' }] });
      new DestinationPolicy(chart, 'dr2', { name: 'x', service: { serviceName: 'elsewhere', subsetNames: ['v1'] }, subsets: [{ name: 'v1' }] });
      return chart;
    });
    expect(problems).toEqual([
      expect.stringMatching(/^c\/dr: service is "api.example.com"; expected a Service of this chart/),
      expect.stringMatching(/^c\/dr2: service is "elsewhere"; expected a Service named "elsewhere" defined in this chart/),
    ]);
  });

  test('gateways the node proxy cannot serve are refused, every one in one run: TLS passthrough, a namespace-restricted host, clashing listeners', () => {
    const { problems } = refusalsOf(() => {
      const chart = sidecarChart();
      new MeshGateway(chart, 'pt', { name: 'pt', servers: [{ port: 443, protocol: 'TLS', hosts: ['*'], tls: { mode: 'PASSTHROUGH' } }] });
      new MeshGateway(chart, 'nsh', { name: 'nsh', selector: { app: 'nsh' }, servers: [{ port: 80, hosts: ['shop/a.example.com'] }] });
      new MeshGateway(chart, 'both', { name: 'both', selector: { app: 'both' }, servers: [{ port: 80, hosts: ['*'] }, { port: 8080, name: 'http-alt', hosts: ['*'] }] });
      new MeshGateway(chart, 'one', { name: 'one', servers: [{ port: 80, hosts: ['a.example.com'] }] });
      new MeshGateway(chart, 'two', { name: 'two', servers: [{ port: 80, protocol: 'HTTPS', hosts: ['b.example.com'], tls: { mode: 'SIMPLE', credentialName: 'b' } }] });
      return chart;
    });
    expect(problems).toEqual([
      expect.stringMatching(/^c\/pt: servers\[0\]\.protocol is "TLS"; expected no server protocol TLS on the node-sidecar data plane \(the node-sidecar gateway terminates TLS to route HTTP; passing TLS through by SNI is not done\); instead: an HTTPS server \(tls.mode SIMPLE\) that terminates TLS, a Service of type LoadBalancer in front of the TLS workload, or DataPlane.ISTIO$/),
      expect.stringMatching(/^c\/pt: servers\[0\]\.tls\.mode is "PASSTHROUGH"; expected no server tls.mode PASSTHROUGH on the node-sidecar data plane/),
      expect.stringMatching(/^c\/nsh: servers\[0\]\.hosts\[0\] is "shop\/a.example.com"; expected no server host with a namespace \(ns\/host\) on the node-sidecar data plane/),
      expect.stringMatching(/^c\/both: servers\[1\]\.port is 8080; expected a port whose listener \(8080\) differs from servers\[0\]'s \(80\)/),
      expect.stringMatching(/^c\/two: servers\[0\]\.port is 80; expected a port that does not clash with gateway default\/one's HTTP server on port 80: both select the same gateway pods \(pt\)/),
    ]);
  });

  test('two gateways on one selector share one proxy Deployment and Service, as Istio\'s ingress pods do', () => {
    const chart = sidecarChart({ namespace: 'shop' });
    const web = new MeshWorkload(chart, 'web', { app: 'web', image: 'web:1', port: 8080 });
    new IngressGateway(chart, 'a', { name: 'a-gateway', hosts: ['a.example.com'], routes: [{ route: [{ to: web }] }] });
    new IngressGateway(chart, 'b', { name: 'b-gateway', hosts: ['b.example.com'], https: { credentialName: 'b-cert' }, routes: [{ route: [{ to: web }] }] });
    const objs = synth(chart);
    expect(ofKind(objs, 'Deployment').map((d) => d.metadata.name).sort()).toEqual(['a-gateway', 'web']);
    const pod = find(objs, 'Deployment', 'a-gateway', 'shop').spec.template.spec;
    expect(pod.containers[0].args).toEqual(['--mode', 'gateway', '--gateway', 'shop/a-gateway,shop/b-gateway', '--config', '/etc/mesh-proxy/routes.json', '--endpoints', 'kubernetes']);
    expect(pod.containers[0].ports).toEqual([
      { containerPort: 8080, name: 'http' }, { containerPort: 15000, name: 'mesh-admin' }, { containerPort: 15020, name: 'mesh-stats' }, { containerPort: 8443, name: 'https' },
    ]);
    expect(pod.volumes).toContainEqual({ name: 'tls-b-cert', secret: { secretName: 'b-cert', optional: true } });
    expect(find(objs, 'Service', 'a-gateway', 'shop').spec.ports).toEqual([
      { name: 'http', port: 80, targetPort: 8080, protocol: 'TCP' }, { name: 'https', port: 443, targetPort: 8443, protocol: 'TCP' },
    ]);
    expect(ofKind(objs, 'Service').map((x) => x.metadata.name)).not.toContain('b-gateway');
    const table = tableOf(find(objs, 'ConfigMap', 'mesh-routes'));
    expect(table.gateways.map((g) => g.name)).toEqual(['shop/a-gateway', 'shop/b-gateway']);
    // The same chart on Istio: two Gateway objects on one selector, as Istio allows.
    const istio = new MeshChart(Testing.app(), 'i', { namespace: 'shop' });
    const w2 = new MeshWorkload(istio, 'web', { app: 'web', image: 'web:1', port: 8080 });
    new IngressGateway(istio, 'a', { name: 'a-gateway', hosts: ['a.example.com'], routes: [{ route: [{ to: w2 }] }] });
    new IngressGateway(istio, 'b', { name: 'b-gateway', hosts: ['b.example.com'], routes: [{ route: [{ to: w2 }] }] });
    expect(ofKind(Testing.synth(istio) as K8sObject[], 'Gateway').map((g) => g.metadata.name)).toEqual(['a-gateway', 'b-gateway']);
  });

  test('a canary in a chart with a namespace: subset Services and table follow it', () => {
    const chart = sidecarChart({ namespace: 'shop' });
    new CanaryRelease(chart, 'cart', {
      app: 'cart', port: 8080, stable: { version: 'v1', image: 'cart:1' }, canary: { version: 'v2', image: 'cart:2' }, canaryWeight: 10,
    });
    const objs = synth(chart);
    expect(find(objs, 'Service', 'cart-v2').metadata.namespace).toBe('shop');
    const table = tableOf(find(objs, 'ConfigMap', 'mesh-routes'));
    expect(table.virtualHosts[0].hosts).toEqual(['cart.shop.svc.cluster.local']);
    expect(table.virtualHosts[0].routes[0].destinations.map((d) => [d.host, d.weight])).toEqual([
      ['cart-v1.shop.svc.cluster.local', 90], ['cart-v2.shop.svc.cluster.local', 10],
    ]);
  });
});
