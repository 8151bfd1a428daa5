/**
 * A chart's YAML in the cluster for the duration of one `describe`: applied
 * (kubectl apply -f dist/<chart>-node-sidecar.k8s.yaml, or dist/<chart>.k8s.yaml for the
 * Istio data plane), every Deployment Available, then deleted again with its pods gone,
 * so the next chart starts clean.
 */
import * as path from 'path';
import { clusterReachable, K8sObject, kubectl, kubectlOk, Pod, podsOf, PROJECT_DIR, readManifest, waitAvailable } from './kube';

export const AVAILABLE_TIMEOUT_MS = 180_000;

export interface ChartInCluster {
  readonly file: string;
  readonly objects: K8sObject[];
  readonly deployments: K8sObject[];
  /** The running pods, once applied. */
  pods: Pod[];
  pod(deployment: string): Pod;
}

export function useChart(chart: string, dataPlane: 'node-sidecar' | 'istio' = 'node-sidecar'): ChartInCluster {
  const file = chartFile(chart, dataPlane);
  const objects = readManifest(file);
  const deployments = objects.filter((o) => o.kind === 'Deployment');
  const handle: ChartInCluster = {
    file,
    objects,
    deployments,
    pods: [],
    pod(deployment: string): Pod {
      const p = handle.pods.find((x) => x.deployment === deployment);
      if (!p) throw new Error(`${chart}: no running pod of Deployment ${deployment}`);
      return p;
    },
  };
  beforeAll(async () => {
    const unreachable = await clusterReachable();
    if (unreachable) throw new Error(unreachable);
    await kubectlOk(['apply', '-f', file], { timeoutMs: 60_000 });
    await waitAvailable(deployments, AVAILABLE_TIMEOUT_MS);
    handle.pods = await podsOf(deployments);
  }, AVAILABLE_TIMEOUT_MS + 70_000);
  afterAll(async () => {
    await removeManifest(file, objects);
  }, 300_000);
  return handle;
}

/** dist/<chart>-node-sidecar.k8s.yaml or dist/<chart>.k8s.yaml (Istio). */
export function chartFile(chart: string, dataPlane: 'node-sidecar' | 'istio' = 'node-sidecar'): string {
  return path.join(PROJECT_DIR, 'dist', `${chart}${dataPlane === 'istio' ? '' : '-node-sidecar'}.k8s.yaml`);
}

/**
 * Delete what a manifest created and wait until its pods are gone. The pods get a short
 * grace period of their own: the seeds' clients and busybox httpd run under `sh` as
 * PID 1, which ignores SIGTERM and would hold every deletion for the full 30 s.
 *
 * The pods must be deleted before anything else deletes them: the 1.20 kubelet keeps the
 * grace period a pod's deletion began with and ignores a shorter one asked for later, so
 * once the garbage collector has deleted them (after their Deployment) they take their
 * own 30 s. So the Deployments and then their ReplicaSets are deleted first leaving the
 * pods behind (--cascade=orphan), then the pods with 2 s, then the rest of the manifest.
 */
export async function removeManifest(file: string | readonly string[], objects: K8sObject[]): Promise<void> {
  // Several files (charts applied one after another on the same pods): one kubectl for all of them.
  const files = typeof file === 'string' ? [file] : file;
  // Charts of a group repeat most objects: each once.
  const seen = new Set<string>();
  objects = objects.filter((o) => { const k = `${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`; if (seen.has(k)) return false; seen.add(k); return true; });
  const deployments = objects.filter((o) => o.kind === 'Deployment');
  const selectorOf = (d: K8sObject) => Object.entries(d.spec.selector.matchLabels as Record<string, string>).map(([k, v]) => `${k}=${v}`).join(',');
  const each = (f: (d: K8sObject, ns: string) => Promise<unknown>) => Promise.all(deployments.map((d) => f(d, d.metadata.namespace ?? 'default')));
  await each((d, ns) => kubectl(['delete', 'deployment', d.metadata.name, '-n', ns, '--cascade=orphan', '--ignore-not-found', '--wait=true'], { timeoutMs: 60_000 }));
  await each((d, ns) => kubectl(['delete', 'replicaset', '-n', ns, '-l', selectorOf(d), '--cascade=orphan', '--ignore-not-found', '--wait=true'], { timeoutMs: 60_000 }));
  await each((d, ns) => kubectl(['delete', 'pods', '-n', ns, '-l', selectorOf(d), '--grace-period=2', '--wait=true', '--timeout=60s'], { timeoutMs: 70_000 }));
  await kubectl(['delete', ...files.flatMap((f) => ['-f', f]), '--ignore-not-found', '--grace-period=2', '--wait=true'], { timeoutMs: 90_000 * files.length });
  // A namespace still terminating refuses new objects: the next chart with the same
  // namespaces (springboot-canary, then springboot-canary-timeout) must find it gone.
  await Promise.all(objects.filter((o) => o.kind === 'Namespace').map((n) => kubectl(['wait', '--for=delete', `namespace/${n.metadata.name}`, '--timeout=120s'], { timeoutMs: 130_000 })));
}
