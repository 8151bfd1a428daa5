// The entrypoint of the local cluster's Prometheus image: Debian's Prometheus 2.42 is
// built without Kubernetes service discovery (its discovery/ has no kubernetes package),
// so `kubernetes_sd_configs` would not even parse. This wrapper stands in for that one
// piece and nothing else: it rewrites each `kubernetes_sd_configs` of the configuration
// the pod was given (PrometheusAddon's ConfigMap, unchanged) into an `http_sd_configs`
// served here, from the API server (the pod's ServiceAccount, as Prometheus itself would),
// with the `__meta_kubernetes_*` labels Prometheus's own discovery gives, so the addon's
// relabelling rules apply as written. Then it runs the real Prometheus on the result.
'use strict';
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const path = require('node:path');
const { spawn } = require('node:child_process');
const YAML = require('yaml');

const SD_PORT = 9999;
const REFRESH_MS = 5000;
const SA = '/var/run/secrets/kubernetes.io/serviceaccount';
const log = (msg, extra = {}) => process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), component: 'k8s-sd', msg, ...extra })}\n`);

const args = process.argv.slice(2);
const configArg = args.findIndex((a) => a.startsWith('--config.file'));
const configFile = configArg < 0 ? '/etc/prometheus/prometheus.yml' : args[configArg].includes('=') ? args[configArg].split('=')[1] : args[configArg + 1];
const dataArg = args.find((a) => a.startsWith('--storage.tsdb.path='));
const outDir = path.join(dataArg ? dataArg.split('=')[1] : '/tmp', '.k8s-sd');

// ------------------------------------------------------------------ the configuration
const config = YAML.parse(fs.readFileSync(configFile, 'utf8'), { merge: true });
const roles = new Set();
for (const job of config.scrape_configs ?? []) {
  const sds = job.kubernetes_sd_configs;
  if (!sds) continue;
  delete job.kubernetes_sd_configs;
  job.http_sd_configs = sds.map((sd) => {
    roles.add(sd.role);
    const ns = sd.namespaces?.names?.length ? `?namespaces=${sd.namespaces.names.join(',')}` : '';
    return { url: `http://127.0.0.1:${SD_PORT}/sd/${sd.role}${ns}`, refresh_interval: `${REFRESH_MS / 1000}s` };
  });
}
fs.mkdirSync(outDir, { recursive: true });
const translated = path.join(outDir, 'prometheus.yml');
fs.writeFileSync(translated, YAML.stringify(config, { aliasDuplicateObjects: false }));
if (configArg >= 0) {
  if (args[configArg].includes('=')) args[configArg] = `--config.file=${translated}`;
  else args[configArg + 1] = translated;
} else args.push(`--config.file=${translated}`);
log('kubernetes_sd_configs served as http_sd_configs', { roles: [...roles], config: translated });

// ------------------------------------------------------------------ the API server
const api = {
  host: process.env.KUBERNETES_SERVICE_HOST,
  port: process.env.KUBERNETES_SERVICE_PORT ?? '443',
  ca: fs.existsSync(`${SA}/ca.crt`) ? fs.readFileSync(`${SA}/ca.crt`) : undefined,
};
function get(p) {
  const token = fs.readFileSync(`${SA}/token`, 'utf8').trim();
  return new Promise((resolve, reject) => {
    const req = https.get({ host: api.host, port: api.port, path: p, ca: api.ca, headers: { authorization: `Bearer ${token}` }, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(body)) : reject(new Error(`GET ${p}: ${res.statusCode} ${body.slice(0, 200)}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${p}: timed out`)));
    req.on('error', reject);
  });
}

