/**
 * The Istio data plane's YAML (dist/<chart>.k8s.yaml) applied for real, as far as it goes
 * without Istio: the cluster has Istio's CRDs (crds/, vendored) but no istiod, no
 * injection webhook and no ingress gateway. So every object must be accepted and stored
 * as written, and every workload's pods must run, without a sidecar.
 *
 * ROUTING IS NOT EXERCISED HERE: with no Envoy in the pods, VirtualServices,
 * DestinationRules and Gateways are stored and never acted on. The node-sidecar suites
 * check routing from the same charts.
 *
 * Charts that share their workloads (the web charts, springboot-canary and its timeout
 * variant, the eight Bookinfo charts) are applied one after another on the running pods,
 * as a user moves from one Istio task to the next.
 */
import * as path from 'path';
import { AVAILABLE_TIMEOUT_MS, chartFile, removeManifest } from './support/chart';
import { clusterReachable, kubectl, kubectlOk, podsOf, PROJECT_DIR, readManifest, waitAvailable } from './support/kube';

const CRD_FILE = path.join(PROJECT_DIR, 'crds', 'istio-1.30.3', 'crd-all.gen.yaml');
const GROUPS: string[][] = [
  // The three web charts have the same Deployments; the demo gateway's are its own: one pod cycle for the four.
  ['web-basic', 'web-round-robin', 'web-weighted', 'demo-gateway'],
  ['springboot-canary', 'springboot-canary-timeout'],
  ['bookinfo', 'bookinfo-jason-v2', 'bookinfo-jason-v2-else-v3', 'bookinfo-reviews-80-20', 'bookinfo-reviews-50-v3',
    'bookinfo-reviews-v3', 'bookinfo-ratings-abort-jason', 'bookinfo-ratings-delay-jason', 'bookinfo-tracing'],
];
// Namespaces an Istio installation owns: a chart's objects may live there (the Jaeger
// addon, the Telemetry) without creating them. Made here as istioctl would, then removed.
const ISTIO_OWNED = ['istio-system'];
const SIDECAR_CONTAINERS = ['istio-proxy', 'mesh-proxy'];

beforeAll(async () => {
  const unreachable = await clusterReachable();
  if (unreachable) throw new Error(unreachable);
  // As test:cluster does: --validate=false, the 1.20 server's OpenAPI has no CEL rules.
  await kubectlOk(['apply', '--validate=false', '-f', CRD_FILE], { timeoutMs: 120_000 });
  await kubectlOk(['wait', '--for=condition=Established', 'crd', '--all', '--timeout=60s'], { timeoutMs: 70_000 });
}, 200_000);

/**
 * The chart's objects as the API server stores them, by kind/namespace/name: one
 * `kubectl get -f` for the whole file (one kubectl per object took most of this suite's time).
 */
async function storedAll(file: string): Promise<Map<string, any>> {
  const out = await kubectlOk(['get', '-f', file, '--ignore-not-found', '-o', 'json'], { timeoutMs: 120_000 });
  const body = out.trim() ? JSON.parse(out) : { items: [] };
  const items: any[] = body.kind === 'List' ? body.items : [body];
  return new Map(items.map((s) => [`${s.kind} ${s.metadata.namespace ?? ''}/${s.metadata.name}`, s]));
}

/** JSON with object keys sorted: the server returns a custom resource's keys in its own order. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (x && typeof x === 'object' && !Array.isArray(x)
    ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b))) : x));
}

for (const group of GROUPS) {
  describe(`${group.join(', ')} (Istio data plane, no Istio: objects and pods only, routing not exercised)`, () => {
    afterAll(async () => {
      // One removal for the group: its charts share most objects.
      await removeManifest(group.map((c) => chartFile(c, 'istio')), group.flatMap((c) => readManifest(chartFile(c, 'istio'))));
      for (const ns of ISTIO_OWNED) await kubectl(['delete', 'namespace', ns, '--ignore-not-found', '--wait=true', '--timeout=120s'], { timeoutMs: 130_000 });
    }, 600_000);

    for (const chart of group) {
      test(`${chart}: every object accepted and stored as written; every workload's pods Running without a sidecar`, async () => {
        const objects = readManifest(chartFile(chart, 'istio'));
        for (const ns of ISTIO_OWNED.filter((n) => objects.some((o) => o.metadata.namespace === n))) {
          await kubectl(['create', 'namespace', ns]);
        }
        await kubectlOk(['apply', '-f', chartFile(chart, 'istio')], { timeoutMs: 120_000 });
        const missing: string[] = [];
        const changed: string[] = [];
        const stored = await storedAll(chartFile(chart, 'istio'));
        for (const o of objects) {
          const id = `${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`;
          // A namespaced object written without a namespace is stored in "default".
          const s = stored.get(id) ?? stored.get(`${o.kind} default/${o.metadata.name}`);
          if (!s) missing.push(id);
          // The spec comes back as written for the mesh kinds: no field was pruned as unknown.
          else if (o.apiVersion.includes('istio.io') && canonical(s.spec) !== canonical(o.spec)) changed.push(id);
        }
        expect({ missing, changed }).toEqual({ missing: [], changed: [] });

        const deployments = objects.filter((o) => o.kind === 'Deployment');
        await waitAvailable(deployments, AVAILABLE_TIMEOUT_MS);
        const pods = await podsOf(deployments);
        expect(pods.map((p) => p.deployment).sort()).toEqual(deployments.map((d) => d.metadata.name).sort());
        const withSidecar = pods.filter((p) => p.spec.containers.some((c: any) => SIDECAR_CONTAINERS.includes(c.name)));
        expect(withSidecar.map((p) => p.name)).toEqual([]);
        const mesh = objects.filter((o) => o.apiVersion.includes('istio.io')).map((o) => o.kind);
        process.stdout.write(`e2e: istio data plane: ${chart}: ${objects.length} objects accepted (${mesh.length} Istio: ${[...new Set(mesh)].join(', ') || 'none'}), ${pods.length} pods Running without a sidecar; routing not exercised (no Istio here)\n`);
      }, AVAILABLE_TIMEOUT_MS + 150_000);
    }
  });
}
