/**
 * The springboot canary charts, node-sidecar data plane, as pods: the client in namespace
 * istioclient calls springbootapp-svc in springistiodemo, as the seed tutorial does with
 * `kubectl exec ... curl`. The backends are the harness's stand-ins for springbootapp:v1/v2
 * ("springbootapp v2: hello").
 */
import { useChart } from './support/chart';
import { kubectl, kubectlOk, Pod, podsOf, shIn, tally } from './support/kube';
import { observe, PrometheusInCluster, usePrometheus, windowSince } from './support/prometheus';

const URL = 'http://springbootapp-svc.springistiodemo:8080/hello';
const SERVICE = 'springbootapp-svc.springistiodemo.svc.cluster.local';

// One Prometheus for the file, deployed before the charts: it scrapes the client's proxy from its first request.
const prometheus = usePrometheus('springboot');

/** The client proxy's istio_requests_total for the service, as Prometheus last scraped it. */
const scraped = (pod: Pod) => `sum(istio_requests_total{reporter="source",destination_service="${SERVICE}",pod="${pod.name}"})`;

/**
 * The seed's observation step: `n` more calls, then `cdk8s-mesh observe` over a window
 * that holds exactly them (it starts at a scrape that saw everything before).
 */
async function observed(p: PrometheusInCluster, client: Pod, chart: string, n: number, args: string[]) {
  const before = (await p.query(scraped(client)))[0]?.value ?? 0;
  const t0 = Date.now();
  const answers = versions(await requests(client, n));
  await p.until(scraped(client), (s) => (s[0]?.value ?? 0) >= before + n);
  const r = await observe(p, chart, ['--window', windowSince(t0), ...args]);
  process.stdout.write(`e2e: observe ${chart} (${n} calls: ${JSON.stringify(answers)}), exit ${r.status}:\n${r.text}`);
  return { ...r, answers };
}

/** N requests from the client with busybox wget: one line each, the body or "FAILED <status>". */
function requests(pod: Pod, n: number): Promise<string> {
  // Debian's busybox wget crashes with -T: `timeout` bounds each request instead.
  // The client's root filesystem is read-only: wget's error stays in a variable.
  return shIn(pod, 'busyclient', `for i in $(seq 1 ${n}); do if out=$(timeout 10 wget -q -O - ${URL} 2>&1); then echo "$out"; else echo "FAILED $(echo "$out" | grep -o 'HTTP/1.1 [0-9]*' | head -1)"; fi; done`, 180_000);
}

/** "springbootapp v1: hello (pod ...)" -> "v1"; failures as they are. */
function versions(bodies: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [line, n] of tally(bodies)) {
    const key = (line.match(/^springbootapp (v\d+):/) ?? [])[1] ?? line;
    out[key] = (out[key] ?? 0) + n;
  }
  return out;
}

/** Sum of mesh_proxy_requests_total samples of the client's proxy matching every label given. */
async function counted(pod: Pod, labels: Record<string, string>): Promise<number> {
  const stats = await shIn(pod, 'mesh-proxy', 'wget -q -O - http://127.0.0.1:15000/stats/prometheus');
  return stats.split('\n')
    .filter((l) => l.startsWith('mesh_proxy_requests_total{') && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}`)))
    .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

/** The route table the client's proxy reads: ConfigMap mesh-routes in the client's namespace. */
async function routeTable(): Promise<{ object: any; table: any }> {
  const object = JSON.parse(await kubectlOk(['get', 'configmap', 'mesh-routes', '-n', 'istioclient', '-o', 'json']));
  return { object, table: JSON.parse(object.data['routes.json']) };
}

/** Replace the ConfigMap's routes.json with `text`, the way `kubectl apply` of a new synth does. */
async function replaceRoutes(object: any, text: string): Promise<void> {
  const updated = { ...object, data: { ...object.data, 'routes.json': text } };
  delete updated.metadata.resourceVersion;
  await kubectlOk(['replace', '-f', '-'], { input: JSON.stringify(updated) });
}

/** Poll `f` every 500 ms until it is true; the seconds it took. */
async function secondsUntil(f: () => Promise<boolean>, limitMs: number): Promise<number> {
  const t0 = Date.now();
  while (!(await f())) {
    if (Date.now() - t0 > limitMs) throw new Error(`not within ${limitMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 500));
  }
  return (Date.now() - t0) / 1000;
}

