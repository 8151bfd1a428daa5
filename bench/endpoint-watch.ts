// `npm run bench:watch`: what the node sidecars' EndpointSlice watches cost the API server.
//
// Needs the local cluster (bash scripts/cluster/up.sh). In a namespace of its own it
// writes what the renderer writes for a proxy (ServiceAccount, Role, RoleBinding) and a
// Service over a Deployment of pause pods, then runs W watchers in this process, each the
// proxy's own KubernetesEndpoints with the account's token (one list and one watch each,
// as W proxies would hold). Per W it prints: the API server's RSS and CPU with the watches
// idle, and for a scale-up of P pods (and back to 0), the time until every watcher sees all
// P ready, and the API server's CPU seconds for it. W = BENCH_WATCHERS (default 1,50,200),
// P = BENCH_PODS (default 20). Cleans up after itself.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RouteTable } from '../model';
import { KubernetesEndpoints } from '../apps/sidecar/endpoints';

const CACHE = process.env.MESH_K8S_CACHE ?? '/var/cache/mesh-k8s';
const KUBECONFIG = process.env.KUBECONFIG ?? join(CACHE, 'run', 'kubeconfig');
const NS = 'watch-bench';
const HOST = `target.${NS}.svc.cluster.local`;
const WATCHERS = (process.env.BENCH_WATCHERS ?? '1,50,200').split(',').map(Number);
const PODS = Number(process.env.BENCH_PODS ?? 20);

const kubectl = (args: string[], input?: string) => execFileSync('kubectl', ['--kubeconfig', KUBECONFIG, ...args], { encoding: 'utf8', input, timeout: 180_000 });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fmt = (x: number, d = 1) => x.toFixed(d);

/** The API server's process: RSS (MB) and CPU seconds so far. */
function apiserver(): { rssMb: number; cpuS: number } {
  const pid = execFileSync('pgrep', ['-o', '-f', 'kube-apiserver'], { encoding: 'utf8' }).trim();
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  return { rssMb: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024, cpuS: (Number(stat[11]) + Number(stat[12])) / hz };
}

const MANIFEST = `
apiVersion: v1
kind: Namespace
metadata: { name: ${NS} }
---
apiVersion: v1
kind: ServiceAccount
metadata: { name: mesh-proxy, namespace: ${NS} }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: { name: mesh-proxy-endpoints, namespace: ${NS} }
rules: [{ apiGroups: [discovery.k8s.io], resources: [endpointslices], verbs: [list, watch] }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: mesh-proxy-endpoints, namespace: ${NS} }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: mesh-proxy-endpoints }
subjects: [{ kind: ServiceAccount, name: mesh-proxy, namespace: ${NS} }]
---
apiVersion: v1
kind: Service
metadata: { name: target, namespace: ${NS} }
spec: { selector: { app: target }, ports: [{ name: http, port: 80, targetPort: 8080 }] }
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: target, namespace: ${NS} }
spec:
  replicas: 0
  selector: { matchLabels: { app: target } }
  template:
    metadata: { labels: { app: target } }
    spec:
      terminationGracePeriodSeconds: 0
      containers: [{ name: pause, image: localhost/pause:3.2, imagePullPolicy: IfNotPresent, resources: { requests: { cpu: 1m, memory: 4Mi } } }]
`;

const TABLE: RouteTable = {
  apiVersion: 'mesh.cdk8s.io/v1alpha1', kind: 'RouteTable', clusterDomain: 'cluster.local', outboundTrafficPolicy: 'ALLOW_ANY',
  services: [{ host: HOST, ports: [80], portNames: ['http'] }], virtualHosts: [], gateways: [],
};

/** When each watcher first meets `ok` (ms from now): the first, and the spread to the last (the watch fan-out). */
async function each(n: number, ok: (i: number) => boolean, ms: number, what: string): Promise<{ first: number; spread: number }> {
  const t0 = performance.now();
  const seen: number[] = new Array(n).fill(-1);
  while (seen.some((x) => x < 0)) {
    if (performance.now() - t0 > ms) throw new Error(`${what}: not within ${ms / 1000} s`);
    for (let i = 0; i < n; i++) if (seen[i] < 0 && ok(i)) seen[i] = performance.now() - t0;
    await sleep(5);
  }
  return { first: Math.min(...seen), spread: Math.max(...seen) - Math.min(...seen) };
}

