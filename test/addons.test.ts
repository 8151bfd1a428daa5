// PrometheusAddon and KialiAddon against the facts of Istio's samples/addons/prometheus.yaml
// and kiali.yaml (istio/istio master, 2026-08: images, scrape jobs, RBAC, Services, ports),
// with this project's secure defaults; every object checked against the Kubernetes schemas.
import { Testing } from 'cdk8s';
import { parse } from 'yaml';
import { DataPlane, JaegerAddon, KialiAddon, MeshChart, MeshChartProps, PrometheusAddon } from '../constructs';
import { schemaError } from './support/schemas';
import { find, K8sObject, meshSynth, ofKind, refusalsOf } from './support/synth';

const chart = (props: MeshChartProps = {}) => new MeshChart(Testing.app(), 'obs', props);
const containerOf = (d: K8sObject, name: string) => d.spec.template.spec.containers.find((c: { name: string }) => c.name === name);

/** Non-root, no escalation, all capabilities dropped, RuntimeDefault seccomp, read-only root, requests and limits. */
function expectRestricted(d: K8sObject): void {
  for (const c of d.spec.template.spec.containers) {
    expect([c.name, c.securityContext]).toEqual([c.name, expect.objectContaining({
      allowPrivilegeEscalation: false, privileged: false, readOnlyRootFilesystem: true, runAsNonRoot: true,
      capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
    })]);
    expect(Object.keys(c.resources.requests).sort()).toEqual(['cpu', 'memory']);
    expect(Object.keys(c.resources.limits).sort()).toEqual(['cpu', 'memory']);
  }
}

