/**
 * Helpers for the end-to-end tests: kubectl against the local cluster
 * (scripts/cluster/up.sh), charts applied as a user would apply them, and checks run
 * from inside pods with `kubectl exec`.
 */
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as YAML from 'yaml';

export const PROJECT_DIR = path.resolve(__dirname, '..', '..', '..');
export const KUBECONFIG = process.env.KUBECONFIG || path.join(process.env.MESH_K8S_CACHE || '/var/cache/mesh-k8s', 'run', 'kubeconfig');

export type K8sObject = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec?: any };

export interface RunResult { code: number; stdout: string; stderr: string }

/** kubectl with the harness's kubeconfig; never throws, the caller decides. */
export function kubectl(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      'kubectl',
      ['--kubeconfig', KUBECONFIG, ...args],
      { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 32 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as any).code === 'number' ? (err as any).code : 1) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (opts.input !== undefined) child.stdin!.end(opts.input);
  });
}

/** kubectl that must succeed; the error carries kubectl's own message. */
export async function kubectlOk(args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
  const r = await kubectl(args, opts);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr.trim() || r.stdout.trim()}`);
  return r.stdout;
}

export async function clusterReachable(): Promise<string | undefined> {
  const r = await kubectl(['get', '--raw', '/readyz'], { timeoutMs: 10_000 });
  return r.code === 0 && r.stdout.trim() === 'ok'
    ? undefined
    : `the local cluster is not reachable with ${KUBECONFIG} (${(r.stderr || r.stdout).trim()}); run the e2e tests with \`npm run test:e2e\``;
}