async function until(ok: () => boolean, ms: number, what: string): Promise<number> {
  const t0 = performance.now();
  while (!ok()) {
    if (performance.now() - t0 > ms) throw new Error(`${what}: not within ${ms / 1000} s`);
    await sleep(20);
  }
  return performance.now() - t0;
}

async function main(): Promise<void> {
  kubectl(['apply', '-f', '-'], MANIFEST);
  // 1.20 still makes a token Secret per ServiceAccount: the proxy's account's token.
  let token = '';
  for (let i = 0; i < 50 && !token; i++) {
    const secrets = JSON.parse(kubectl(['get', 'secrets', '-n', NS, '-o', 'json'])).items as Array<{ type: string; data: Record<string, string>; metadata: { annotations?: Record<string, string> } }>;
    const s = secrets.find((x) => x.type === 'kubernetes.io/service-account-token' && x.metadata.annotations?.['kubernetes.io/service-account.name'] === 'mesh-proxy');
    if (s) token = Buffer.from(s.data.token, 'base64').toString();
    else await sleep(200);
  }
  if (!token) throw new Error('no token Secret for the mesh-proxy ServiceAccount');
  const dir = mkdtempSync(join(tmpdir(), 'watch-bench-'));
  writeFileSync(join(dir, 'token'), token);
  const server = kubectl(['config', 'view', '--minify', '-o', 'jsonpath={.clusters[0].cluster.server}']);
  const caFile = join(CACHE, 'run', 'pki', 'ca.crt');
  console.log(`watch bench: ${server}, ${PODS} pause pods per scale-up, watchers ${WATCHERS.join(', ')} (each a proxy's list and watch, in one process)`);
  try {
    for (const w of WATCHERS) {
      const base = apiserver();
      const rssBefore = process.memoryUsage().rss / 1048576;
      const watchers = Array.from({ length: w }, () => new KubernetesEndpoints({ server, tokenFile: join(dir, 'token'), caFile, log: () => undefined }));
      for (const x of watchers) x.setTable(TABLE);
      const syncMs = await until(() => watchers.every((x) => x.get(HOST, 80) !== undefined), 60_000, 'initial list');
      await sleep(1000);
      const idle0 = apiserver();
      await sleep(10_000);
      const idle1 = apiserver();
      const ready = (n: number) => (i: number) => (watchers[i].get(HOST, 80) ?? []).filter((e) => e.ready).length === n;
      const cpu0 = apiserver();
      kubectl(['scale', 'deployment/target', '-n', NS, `--replicas=${PODS}`]);
      const up = await each(w, ready(PODS), 180_000, `${w} watchers seeing ${PODS} ready`);
      kubectl(['scale', 'deployment/target', '-n', NS, '--replicas=0']);
      const down = await each(w, ready(0), 180_000, `${w} watchers seeing 0`);
      const cpu1 = apiserver();
      const clientMb = process.memoryUsage().rss / 1048576 - rssBefore;
      for (const x of watchers) x.close();
      console.log(`watch-bench: watchers=${w} list_ms=${fmt(syncMs, 0)} apiserver_rss_mb=${fmt(idle1.rssMb)} (+${fmt(idle1.rssMb - base.rssMb)}) `
        + `apiserver_idle_cpu_pct=${fmt((idle1.cpuS - idle0.cpuS) / 10 * 100, 2)} all_ready_after_ms=${fmt(up.first, 0)} fanout_spread_ms=${fmt(Math.max(up.spread, down.spread), 0)} `
        + `apiserver_cpu_s_for_scale=${fmt(cpu1.cpuS - cpu0.cpuS, 2)} client_rss_mb_per_watcher=${fmt(clientMb / w, 2)}`);
      await sleep(2000);
    }
  } finally {
    kubectl(['delete', 'namespace', NS, '--wait=false']);
  }
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