async function reloads(pod: Pod, result: 'applied' | 'rejected'): Promise<number> {
  const stats = await shIn(pod, 'mesh-proxy', 'wget -q -O - http://127.0.0.1:15000/stats/prometheus');
  const line = stats.split('\n').find((l) => l.startsWith(`mesh_proxy_config_reloads_total{result="${result}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

/**
 * Make both stand-in versions answer after `ms` (a rollout of each), as a slow JVM would,
 * and wait until the old pods are gone: a terminating pod keeps serving through its
 * preStop wait, on the keep-alive connections the client's proxy already holds.
 */
async function slowBackends(ms: number): Promise<void> {
  const before = JSON.parse(await kubectlOk(['get', 'pods', '-n', 'springistiodemo', '-o', 'json'])).items.map((p: any) => p.metadata.name as string);
  for (const d of ['springbootapp-v1', 'springbootapp-v2']) {
    await kubectlOk(['set', 'env', `deployment/${d}`, '-n', 'springistiodemo', '-c', 'springbootapp', `STANDIN_DELAY_MS=${ms}`]);
  }
  for (const d of ['springbootapp-v1', 'springbootapp-v2']) {
    await kubectlOk(['rollout', 'status', `deployment/${d}`, '-n', 'springistiodemo', '--timeout=150s'], { timeoutMs: 160_000 });
  }
  if (before.length) await kubectl(['wait', '--for=delete', '-n', 'springistiodemo', ...before.map((n: string) => `pod/${n}`), '--timeout=90s'], { timeoutMs: 100_000 });
}

describe('springboot-canary', () => {
  const chart = useChart('springboot-canary');

  test('100 calls from busyclient (namespace istioclient) split exactly 70 v1 / 30 v2', async () => {
    expect(versions(await requests(chart.pod('busyclient'), 100))).toEqual({ v1: 70, v2: 30 });
  });

  test("the client's proxy counted them under the route springistiodemo/springbootapp-svc-vs", async () => {
    const vh = 'springistiodemo/springbootapp-svc-vs';
    expect({
      v1: await counted(chart.pod('busyclient'), { virtual_host: vh, destination: 'springbootapp-svc-v1', code: '200' }),
      v2: await counted(chart.pod('busyclient'), { virtual_host: vh, destination: 'springbootapp-svc-v2', code: '200' }),
    }).toEqual({ v1: 70, v2: 30 });
  });

  test('observe: Prometheus (PrometheusAddon) shows v1 at 70 +/- 5% of 300 calls and the --max-deviation 5 gate passes', async () => {
    const client = chart.pod('busyclient');
    // Everything the earlier tests sent has been scraped: the window starts after it.
    await prometheus.until(scraped(client), (s) => (s[0]?.value ?? 0) >= 100);
    const r = await observed(prometheus, client, 'springboot-canary-node-sidecar', 300, ['--max-deviation', '5']);
    expect(r.status).toBe(0);
    const host = r.report.hosts.find((h: { host: string }) => h.host === SERVICE);
    expect(host.requests).toBeGreaterThanOrEqual(200);
    const v1 = host.destinations.find((d: { subset: string }) => d.subset === 'v1');
    expect(Math.abs(v1.observedPercent - 70)).toBeLessThanOrEqual(5);
    expect(v1.codes).toEqual({ 200: expect.any(Number) });
    expect(r.report.gate.passed).toBe(true);
  }, 240_000);

  test('a new split applied as the ConfigMap only is served without a restart; a broken table is refused and counted', async () => {
    const client = chart.pod('busyclient');
    const restarts = async () => (await kubectlOk(['get', 'pod', client.name, '-n', client.namespace, '-o', 'jsonpath={.status.containerStatuses[*].restartCount}'])).trim();
    const restartsBefore = await restarts();
    const { object, table } = await routeTable();
    const vh = table.virtualHosts.find((v: { name: string }) => v.name === 'springistiodemo/springbootapp-svc-vs');
    for (const d of vh.routes[0].destinations) d.weight = 50;
    const applied = await reloads(client, 'applied');
    await replaceRoutes(object, JSON.stringify(table, null, 2));
    // The kubelet rewrites the mounted file on its sync (the harness sets syncFrequency 10 s);
    // the proxy checks the file every 2 s.
    const seconds = await secondsUntil(async () => (await reloads(client, 'applied')) > applied, 150_000);
    process.stdout.write(`e2e: hot reload: the new table was served ${seconds.toFixed(1)} s after the ConfigMap was replaced\n`);
    expect(versions(await requests(client, 100))).toEqual({ v1: 50, v2: 50 });

    const rejected = await reloads(client, 'rejected');
    await replaceRoutes((await routeTable()).object, '{ "apiVersion": "mesh.cdk8s.io/v1alpha1", broken');
    await secondsUntil(async () => (await reloads(client, 'rejected')) > rejected, 150_000);
    expect(versions(await requests(client, 10))).toEqual({ v1: 5, v2: 5 });
    const logs = await kubectlOk(['logs', client.name, '-n', client.namespace, '-c', 'mesh-proxy']);
    expect(logs).toMatch(/config reload refused; the previous route table stays in use/);
    expect(await restarts()).toBe(restartsBefore);
  }, 420_000);

  test('SIGTERM drain: requests in flight when the client pod and the slow backends are deleted complete within the grace period', async () => {
    // Backends 8 s slow; six requests in flight from the client; then the client's pod
    // (its proxy carries them) and every backend pod are deleted with the default grace.
    // The pods' preStop hooks hold SIGTERM 5 s, so it arrives while the requests are
    // still in flight: the stand-ins finish them before exiting, the client's proxy drains.
    await slowBackends(8000);
    const client = (await podsOf(chart.deployments.filter((d) => d.metadata.name === 'busyclient')))[0];
    const backends = (await podsOf(chart.deployments.filter((d) => d.metadata.name.startsWith('springbootapp-')))).map((p) => p.name);
    const t0 = Date.now();
    const inflight = shIn(client, 'busyclient', `for i in 1 2 3 4 5 6; do (if out=$(timeout 30 wget -q -O - ${URL} 2>&1); then echo "$out"; else echo "FAILED $out" | tr '\\n' ' '; echo; fi) & done; wait`, 60_000);
    await new Promise((r) => setTimeout(r, 1_000));
    await kubectlOk(['delete', 'pod', '-n', 'springistiodemo', ...backends, '--wait=false']);
    await kubectlOk(['delete', 'pod', '-n', 'istioclient', client.name, '--wait=false']);
    const deletedAt = Date.now() - t0;
    const answers = await inflight;
    const tookMs = Date.now() - t0;
    process.stdout.write(`e2e: drain: pods deleted ${deletedAt} ms after 6 requests started; all answered after ${tookMs} ms\n`);
    // SIGTERM came at deletion + 5 s (the preStop wait), before the 8 s answers.
    expect(deletedAt).toBeLessThan(2_500);
    expect(tookMs).toBeGreaterThanOrEqual(8_000);
    expect(versions(answers)).toEqual({ v1: expect.any(Number), v2: expect.any(Number) });
    expect(Object.values(versions(answers)).reduce((a, b) => a + b, 0)).toBe(6);
  }, 300_000);
});

describe('springboot-canary-timeout', () => {
  const chart = useChart('springboot-canary-timeout');

  test('backends slower than the 2 ms timeout (stand-ins delayed 50 ms): every call gets 504 from the proxy, which counts them', async () => {
    // The seed's point: a timeout below the backend's latency fails every request. The
    // stand-ins answer at once by default; make both versions slow as a real JVM is.
    await slowBackends(50);
    const client = (await podsOf(chart.deployments.filter((d) => d.metadata.name === 'busyclient')))[0];
    const before = await counted(client, { code: '504' });
    expect(versions(await requests(client, 20))).toEqual({ 'FAILED HTTP/1.1 504': 20 });
    expect(await counted(client, { virtual_host: 'springistiodemo/springbootapp-svc-vs', code: '504' }) - before).toBe(20);
  }, 240_000);

  test('observe: every version the stand-ins make slow fails with 504 and UT (upstream timeout); the gate fails', async () => {
    const client = (await podsOf(chart.deployments.filter((d) => d.metadata.name === 'busyclient')))[0];
    await prometheus.until(scraped(client), (s) => (s[0]?.value ?? 0) >= 20);
    const r = await observed(prometheus, client, 'springboot-canary-timeout-node-sidecar', 200, ['--max-deviation', '5', '--max-error-rate', '5']);
    expect(r.answers).toEqual({ 'FAILED HTTP/1.1 504': 200 });
    expect(r.status).toBe(1);
    const host = r.report.hosts.find((h: { host: string }) => h.host === SERVICE);
    for (const d of host.destinations) {
      expect([d.subset, Object.keys(d.codes), Object.keys(d.flags), d.errorPercent]).toEqual([d.subset, ['504'], ['UT'], 100]);
    }
    expect(r.report.gate.failures.filter((f: string) => /failed 100% of its \d+ requests/.test(f))).toHaveLength(2);
  }, 240_000);
});