// Prometheus turns every character a label name cannot hold into "_".
const sanitize = (s) => s.replace(/[^a-zA-Z0-9_]/g, '_');
function mapLabels(prefix, m) {
  const out = {};
  for (const [k, v] of Object.entries(m ?? {})) {
    out[`${prefix}_${sanitize(k)}`] = v;
    out[`${prefix}present_${sanitize(k)}`] = 'true';
  }
  return out;
}
const M = '__meta_kubernetes_';
const objMeta = (kind, o) => ({ ...mapLabels(`${M}${kind}_label`, o.metadata.labels), ...mapLabels(`${M}${kind}_annotation`, o.metadata.annotations) });
const ready = (p) => String((p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'));

function podTargets(pod) {
  if (!pod.status?.podIP) return [];
  const owner = (pod.metadata.ownerReferences ?? []).find((r) => r.controller);
  const base = {
    [`${M}namespace`]: pod.metadata.namespace, [`${M}pod_name`]: pod.metadata.name, [`${M}pod_ip`]: pod.status.podIP,
    [`${M}pod_ready`]: ready(pod), [`${M}pod_phase`]: pod.status.phase ?? '', [`${M}pod_node_name`]: pod.spec.nodeName ?? '',
    [`${M}pod_host_ip`]: pod.status.hostIP ?? '', [`${M}pod_uid`]: pod.metadata.uid,
    ...(owner ? { [`${M}pod_controller_kind`]: owner.kind, [`${M}pod_controller_name`]: owner.name } : {}),
    ...objMeta('pod', pod),
  };
  const groups = [];
  for (const [init, list] of [[false, pod.spec.containers ?? []], [true, pod.spec.initContainers ?? []]]) {
    for (const c of list) {
      const cm = { ...base, [`${M}pod_container_name`]: c.name, [`${M}pod_container_image`]: c.image, [`${M}pod_container_init`]: String(init) };
      if (!c.ports?.length) {
        if (!init) groups.push({ targets: [pod.status.podIP], labels: cm });
        continue;
      }
      for (const p of c.ports) {
        groups.push({
          targets: [`${pod.status.podIP}:${p.containerPort}`],
          labels: { ...cm, [`${M}pod_container_port_name`]: p.name ?? '', [`${M}pod_container_port_number`]: String(p.containerPort), [`${M}pod_container_port_protocol`]: p.protocol ?? 'TCP' },
        });
      }
    }
  }
  return groups;
}

function serviceMeta(svc) {
  return { [`${M}service_name`]: svc.metadata.name, ...objMeta('service', svc) };
}

function serviceTargets(svc) {
  return (svc.spec.ports ?? []).map((p) => ({
    targets: [`${svc.metadata.name}.${svc.metadata.namespace}.svc:${p.port}`],
    labels: {
      [`${M}namespace`]: svc.metadata.namespace, ...serviceMeta(svc), [`${M}service_port_name`]: p.name ?? '',
      [`${M}service_port_number`]: String(p.port), [`${M}service_port_protocol`]: p.protocol ?? 'TCP',
      [`${M}service_cluster_ip`]: svc.spec.clusterIP ?? '', [`${M}service_type`]: svc.spec.type ?? 'ClusterIP',
    },
  }));
}

function endpointsTargets(ep, services, pods) {
  const svc = services.get(`${ep.metadata.namespace}/${ep.metadata.name}`);
  const groups = [];
  for (const s of ep.subsets ?? []) {
    for (const [isReady, addrs] of [[true, s.addresses ?? []], [false, s.notReadyAddresses ?? []]]) {
      for (const a of addrs) {
        for (const p of s.ports ?? []) {
          const pod = a.targetRef?.kind === 'Pod' ? pods.get(`${a.targetRef.namespace ?? ep.metadata.namespace}/${a.targetRef.name}`) : undefined;
          groups.push({
            targets: [`${a.ip}:${p.port}`],
            labels: {
              [`${M}namespace`]: ep.metadata.namespace, [`${M}endpoints_name`]: ep.metadata.name, ...objMeta('endpoints', ep),
              [`${M}endpoint_port_name`]: p.name ?? '', [`${M}endpoint_port_protocol`]: p.protocol ?? 'TCP', [`${M}endpoint_ready`]: String(isReady),
              ...(a.targetRef ? { [`${M}endpoint_address_target_kind`]: a.targetRef.kind, [`${M}endpoint_address_target_name`]: a.targetRef.name } : {}),
              ...(svc ? serviceMeta(svc) : {}),
              ...(pod ? { [`${M}pod_name`]: pod.metadata.name, [`${M}pod_ip`]: pod.status?.podIP ?? '', [`${M}pod_node_name`]: pod.spec.nodeName ?? '', ...objMeta('pod', pod) } : {}),
            },
          });
        }
      }
    }
  }
  return groups;
}

function nodeTargets(node) {
  const addrs = node.status?.addresses ?? [];
  const ip = (addrs.find((a) => a.type === 'InternalIP') ?? addrs[0])?.address;
  if (!ip) return [];
  const port = node.status?.daemonEndpoints?.kubeletEndpoint?.Port ?? 10250;
  const labels = { [`${M}node_name`]: node.metadata.name, ...objMeta('node', node) };
  for (const a of addrs) labels[`${M}node_address_${sanitize(a.type)}`] = a.address;
  return [{ targets: [`${ip}:${port}`], labels }];
}

// ------------------------------------------------------------------ the cache and the server
let cache = { pod: [], service: [], endpoints: [], node: [] };
let lastError;
async function refresh() {
  try {
    const [pods, services, endpoints, nodes] = await Promise.all([
      roles.has('pod') || roles.has('endpoints') ? get('/api/v1/pods') : { items: [] },
      roles.has('service') || roles.has('endpoints') ? get('/api/v1/services') : { items: [] },
      roles.has('endpoints') ? get('/api/v1/endpoints') : { items: [] },
      roles.has('node') ? get('/api/v1/nodes') : { items: [] },
    ]);
    const byKey = (items) => new Map(items.map((o) => [`${o.metadata.namespace}/${o.metadata.name}`, o]));
    const svcMap = byKey(services.items);
    const podMap = byKey(pods.items);
    cache = {
      pod: pods.items.flatMap(podTargets),
      service: services.items.flatMap(serviceTargets),
      endpoints: endpoints.items.flatMap((e) => endpointsTargets(e, svcMap, podMap)),
      node: nodes.items.flatMap(nodeTargets),
    };
    if (lastError) log('API server reachable again');
    lastError = undefined;
  } catch (e) {
    if (String(e) !== lastError) log('listing from the API server failed; the last targets stay', { error: String(e) });
    lastError = String(e);
  }
}

http.createServer((req, res) => {
  const u = new URL(req.url, 'http://localhost');
  const m = /^\/sd\/(pod|service|endpoints|node)$/.exec(u.pathname);
  if (!m) { res.writeHead(404).end(); return; }
  const only = u.searchParams.get('namespaces')?.split(',');
  const groups = cache[m[1]].filter((g) => !only || only.includes(g.labels[`${M}namespace`]));
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(groups));
}).listen(SD_PORT, '127.0.0.1', async () => {
  await refresh();
  setInterval(refresh, REFRESH_MS).unref();
  const child = spawn('/bin/prometheus', args, { stdio: 'inherit' });
  for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
});