export function readManifest(file: string): K8sObject[] {
  return YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'))
    .map((d) => d.toJSON())
    .filter(Boolean);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Wait until every Deployment is Available; on timeout, say which pod is stuck and why. */
export async function waitAvailable(deployments: K8sObject[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pending: K8sObject[] = [];
    for (const d of deployments) {
      const ns = d.metadata.namespace ?? 'default';
      const r = await kubectl(['get', 'deployment', d.metadata.name, '-n', ns, '-o', 'json']);
      const got = r.code === 0 ? JSON.parse(r.stdout) : {};
      const status = got.status ?? {};
      const want = d.spec.replicas ?? 1;
      const available = (status.conditions ?? []).some((c: any) => c.type === 'Available' && c.status === 'True');
      // Rolled out too (kubectl rollout status): a changed template (the next chart of a group) leaves no old pod behind.
      const rolledOut = (status.observedGeneration ?? 0) >= (got.metadata?.generation ?? 0) && (status.updatedReplicas ?? 0) >= want && (status.replicas ?? 0) <= want;
      if (!available || !rolledOut || (status.availableReplicas ?? 0) < want) pending.push(d);
    }
    if (pending.length === 0) return;
    if (Date.now() > deadline) {
      const why = await Promise.all(pending.map((d) => explainDeployment(d)));
      throw new Error(`not Available after ${Math.round(timeoutMs / 1000)} s:\n${why.join('\n')}`);
    }
    await sleep(1000);
  }
}

/** A pending Deployment in one paragraph: each pod's phase, waiting containers and last event. */
async function explainDeployment(d: K8sObject): Promise<string> {
  const ns = d.metadata.namespace ?? 'default';
  const selector = Object.entries(d.spec.selector.matchLabels as Record<string, string>).map(([k, v]) => `${k}=${v}`).join(',');
  const r = await kubectl(['get', 'pods', '-n', ns, '-l', selector, '-o', 'json']);
  const pods = r.code === 0 ? JSON.parse(r.stdout).items : [];
  if (pods.length === 0) return `  Deployment ${ns}/${d.metadata.name}: no pods (${await lastEvent(ns, 'ReplicaSet') ?? 'no event'})`;
  const lines = [];
  for (const p of pods) {
    const states = [...(p.status.initContainerStatuses ?? []), ...(p.status.containerStatuses ?? [])]
      .filter((c: any) => !c.ready)
      .map((c: any) => {
        const s = c.state.waiting ?? c.state.terminated;
        return `${c.name}: ${s ? `${s.reason ?? ''} ${s.message ?? ''}`.trim() : 'running, not ready'} (restarts ${c.restartCount})`;
      });
    const event = await lastEvent(ns, 'Pod', p.metadata.name);
    lines.push(`  pod ${ns}/${p.metadata.name} (Deployment ${d.metadata.name}): ${p.status.phase}; ${states.join('; ') || 'containers ready'}; last event: ${event ?? 'none'}`);
  }
  return lines.join('\n');
}

async function lastEvent(ns: string, kind: string, name?: string): Promise<string | undefined> {
  const selector = [`involvedObject.kind=${kind}`, ...(name ? [`involvedObject.name=${name}`] : [])].join(',');
  const r = await kubectl(['get', 'events', '-n', ns, '--field-selector', selector, '-o', 'json']);
  if (r.code !== 0) return undefined;
  const items = JSON.parse(r.stdout).items as any[];
  items.sort((a, b) => String(a.lastTimestamp ?? a.eventTime).localeCompare(String(b.lastTimestamp ?? b.eventTime)));
  const e = items[items.length - 1];
  return e ? `${e.reason}: ${e.message}` : undefined;
}

export interface Pod { namespace: string; name: string; deployment: string; spec: any }

/** The running pods of each Deployment (one replica each in these charts). */
export async function podsOf(deployments: K8sObject[]): Promise<Pod[]> {
  const pods: Pod[] = [];
  for (const d of deployments) {
    const ns = d.metadata.namespace ?? 'default';
    const selector = Object.entries(d.spec.selector.matchLabels as Record<string, string>).map(([k, v]) => `${k}=${v}`).join(',');
    const items = JSON.parse(await kubectlOk(['get', 'pods', '-n', ns, '-l', selector, '-o', 'json'])).items as any[];
    for (const p of items.filter((x) => x.status.phase === 'Running' && !x.metadata.deletionTimestamp)) {
      pods.push({ namespace: ns, name: p.metadata.name, deployment: d.metadata.name, spec: p.spec });
    }
  }
  return pods;
}

/** Run a command in a container; resolves with its exit code and output. */
export function execIn(pod: { namespace: string; name: string }, container: string, command: string[], timeoutMs = 60_000): Promise<RunResult> {
  return kubectl(['exec', '-n', pod.namespace, pod.name, '-c', container, '--', ...command], { timeoutMs });
}

/** `sh -c SCRIPT` in a container; the script must exit 0. */
export async function shIn(pod: { namespace: string; name: string }, container: string, script: string, timeoutMs = 60_000): Promise<string> {
  const r = await execIn(pod, container, ['sh', '-c', script], timeoutMs);
  if (r.code !== 0) throw new Error(`in ${pod.namespace}/${pod.name} (${container}): \`${script}\` exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Occurrences of each distinct line. */
export function tally(lines: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of lines.split('\n').filter((l) => l.trim())) counts.set(line, (counts.get(line) ?? 0) + 1);
  return counts;
}

/** What /proc/1/status and /proc/1/mountinfo say about a container's main process. */
export interface ProcessIdentity { uid: number[]; gid: number[]; capEff: string; noNewPrivs: string; seccomp: string; rootReadOnly: boolean }

export async function identityOf(pod: Pod, container: string): Promise<ProcessIdentity> {
  const out = await shIn(pod, container, 'cat /proc/1/status; echo ---; cat /proc/1/mountinfo');
  const [status, mountinfo] = out.split('\n---\n');
  const field = (name: string) => (status.match(new RegExp(`^${name}:\\s*(.*)$`, 'm')) ?? [])[1]?.trim() ?? '';
  // mountinfo: id parent major:minor root mountpoint options ...
  const rootMount = mountinfo.split('\n').map((l) => l.split(' ')).filter((f) => f[4] === '/').pop();
  return {
    uid: field('Uid').split(/\s+/).map(Number),
    gid: field('Gid').split(/\s+/).map(Number),
    capEff: field('CapEff'),
    noNewPrivs: field('NoNewPrivs'),
    seccomp: field('Seccomp'),
    rootReadOnly: rootMount !== undefined && rootMount[5].split(',').includes('ro'),
  };
}

/** The user and group a container should run as: its own securityContext, else the pod's. */
export function expectedIds(pod: Pod, container: string): { uid: number; gid: number } {
  const c = pod.spec.containers.find((x: any) => x.name === container);
  const sc = c.securityContext ?? {};
  const psc = pod.spec.securityContext ?? {};
  return { uid: sc.runAsUser ?? psc.runAsUser, gid: sc.runAsGroup ?? psc.runAsGroup };
}

/** The Prometheus text of a pod's proxy (its admin port, from inside the proxy container). */
export async function proxyStats(pod: Pod): Promise<string> {
  const r = await execIn(pod, 'mesh-proxy', ['node', '-e', "require('http').get('http://127.0.0.1:15000/stats/prometheus', (r) => { let b = ''; r.on('data', (c) => b += c); r.on('end', () => console.log(b)); })"]);
  return r.stdout;
}

/** The sum of a metric's series whose labels contain every one of `has`. */
export const sample = (stats: string, name: string, has: string[]) => stats.split('\n')
  .filter((l) => l.startsWith(`${name}{`) && has.every((h) => l.includes(h)))
  .reduce((s, l) => s + Number(l.split(' ').pop()), 0);