describe('PrometheusAddon, as Istio\'s addon', () => {
  const c = chart();
  const prometheus = new PrometheusAddon(c, 'prometheus');
  const objs = meshSynth(c);

  test('its objects, each valid against the Kubernetes schema', () => {
    expect(objs.map((o) => `${o.kind} ${o.metadata.name}`).sort()).toEqual([
      'ClusterRole prometheus', 'ClusterRoleBinding prometheus', 'ConfigMap prometheus', 'Deployment prometheus', 'Service prometheus', 'ServiceAccount prometheus',
    ]);
    for (const o of objs) expect([o.kind, schemaError(o)]).toEqual([o.kind, undefined]);
    expect(prometheus.url).toBe('http://prometheus.istio-system.svc.cluster.local:9090');
  });

  test('the addon\'s images, arguments, port, probes, Recreate and 300 s grace; secure by default', () => {
    const d = find(objs, 'Deployment', 'prometheus', 'istio-system');
    expect(d.spec.strategy).toEqual({ type: 'Recreate' });
    expect(d.spec.template.spec.terminationGracePeriodSeconds).toBe(300);
    expect(d.spec.template.metadata.labels['sidecar.istio.io/inject']).toBe('false');
    const server = containerOf(d, 'prometheus-server');
    expect(server.image).toBe('docker.io/prom/prometheus:v3.10.0');
    expect(server.args).toEqual(['--storage.tsdb.retention.time=15d', '--config.file=/etc/config/prometheus.yml', '--storage.tsdb.path=/data',
      '--web.console.libraries=/etc/prometheus/console_libraries', '--web.console.templates=/etc/prometheus/consoles', '--web.enable-lifecycle']);
    expect(server.ports).toEqual([{ containerPort: 9090, name: 'http' }]);
    expect([server.readinessProbe.httpGet.path, server.livenessProbe.httpGet.path]).toEqual(['/-/ready', '/-/healthy']);
    const reload = containerOf(d, 'prometheus-server-configmap-reload');
    expect(reload.image).toBe('ghcr.io/prometheus-operator/prometheus-config-reloader:v0.89.0');
    expect(reload.args).toEqual(['--watched-dir=/etc/config', '--listen-address=0.0.0.0:8080', '--reload-url=http://127.0.0.1:9090/-/reload']);
    expectRestricted(d);
    expect(find(objs, 'Service', 'prometheus', 'istio-system').spec.ports).toEqual([{ name: 'http', port: 9090, targetPort: 9090, protocol: 'TCP' }]);
  });

  test('the addon\'s ClusterRole (discovery of nodes, Services, endpoints, pods; /metrics) and its scrape jobs', () => {
    expect(find(objs, 'ClusterRole', 'prometheus').rules).toEqual([
      { apiGroups: [''], resources: ['nodes', 'nodes/metrics', 'services', 'endpoints', 'pods', 'ingresses', 'configmaps'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['networking.k8s.io'], resources: ['ingresses/status', 'ingresses'], verbs: ['get', 'list', 'watch'] },
      { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['get', 'list', 'watch'] },
      { nonResourceURLs: ['/metrics'], verbs: ['get'] },
    ]);
    const config = parse(find(objs, 'ConfigMap', 'prometheus', 'istio-system').data['prometheus.yml']);
    expect(config.global).toEqual({ evaluation_interval: '1m', scrape_interval: '15s', scrape_timeout: '10s' });
    expect(config.scrape_configs.map((j: { job_name: string }) => j.job_name)).toEqual([
      'kubernetes-api-servers', 'kubernetes-nodes', 'kubernetes-nodes-cadvisor', 'kubernetes-pods', 'kubernetes-pods-slow',
      'kubernetes-service-endpoints', 'kubernetes-service-endpoints-slow', 'kubernetes-services', 'prometheus', 'prometheus-pushgateway',
    ]);
    // The probe job sends annotated Services to the addon's blackbox exporter.
    const probe = config.scrape_configs.find((j: { job_name: string }) => j.job_name === 'kubernetes-services');
    expect([probe.metrics_path, probe.params, probe.relabel_configs[2]]).toEqual(['/probe', { module: ['http_2xx'] }, { replacement: 'blackbox', target_label: '__address__' }]);
    // The job that reads Istio's (and the node sidecar's) scrape annotations on pods.
    const pods = config.scrape_configs.find((j: { job_name: string }) => j.job_name === 'kubernetes-pods');
    expect(pods.relabel_configs[0]).toEqual({ action: 'keep', regex: true, source_labels: ['__meta_kubernetes_pod_annotation_prometheus_io_scrape'] });
    expect(pods.relabel_configs.map((r: { target_label?: string }) => r.target_label).filter(Boolean))
      .toEqual(['__scheme__', '__metrics_path__', '__address__', '__address__', 'namespace', 'pod', 'node']);
  });

  test('options: retention, scrape interval, NodePort, no reloader; refusals name the field', () => {
    const c2 = chart();
    new PrometheusAddon(c2, 'p', { retention: '6h', scrapeInterval: '5s', configReloader: false, ui: { serviceType: 'NodePort', nodePort: 30090 } });
    const o = meshSynth(c2);
    const d = find(o, 'Deployment', 'prometheus');
    expect(d.spec.template.spec.containers.map((x: { name: string }) => x.name)).toEqual(['prometheus-server']);
    expect(containerOf(d, 'prometheus-server').args[0]).toBe('--storage.tsdb.retention.time=6h');
    // The addon's 10 s timeout would be above a 5 s interval, which Prometheus refuses (found running it): the timeout follows.
    expect(parse(find(o, 'ConfigMap', 'prometheus').data['prometheus.yml']).global).toMatchObject({ scrape_interval: '5s', scrape_timeout: '5s' });
    expect(parse(find(meshSynth((() => { const c3 = chart(); new PrometheusAddon(c3, 'p', { scrapeInterval: '1m' }); return c3; })()), 'ConfigMap', 'prometheus').data['prometheus.yml']).global)
      .toMatchObject({ scrape_interval: '1m', scrape_timeout: '10s' });
    expect(find(o, 'Service', 'prometheus').spec).toEqual(expect.objectContaining({ type: 'NodePort', ports: [expect.objectContaining({ nodePort: 30090 })] }));
    expect(refusalsOf(() => new PrometheusAddon(chart(), 'p', { retention: 'forever' })).message).toMatch(/^obs\/p: retention is "forever"; expected a Prometheus duration/);
    expect(refusalsOf(() => new PrometheusAddon(chart(), 'p', { ui: { nodePort: 30090 } })).message).toMatch(/^obs\/p: ui.nodePort is 30090; expected no nodePort with serviceType ClusterIP/);
  });
});

describe('KialiAddon, as Istio\'s addon, pointed at the Prometheus and Jaeger addons', () => {
  const build = (viewOnly?: boolean) => {
    const c = chart();
    const prometheus = new PrometheusAddon(c, 'prometheus');
    const jaeger = new JaegerAddon(c, 'jaeger');
    new KialiAddon(c, 'kiali', { prometheus, jaeger, ...(viewOnly === undefined ? {} : { viewOnly }) });
    return meshSynth(c).filter((o) => o.metadata.name.startsWith('kiali'));
  };
  const objs = build();

  test('its objects, valid; the addon\'s image, command, ports, probes and Service', () => {
    expect(objs.map((o) => `${o.kind} ${o.metadata.name}`).sort()).toEqual([
      'ClusterRole kiali-viewer', 'ClusterRoleBinding kiali', 'ConfigMap kiali', 'Deployment kiali', 'Service kiali', 'ServiceAccount kiali',
    ]);
    for (const o of objs) expect([o.kind, schemaError(o)]).toEqual([o.kind, undefined]);
    const d = find(objs, 'Deployment', 'kiali', 'istio-system');
    const k = containerOf(d, 'kiali');
    expect(k.image).toBe('quay.io/kiali/kiali:v2.27');
    expect(k.command).toEqual(['/opt/kiali/kiali', '-config', '/kiali-configuration/config.yaml']);
    expect(k.ports).toEqual([{ containerPort: 20001, name: 'api-port' }, { containerPort: 9090, name: 'http-metrics' }]);
    expect([k.readinessProbe, k.livenessProbe, k.startupProbe].map((p) => p.httpGet.path)).toEqual(['/kiali/healthz', '/kiali/healthz', '/kiali/healthz']);
    expect(d.spec.template.metadata.annotations).toEqual(expect.objectContaining({ 'prometheus.io/scrape': 'true', 'prometheus.io/port': '9090' }));
    expectRestricted(d);
    expect(find(objs, 'Service', 'kiali').spec.ports).toEqual([
      { name: 'http', port: 20001, targetPort: 20001, protocol: 'TCP', appProtocol: 'http' },
      { name: 'http-metrics', port: 9090, targetPort: 9090, protocol: 'TCP', appProtocol: 'http' },
    ]);
  });

  test('configuration: Prometheus and Jaeger of the addons, web root /kiali, Istio\'s root namespace', () => {
    const config = parse(find(objs, 'ConfigMap', 'kiali').data['config.yaml']);
    expect(config.external_services.prometheus).toEqual({ url: 'http://prometheus.istio-system.svc.cluster.local:9090' });
    expect(config.external_services.tracing).toEqual({ enabled: true, provider: 'jaeger', use_grpc: false, internal_url: 'http://tracing.istio-system.svc.cluster.local:80/jaeger' });
    expect(config.external_services.istio).toEqual({ root_namespace: 'istio-system' });
    expect(config.server).toEqual({ port: 20001, web_root: '/kiali', observability: { metrics: { enabled: true, port: 9090 } } });
    expect(config.deployment.view_only_mode).toBe(true);
  });

  test('view-only by default: read verbs only; viewOnly false gives the addon\'s role (edit Istio objects, port-forward)', () => {
    const verbs = (o: K8sObject[]) => [...new Set(find(o, 'ClusterRole', o.find((x) => x.kind === 'ClusterRole')!.metadata.name).rules.flatMap((r: { verbs: string[] }) => r.verbs))].sort();
    expect(verbs(objs)).toEqual(['create', 'get', 'list', 'watch']); // create: tokenreviews only
    const edit = build(false);
    expect(verbs(edit)).toEqual(['create', 'delete', 'get', 'list', 'patch', 'post', 'watch']);
    expect(find(edit, 'ClusterRoleBinding', 'kiali').roleRef.name).toBe('kiali');
    expect(parse(find(edit, 'ConfigMap', 'kiali').data['config.yaml']).deployment.view_only_mode).toBe(false);
  });

  test('refusals: a Prometheus that is not the addon; unknown props with the nearest name', () => {
    expect(refusalsOf(() => new KialiAddon(chart(), 'k', { prometheus: 'http://prom:9090' as never })).message).toMatch(/^obs\/k: prometheus is "http:\/\/prom:9090"; expected a PrometheusAddon/);
    expect(refusalsOf(() => new KialiAddon(chart(), 'k', { veiwOnly: true } as never)).message).toMatch(/did you mean "viewOnly"\?/);
  });
});

test('off Istio the addons write their namespace once (nothing else creates istio-system); with Istio they do not', () => {
  const namespaces = (props: MeshChartProps) => {
    const c = chart(props);
    const jaeger = new JaegerAddon(c, 'jaeger');
    new KialiAddon(c, 'kiali', { prometheus: new PrometheusAddon(c, 'prometheus'), jaeger });
    return ofKind(meshSynth(c), 'Namespace').map((n) => n.metadata.name);
  };
  expect(namespaces({})).toEqual([]);
  // The README's example: three addons in one chart, one Namespace (it was written three times, refused as duplicates).
  expect(namespaces({ dataPlane: DataPlane.NODE_SIDECAR })).toEqual(['istio-system']);
});

test('Prometheus and Kiali get their ServiceAccount token (they read the API); Jaeger does not', () => {
  const c = chart({ dataPlane: DataPlane.NODE_SIDECAR });
  const jaeger = new JaegerAddon(c, 'jaeger');
  new KialiAddon(c, 'kiali', { prometheus: new PrometheusAddon(c, 'prometheus'), jaeger });
  const o = meshSynth(c);
  expect(['prometheus', 'kiali', 'jaeger'].map((n) => [n, find(o, 'Deployment', n).spec.template.spec.automountServiceAccountToken]))
    .toEqual([['prometheus', true], ['kiali', true], ['jaeger', false]]);
});
