/**
 * Bookinfo, node-sidecar data plane, as pods: the eight Bookinfo charts applied one
 * after another on the running app, as Istio's tasks apply one VirtualService after
 * another. Only the route table (ConfigMap mesh-routes) differs between them; each
 * check waits until every proxy serves the new table (its /config_dump hash), then
 * loads pages through the ingress gateway from a client outside the mesh, as a browser.
 *
 * The apps are the harness's stand-ins under the upstream image names
 * (scripts/cluster/images/bookinfo.js): productpage calls details and reviews, reviews
 * v2/v3 call ratings, each forwards end-user and the tracing headers, and the page
 * carries the whole path as JSON in <pre id="path">.
 */
import { createHash } from 'crypto';
import { chartFile, useChart } from './support/chart';
import { rawHttp, secureDefaults, useOutsideClient } from './support/checks';
import { execIn, K8sObject, kubectl, kubectlOk, podsOf, readManifest, shIn, waitAvailable } from './support/kube';
import { observe, usePrometheus, windowSince } from './support/prometheus';

const GATEWAY = 'http://bookinfo-gateway.bookinfo:8080';

interface Hop {
  service: string; version: string; pod: string; requestId: string | null; user: string | null;
  trace: { traceId: string | null; spanId: string | null; parentSpanId: string | null };
  ms: number; error?: string;
}
interface Page extends Hop { details: Hop; reviews: Hop & { ratings?: Hop; stars?: string } }

const outside = useOutsideClient();
// One Prometheus for the file, deployed before the charts (its own namespace: the tracing test removes istio-system).
const prometheus = usePrometheus('bookinfo');
const REVIEWS = 'reviews.bookinfo.svc.cluster.local';
const reviewsScraped = `sum(istio_requests_total{reporter="source",destination_service="${REVIEWS}"})`;

const unescape = (s: string) => s.replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/** N loads of /productpage through the gateway, one after another; each page's path, or "FAILED ..." */
async function pages(n: number, opts: { user?: string; requestId?: string; cookie?: string } = {}): Promise<Array<Page | string>> {
  const headers = [
    opts.user ? `--header 'end-user: ${opts.user}'` : '',
    opts.requestId ? `--header 'x-request-id: ${opts.requestId}'` : '',
    opts.cookie ? `--header 'Cookie: ${opts.cookie}'` : '',
  ].join(' ');
  const out = await shIn(outside, 'client', `for i in $(seq 1 ${n}); do
    if out=$(timeout 20 wget -q -O - ${headers} ${GATEWAY}/productpage 2>&1); then
      echo "$out" | sed -n 's/.*<pre id="path">\\(.*\\)<\\/pre>.*/\\1/p'
    else echo "FAILED $(echo "$out" | tr '\\n' ' ')"; fi
  done`, 60_000 + n * 20_000);
  return out.split('\n').filter((l) => l.trim()).map((l) => (l.startsWith('FAILED') ? l : JSON.parse(unescape(l)) as Page));
}

/** What a page shows, in one line: "reviews v2 (ratings v1)", "reviews unavailable", ... */
function shown(p: Page | string): string {
  if (typeof p === 'string') return p;
  const r = p.reviews;
  const reviews = r.error ? 'reviews unavailable' : `reviews ${r.version}${r.ratings ? ` (${r.ratings.error ? 'ratings unavailable' : `ratings ${r.ratings.version}`})` : ''}`;
  return `${p.details.error ? 'details unavailable' : `details ${p.details.version}`}, ${reviews}`;
}

function count(list: Array<Page | string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of list) out[shown(p)] = (out[shown(p)] ?? 0) + 1;
  return out;
}

/** sha256 of the route table a manifest carries (what each proxy's /config_dump reports once loaded). */
function tableHash(objects: K8sObject[]): string {
  const cm = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'mesh-routes') as any;
  return createHash('sha256').update(cm.data['routes.json']).digest('hex');
}

