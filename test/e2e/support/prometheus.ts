/**
 * A real Prometheus in the cluster for one `describe`, deployed by PrometheusAddon as a
 * user would (its ConfigMap, RBAC and Service unchanged), and `cdk8s-mesh observe` run
 * against it from this machine, as a CI step would.
 *
 * The image is Debian's Prometheus 2.42 (scripts/cluster/images.sh: localhost/prometheus:2.42),
 * not the addon's default v3.10.0, which cannot be pulled here; Debian builds it without
 * Kubernetes discovery, which the image's entrypoint serves in its place from the API server.
 * The config reloader image cannot be pulled either: `configReloader: false`.
 */
import { execFile } from 'child_process';
import { mkdtempSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';
import { promisify } from 'util';
import { App, Yaml } from 'cdk8s';
import { DataPlane, MeshChart, PrometheusAddon } from '../../../constructs';
import { K8sObject, kubectl, kubectlOk, PROJECT_DIR, waitAvailable } from './kube';

const run = promisify(execFile);
// Each suite gets its own namespace and NodePort: a namespace an earlier suite deleted may
// still be terminating (seen: still there 30 min later), and it would refuse new objects.
const SUITES = ['bookinfo', 'springboot'] as const;
const PORT_BASE = 30090;

export interface PrometheusInCluster {
  /** Prometheus's API from this machine: the node's address and the NodePort. */
  url: string;
  /** One PromQL instant query's samples. */
  query(q: string): Promise<Array<{ metric: Record<string, string>; value: number }>>;
  /** Until `f` holds of the answer to `q`, polled every second. */
  until(q: string, f: (samples: Array<{ metric: Record<string, string>; value: number }>) => boolean, limitMs?: number): Promise<number>;
}

/** Deploy PrometheusAddon (scrape interval 5 s) in `monitoring-<suite>` before the describe's tests, remove it after. */
export function usePrometheus(suite: typeof SUITES[number]): PrometheusInCluster {
  const NAMESPACE = `monitoring-${suite}`;
  const nodePort = PORT_BASE + SUITES.indexOf(suite);
  const app = new App({ outdir: mkdtempSync(path.join(tmpdir(), 'e2e-prometheus-')) });
  const chart = new MeshChart(app, `e2e-prometheus-${suite}`, { dataPlane: DataPlane.NODE_SIDECAR });
  new PrometheusAddon(chart, 'prometheus', {
    namespace: NAMESPACE, image: 'localhost/prometheus:2.42', configReloader: false, scrapeInterval: '5s',
    ui: { serviceType: 'NodePort', nodePort },
  });
  const objects = chart.toJson() as K8sObject[];
  const file = path.join(app.outdir, 'prometheus.k8s.yaml');
  writeFileSync(file, Yaml.stringify(...objects));
  const handle: PrometheusInCluster = {
    url: '',
    async query(q) {
      const r = await fetch(`${handle.url}/api/v1/query?query=${encodeURIComponent(q)}`, { signal: AbortSignal.timeout(15_000) });
      const body = await r.json() as { status: string; error?: string; data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> } };
      if (body.status !== 'success') throw new Error(`Prometheus: ${body.error} (query ${q})`);
      return body.data.result.map((x) => ({ metric: x.metric, value: Number(x.value[1]) }));
    },
    async until(q, f, limitMs = 90_000) {
      const t0 = Date.now();
      for (;;) {
        try {
          if (f(await handle.query(q))) return (Date.now() - t0) / 1000;
        } catch (e) {
          if (Date.now() - t0 > limitMs) throw e;
        }
        if (Date.now() - t0 > limitMs) throw new Error(`Prometheus: not within ${limitMs / 1000} s: ${q} -> ${JSON.stringify(await handle.query(q).catch((e) => String(e)))}`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    },
  };
  beforeAll(async () => {
    // A namespace an earlier run of this suite is still deleting refuses new objects: wait,
    // and say why it is stuck if it stays.
    const gone = await kubectl(['wait', '--for=delete', `namespace/${NAMESPACE}`, '--timeout=150s'], { timeoutMs: 160_000 });
    if (gone.code !== 0 && !/not found/i.test(gone.stderr + gone.stdout)) {
      const status = await kubectl(['get', 'namespace', NAMESPACE, '-o', 'jsonpath={.status}']);
      throw new Error(`namespace ${NAMESPACE} is still terminating after 150 s: ${status.stdout}`);
    }
    await kubectlOk(['apply', '-f', file], { timeoutMs: 60_000 });
    await waitAvailable(objects.filter((o) => o.kind === 'Deployment'), 180_000);
    const node = (await kubectlOk(['get', 'nodes', '-o', 'jsonpath={.items[0].status.addresses[?(@.type=="InternalIP")].address}'])).trim();
    handle.url = `http://${node}:${nodePort}`;
    // Discovery works from the pod (endpoints role, through the API server) once the API server's own job is up.
    await handle.until('up{job="kubernetes-api-servers"}', (s) => s.length > 0 && s[0].value === 1, 120_000);
  }, 320_000);
  // Not waited for: the namespace takes a minute or two to go, and the next usePrometheus waits for it if it must.
  afterAll(async () => { await kubectl(['delete', '-f', file, '--ignore-not-found', '--grace-period=2', '--wait=false'], { timeoutMs: 60_000 }); }, 90_000);
  return handle;
}

/** `cdk8s-mesh observe CHART --prometheus URL ARGS... --format json`: exit status and report. */
export async function observe(prometheus: PrometheusInCluster, chart: string, args: string[]): Promise<{ status: number; report: any; text: string }> {
  const argv = [path.join(PROJECT_DIR, 'bin', 'cdk8s-mesh.js'), 'observe', chart, '--prometheus', prometheus.url, ...args];
  const text = async (status: number) => (await run(process.execPath, [...argv], { cwd: PROJECT_DIR }).catch((e) => e)).stdout as string;
  try {
    const r = await run(process.execPath, [...argv, '--format', 'json'], { cwd: PROJECT_DIR });
    return { status: 0, report: JSON.parse(r.stdout), text: await text(0) };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    if (x.code !== 1) throw new Error(`observe exited ${x.code}: ${x.stderr}`);
    return { status: 1, report: JSON.parse(x.stdout), text: await text(1) };
  }
}

/** A Prometheus window covering everything since `t0` (ms), from a scrape before it (the scrape interval is 5 s). */
export function windowSince(t0: number): string {
  return `${Math.ceil((Date.now() - t0) / 1000) + 7}s`;
}