/** Until every proxy of `deployments` serves the table with hash `want`; the seconds it took. */
async function untilServed(deployments: K8sObject[], want: string, limitMs = 120_000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const pods = await podsOf(deployments);
    const hashes = await Promise.all(pods.map(async (p) => {
      const r = await execIn(p, 'mesh-proxy', ['wget', '-q', '-O', '-', 'http://127.0.0.1:15000/config_dump']);
      return r.code === 0 ? JSON.parse(r.stdout).sha256 : `error ${r.code}`;
    }));
    if (pods.length === deployments.length && hashes.every((h) => h === want)) return (Date.now() - t0) / 1000;
    if (Date.now() - t0 > limitMs) throw new Error(`after ${limitMs / 1000} s, proxies serve ${JSON.stringify(hashes)}, want ${want}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

describe('bookinfo (node sidecar): the eight Bookinfo charts, applied one after another', () => {
  const chart = useChart('bookinfo');
  const reloadSeconds: Record<string, number> = {};

  /** kubectl apply the chart's YAML on the running app; what kubectl changed, and the wait until every proxy serves it. */
  async function applyChart(name: string): Promise<string[]> {
    const objects = readManifest(chartFile(name));
    const out = await kubectlOk(['apply', '-f', chartFile(name)]);
    const changed = out.split('\n').filter((l) => l.trim() && !l.endsWith(' unchanged')).map((l) => l.split(' ')[0]);
    await waitAvailable(objects.filter((o) => o.kind === 'Deployment'), 120_000);
    reloadSeconds[name] = await untilServed(chart.deployments, tableHash(objects));
    return changed;
  }

  afterAll(() => {
    process.stdout.write(`e2e: bookinfo: every proxy served the next chart's table ${Object.entries(reloadSeconds).map(([k, v]) => `${k} ${v.toFixed(1)} s`).join(', ')} after kubectl apply\n`);
  });

  test('bookinfo (all-v1): every page shows details v1 and reviews v1, for jason too', async () => {
    expect(chart.pods.map((p) => p.deployment).sort()).toEqual(
      ['bookinfo-gateway', 'details-v1', 'productpage-v1', 'ratings-v1', 'reviews-v1', 'reviews-v2', 'reviews-v3']);
    expect(count(await pages(10))).toEqual({ 'details v1, reviews v1': 10 });
    expect(count(await pages(10, { user: 'jason' }))).toEqual({ 'details v1, reviews v1': 10 });
  });

  secureDefaults(chart);

  test('the ingress gateway routes the five productpage paths of bookinfo-gateway.yaml to productpage and refuses others', async () => {
    const gateway = 'bookinfo-gateway.bookinfo:8080';
    const seen: Record<string, [number, string]> = {};
    const want: Record<string, [number, string]> = {};
    // Status and who answered (the stand-ins' x-bookinfo header; the gateway's own 404 has none).
    for (const [method, p, status] of [
      ['GET', '/productpage', 200], ['GET', '/static/bootstrap/css/bootstrap.min.css', 200], ['GET', '/login', 405],
      ['GET', '/logout', 302], ['GET', '/api/v1/products', 200], ['GET', '/api/v1/products/0/reviews', 200],
    ] as const) {
      const r = await rawHttp(outside, 'client', gateway, method, p);
      seen[`${method} ${p}`] = [r.status, r.headers['x-bookinfo'] ?? 'none'];
      want[`${method} ${p}`] = [status, 'productpage/v1'];
    }
    for (const p of ['/', '/details/0', '/reviews/0', '/health', '/productpage/1', '/logins', '/api/v2/products']) {
      const r = await rawHttp(outside, 'client', gateway, 'GET', p);
      seen[`GET ${p}`] = [r.status, r.headers['x-bookinfo'] ?? 'none'];
      want[`GET ${p}`] = [404, 'none'];
    }
    expect(seen).toEqual(want);
    // Signing in as upstream's page does: POST /login sets the user cookie.
    const login = await rawHttp(outside, 'client', gateway, 'POST', '/login', {
      headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'username=jason&passwd=x',
    });
    expect([login.status, login.headers['set-cookie'], login.headers['x-bookinfo']]).toEqual([302, 'user=jason; Path=/', 'productpage/v1']);
  });

  test('bookinfo-jason-v2: end-user jason (header or login cookie) gets reviews v2 with ratings; anyone else reviews v1', async () => {
    expect(await applyChart('bookinfo-jason-v2')).toEqual(['configmap/mesh-routes']);
    expect(count(await pages(10, { user: 'jason' }))).toEqual({ 'details v1, reviews v2 (ratings v1)': 10 });
    expect(count(await pages(5, { cookie: 'user=jason' }))).toEqual({ 'details v1, reviews v2 (ratings v1)': 5 });
    expect(count(await pages(10))).toEqual({ 'details v1, reviews v1': 10 });
    expect(count(await pages(10, { user: 'jasonx' }))).toEqual({ 'details v1, reviews v1': 10 });
  });

  test('one request, every hop: the x-request-id the gateway gives it and one b3 trace id reach productpage, details, reviews and ratings; each hop is a child span of its caller', async () => {
    const [page] = await pages(1, { user: 'jason', requestId: 'e2e-bookinfo-0001' }) as Page[];
    const hops = [page, page.details, page.reviews, page.reviews.ratings!];
    // An edge request's x-request-id is the gateway's own (Envoy regenerates it for external
    // requests), never the client's; the sidecars then keep it at every hop.
    const id = page.requestId;
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(hops.map((h) => [h.service, h.requestId, h.user])).toEqual([
      ['productpage', id, 'jason'], ['details', id, 'jason'],
      ['reviews', id, 'jason'], ['ratings', id, 'jason'],
    ]);
    // The gateway started the trace; each caller's proxy made a new span whose parent is the caller's.
    expect(page.trace.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(new Set(hops.map((h) => h.trace.traceId)).size).toBe(1);
    expect(page.details.trace.parentSpanId).toBe(page.trace.spanId);
    expect(page.reviews.trace.parentSpanId).toBe(page.trace.spanId);
    expect(page.reviews.ratings!.trace.parentSpanId).toBe(page.reviews.trace.spanId);
    expect(new Set(hops.map((h) => h.trace.spanId)).size).toBe(4);
    // Without one from the client, the gateway's proxy makes the request id, and it is the same at every hop.
    const [anon] = await pages(1) as Page[];
    expect(anon.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect([anon.details.requestId, anon.reviews.requestId]).toEqual([anon.requestId, anon.requestId]);
  });

  test('bookinfo-jason-v2-else-v3: jason gets reviews v2, anyone else v3 (red stars)', async () => {
    expect(await applyChart('bookinfo-jason-v2-else-v3')).toEqual(['configmap/mesh-routes']);
    expect(count(await pages(5, { user: 'jason' }))).toEqual({ 'details v1, reviews v2 (ratings v1)': 5 });
    const others = await pages(5);
    expect(count(others)).toEqual({ 'details v1, reviews v3 (ratings v1)': 5 });
    expect((others[0] as Page).reviews.stars).toBe('red');
  });

  test('bookinfo-reviews-80-20: 200 pages show reviews exactly 80 v1 / 20 v2; observe shows 80/20 +/- 5 from Prometheus', async () => {
    expect(await applyChart('bookinfo-reviews-80-20')).toEqual(['configmap/mesh-routes']);
    // Every call to reviews so far, as productpage's proxy counts it (its stats port, Istio's 15020).
    const productpage = (await podsOf(chart.deployments.filter((d) => d.metadata.name === 'productpage-v1')))[0];
    const stats = await shIn(productpage, 'mesh-proxy', 'wget -q -O - http://127.0.0.1:15020/stats/prometheus');
    const before = stats.split('\n').filter((l) => l.startsWith('istio_requests_total{') && l.includes(`destination_service="${REVIEWS}"`))
      .reduce((a, l) => a + Number(l.split(' ').pop()), 0);
    // productpage's own /metrics (its pod's annotations) merged into the same answer, as Istio's agent does.
    expect(stats).toMatch(/^bookinfo_pages_total \d+$/m);
    await prometheus.until(reviewsScraped, (s) => (s[0]?.value ?? 0) >= before);
    const t0 = Date.now();
    expect(count(await pages(200))).toEqual({ 'details v1, reviews v1': 160, 'details v1, reviews v2 (ratings v1)': 40 });
    await prometheus.until(reviewsScraped, (s) => (s[0]?.value ?? 0) >= before + 200);
    const r = await observe(prometheus, 'bookinfo-reviews-80-20-node-sidecar', ['--window', windowSince(t0), '--host', REVIEWS, '--max-deviation', '5']);
    process.stdout.write(`e2e: observe bookinfo-reviews-80-20-node-sidecar, exit ${r.status}:\n${r.text}`);
    expect(r.status).toBe(0);
    const [host] = r.report.hosts;
    expect(host.requests).toBeGreaterThanOrEqual(190);
    expect(host.destinations.map((d: { subset: string; observedPercent: number }) => [d.subset, Math.abs(d.observedPercent - (d.subset === 'v1' ? 80 : 20)) <= 5]))
      .toEqual([['v1', true], ['v2', true]]);
  }, 400_000);

  test('bookinfo-reviews-50-v3: 100 pages show reviews exactly 50 v1 / 50 v3', async () => {
    expect(await applyChart('bookinfo-reviews-50-v3')).toEqual(['configmap/mesh-routes']);
    expect(count(await pages(100))).toEqual({ 'details v1, reviews v1': 50, 'details v1, reviews v3 (ratings v1)': 50 });
  }, 300_000);

  test('bookinfo-reviews-v3: every page shows reviews v3', async () => {
    expect(await applyChart('bookinfo-reviews-v3')).toEqual(['configmap/mesh-routes']);
    expect(count(await pages(10, { user: 'jason' }))).toEqual({ 'details v1, reviews v3 (ratings v1)': 10 });
  });

  test("bookinfo-ratings-abort-jason: jason's ratings fail with the injected 500, anyone else's do not", async () => {
    expect(await applyChart('bookinfo-ratings-abort-jason')).toEqual(['configmap/mesh-routes']);
    const jason = await pages(5, { user: 'jason' });
    expect(count(jason)).toEqual({ 'details v1, reviews v2 (ratings unavailable)': 5 });
    expect((jason[0] as Page).reviews.ratings).toMatchObject({ error: 'Ratings service is currently unavailable', status: 500 });
    expect(count(await pages(5))).toEqual({ 'details v1, reviews v1': 5 });
    // Anyone else calling ratings directly (productpage's API) gets it: the fault matches jason only.
    const api = await rawHttp(outside, 'client', 'bookinfo-gateway.bookinfo:8080', 'GET', '/api/v1/products/0/ratings');
    expect([api.status, JSON.parse(api.body).ratings.version]).toEqual([200, 'v1']);
    const apiJason = await rawHttp(outside, 'client', 'bookinfo-gateway.bookinfo:8080', 'GET', '/api/v1/products/0/ratings', { headers: { 'end-user': 'jason' } });
    expect([apiJason.status, JSON.parse(apiJason.body).ratings]).toEqual([503, expect.objectContaining({ error: 'Ratings service is currently unavailable', status: 500 })]);
  });

  test("bookinfo-ratings-delay-jason: jason's page waits out productpage's own bound (2 x 3 s) and shows reviews unavailable; others are fast", async () => {
    expect(await applyChart('bookinfo-ratings-delay-jason')).toEqual(['configmap/mesh-routes']);
    // The 7 s delay is injected at reviews v2's proxy on its call to ratings. productpage
    // gives reviews 3 s and one retry, so the page gives up after about 6 s, before the
    // delay ends: the bug Istio's fault-injection task finds.
    const [jason] = await pages(1, { user: 'jason' }) as Page[];
    expect(shown(jason)).toBe('details v1, reviews unavailable');
    expect(jason.ms).toBeGreaterThanOrEqual(5_900);
    expect(jason.ms).toBeLessThan(7_000);
    const others = await pages(5) as Page[];
    expect(count(others)).toEqual({ 'details v1, reviews v1': 5 });
    expect(Math.max(...others.map((p) => p.ms))).toBeLessThan(1_000);
  });

  // Last, on the last chart (anyone but jason sees reviews v1): the pod lifecycle under load.
  test('pages load continuously while the gateway, productpage-v1 (the caller whose proxy routes to reviews) and reviews-v1 are replaced by kubectl rollout restart', async () => {
    const seconds = 120;
    // One page after another from outside the mesh, for a fixed time; one line per page.
    const loop = shIn(outside, 'client', `end=$(( $(date +%s) + ${seconds} )); while [ $(date +%s) -lt $end ]; do
      if out=$(timeout 15 wget -q -O - ${GATEWAY}/productpage 2>&1); then
        case "$out" in *'reviews: reviews v1'*) echo "$(date +%s) OK";; *) echo "$(date +%s) WRONG $(echo "$out" | grep -o '&quot;reviews&quot;:{&quot;error.*' | head -c 400)";; esac
      else echo "$(date +%s) FAILED $(echo "$out" | grep -o 'HTTP/1.1 [0-9]*\\|wget: .*' | head -1)"; fi
    done`, (seconds + 60) * 1000);
    const t0 = Math.floor(Date.now() / 1000);
    const restarted: Array<[string, number, number]> = [];
    await new Promise((r) => setTimeout(r, 5_000));
    // The gateway first, so that the gateway pod whose stats are read below saw the other two.
    for (const d of ['bookinfo-gateway', 'productpage-v1', 'reviews-v1']) {
      const start = Math.floor(Date.now() / 1000) - t0;
      await kubectlOk(['rollout', 'restart', `deployment/${d}`, '-n', 'bookinfo']);
      await kubectlOk(['rollout', 'status', `deployment/${d}`, '-n', 'bookinfo', '--timeout=120s'], { timeoutMs: 130_000 });
      restarted.push([d, start, Math.floor(Date.now() / 1000) - t0]);
    }
    const lines = (await loop).split('\n').filter((l) => l.trim());
    const end = Math.floor(Date.now() / 1000) - t0;
    const failed = lines.filter((l) => !l.endsWith(' OK'));
    // Why any failed: upstream attempts without a response, by kind, and retries, in the proxies that routed them.
    const causes: string[] = [];
    for (const d of ['bookinfo-gateway', 'productpage-v1']) {
      const [pod] = await podsOf(chart.deployments.filter((x) => x.metadata.name === d));
      const stats = await shIn(pod, 'mesh-proxy', 'wget -q -O - http://127.0.0.1:15000/stats/prometheus');
      const samples = stats.split('\n').filter((l) => /^mesh_proxy_(upstream_failures|retries)_total\{/.test(l) || /^mesh_proxy_requests_total\{.*code="5/.test(l));
      const restarts = (await kubectlOk(['get', 'pod', pod.name, '-n', pod.namespace, '-o', 'jsonpath={.status.containerStatuses[*].restartCount}'])).trim();
      causes.push(`${d} (container restarts ${restarts}): ${samples.map((l) => l.replace(/^mesh_proxy_/, '')).join(', ') || 'none'}`);
    }
    process.stdout.write(`e2e: rolling update: ${lines.length} pages in ${seconds} s, ${failed.length} failed; rollouts (s from start): ${restarted.map(([d, a, b]) => `${d} ${a}-${b}`).join(', ')}; proxy stats: ${causes.join('; ')}${failed.length ? `; first failures: ${failed.slice(0, 5).map((l) => `${Number(l.split(' ')[0]) - t0}s ${l.split(' ').slice(1).join(' ').replace(/&quot;/g, '"')}`).join('; ')}` : ''}\n`);
    // Every rollout finished while the loop was still running, so all of them were under load.
    expect(restarted[restarted.length - 1][2]).toBeLessThan(seconds);
    expect(end).toBeGreaterThanOrEqual(seconds);
    expect(lines.length).toBeGreaterThan(50);
    expect(failed).toEqual([]);
  }, 400_000);

  // Last: tracing adds Jaeger in istio-system; removed again at the end.
  test("bookinfo-tracing: one page load is one trace in Jaeger: the gateway's span, productpage's calls to details and reviews under it, reviews' call to ratings under that", async () => {
    try {
      const changed = await applyChart('bookinfo-tracing');
      expect(changed).toEqual(expect.arrayContaining(['namespace/istio-system', 'deployment.apps/jaeger', 'service/tracing', 'service/zipkin', 'configmap/mesh-routes']));
      const [page] = await pages(1, { user: 'jason', requestId: 'e2e-trace-0001' }) as Page[];
      expect(shown(page)).toBe('details v1, reviews v2 (ratings v1)');
      // The proxies send spans once a second: ask Jaeger's query API until all four are there.
      type Span = { spanID: string; operationName: string; references: Array<{ spanID: string }>; processID: string; tags: Array<{ key: string; value: string }> };
      let trace: { spans: Span[]; processes: Record<string, { serviceName: string }> } | undefined;
      const t0 = Date.now();
      while (Date.now() - t0 < 30_000) {
        const out = await shIn(outside, 'client', `wget -q -O - http://tracing.istio-system/jaeger/api/traces/${page.trace.traceId} 2>/dev/null || true`);
        trace = out.trim() ? JSON.parse(out).data?.[0] : undefined;
        if (trace && trace.spans.length >= 4) break;
        await new Promise((r) => setTimeout(r, 1000));
      }
      expect(trace).toBeDefined();
      const spans = trace!.spans.map((x) => ({
        id: x.spanID, parent: x.references[0]?.spanID, service: trace!.processes[x.processID].serviceName, name: x.operationName,
        kind: x.tags.find((t) => t.key === 'span.kind')?.value, requestId: x.tags.find((t) => t.key === 'guid:x-request-id')?.value,
      }));
      const gateway = spans.find((x) => x.service === 'bookinfo-gateway.bookinfo')!;
      const byName = (name: string) => spans.find((x) => x.name === name)!;
      // The ids are the ones the apps saw: the span a hop's proxy made is what the app received as x-b3-spanid.
      expect([gateway.kind, gateway.parent, gateway.id]).toEqual(['server', undefined, page.trace.spanId]);
      expect(byName('details.bookinfo.svc.cluster.local:9080/*')).toMatchObject({ service: 'productpage.bookinfo', kind: 'client', parent: gateway.id, id: page.details.trace.spanId });
      expect(byName('reviews.bookinfo.svc.cluster.local:9080/*')).toMatchObject({ service: 'productpage.bookinfo', kind: 'client', parent: gateway.id, id: page.reviews.trace.spanId });
      expect(byName('ratings.bookinfo.svc.cluster.local:9080/*')).toMatchObject({
        service: 'reviews.bookinfo', kind: 'client', parent: page.reviews.trace.spanId, id: page.reviews.ratings!.trace.spanId,
      });
      // The gateway's fresh x-request-id (not the client's e2e-trace-0001), on every span.
      expect(page.requestId).not.toBe('e2e-trace-0001');
      expect(spans.map((x) => x.requestId)).toEqual(spans.map(() => page.requestId));
      expect(spans).toHaveLength(4);
      // The UI where the seed needed it: NodePort 30686 on the node, under /jaeger.
      const node = (await kubectlOk(['get', 'nodes', '-o', 'jsonpath={.items[0].status.addresses[?(@.type=="InternalIP")].address}'])).trim();
      const ui = await shIn(outside, 'client', `wget -q -O - http://${node}:30686/jaeger/search >/dev/null && echo OK || echo FAILED`);
      expect(ui.trim()).toBe('OK');
      process.stdout.write(`e2e: tracing: one page load, ${spans.length} spans in Jaeger ${((Date.now() - t0) / 1000).toFixed(1)} s after the page: ${spans.map((x) => `${x.service} ${x.kind} ${x.name}`).join('; ')}\n`);
    } finally {
      await kubectl(['delete', 'namespace', 'istio-system', '--wait=true', '--timeout=120s'], { timeoutMs: 130_000 });
    }
  }, 300_000);
});
