// `cdk8s-mesh observe`: planned next to observed, from a recorded Prometheus answer and
// from live proxies on loopback; the gates; the exposition parser and the quantiles.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { App } from 'cdk8s';
import { createVariant } from '../charts';
import {
  fromPrometheus, fromProxies, Observed, observeJson, observeMarkdown, observeReport, observeText, parseExposition, promQueries, quantile,
} from '../observe';
import { prometheusDurationMs } from '../model';
import { chartPlan } from '../plan';
import { Backend, backend, resolveTo, routeTableOf, RunningProxy, startProxy, viaProxy } from './support/sidecar';
import { synthVariant, variant } from './support/synth';

jest.setTimeout(60_000);
const run = promisify(execFile);
const CLI = join(__dirname, '..', 'bin', 'cdk8s-mesh.js');

async function cli(args: string[]): Promise<{ status: number; out: string; err: string }> {
  try {
    const r = await run(process.execPath, [CLI, 'observe', ...args], { encoding: 'utf8' });
    return { status: 0, out: r.stdout, err: r.stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { status: x.code, out: x.stdout, err: x.stderr };
  }
}

function planOfVariant(id: string) {
  const app = new App();
  createVariant(app, variant(id));
  return chartPlan(app.charts[0]).plan;
}

const SVC = 'springbootapp-svc.springistiodemo.svc.cluster.local';

describe('from a recorded Prometheus answer (Prometheus 2.42 scraping the node sidecar)', () => {
  const recorded = JSON.parse(readFileSync(join(__dirname, 'fixtures', 'observe', 'prometheus-springboot-timeout.json'), 'utf8')) as { queries: Record<string, unknown> };
  const asked: string[] = [];
  // Answers only the queries it recorded: a change to the PromQL fails here.
  const fakeFetch = (async (url: string) => {
    const q = new URL(url).searchParams.get('query')!;
    asked.push(q);
    const body = recorded.queries[q];
    return new Response(JSON.stringify(body ?? { status: 'error', error: `not recorded: ${q}` }), { status: body ? 200 : 400 });
  }) as unknown as typeof fetch;
  let observed: Observed;
  beforeAll(async () => { observed = await fromPrometheus('http://prometheus:9090', [SVC], '1m', fakeFetch); });

  test('the queries read the source proxies\' reports of the chart\'s services', () => {
    const q = promQueries([SVC], '1m');
    expect(asked.sort()).toEqual([q.latency, q.requests].sort());
    expect(q.requests).toContain('reporter="source"');
    expect(q.requests).toContain('increase(istio_requests_total{');
    expect(q.latency).toContain('istio_request_duration_milliseconds_bucket');
    // A PromQL string holds the regex's escaped dots with their backslash escaped.
    expect(q.requests).toContain('springbootapp-svc\\\\.springistiodemo');
  });

  test('the timeout chart: 70/30 as planned, every v2 request 504 with UT; the deviation gate passes, the error gate fails', () => {
    const plan = planOfVariant('springboot-canary-timeout-node-sidecar');
    const r = observeReport('springboot-canary-timeout-node-sidecar', 'node-sidecar', plan, observed, { maxDeviation: 5, maxErrorRate: 5 });
    const [host] = r.hosts;
    expect(host.host).toBe(SVC);
    const [v1, v2] = host.destinations;
    expect([v1.subset, v1.plannedPercent, v1.selects]).toEqual(['v1', 70, 'version=v1']);
    expect(Math.abs(v1.deviation!)).toBeLessThanOrEqual(5);
    expect(Math.abs(v2.deviation!)).toBeLessThanOrEqual(5);
    expect(host.requests).toBeGreaterThanOrEqual(300);
    expect(v2.errorPercent).toBe(100);
    expect(Object.keys(v2.codes)).toEqual(['504']);
    expect(Object.keys(v2.flags)).toEqual(['UT']);
    expect(v2.p50Ms).toBeGreaterThan(0);
    expect(r.gate!.passed).toBe(false);
    expect(r.gate!.failures.some((f) => /v2 failed 100% of its \d+ requests \(more than 5%\); flags UT \d+/.test(f))).toBe(true);
    expect(r.gate!.failures.some((f) => /points/.test(f))).toBe(false);
    expect(observeReport('x', 'node-sidecar', plan, observed, { maxDeviation: 5 }).gate!.passed).toBe(true);
    // A plan the traffic does not follow: 50/50 asked, 70/30 seen.
    const fifty = { ...plan, hosts: plan.hosts.map((h) => ({ ...h, rules: h.rules.map((rule) => ({ ...rule, destinations: rule.destinations.map((d) => ({ ...d, percent: 50 })) })) })) };
    const off = observeReport('x', 'node-sidecar', fifty, observed, { maxDeviation: 5 });
    expect(off.gate!.passed).toBe(false);
    expect(off.gate!.failures[0]).toMatch(/v1 got 70(\.\d)?% of \d+ requests, planned 50% \(\+20(\.\d)? points, more than 5\)/);
  });

  test('text, Markdown and JSON say the same', () => {
    const plan = planOfVariant('springboot-canary-timeout-node-sidecar');
    const r = observeReport('springboot-canary-timeout-node-sidecar', 'node-sidecar', plan, observed, { maxErrorRate: 5 });
    const text = observeText(r);
    expect(text).toMatch(/springbootapp-svc\.springistiodemo v2\s+30%\s+30(\.\d)?%/);
    expect(text).toContain('gate (--max-error-rate 5): FAILED');
    const md = observeMarkdown(r);
    expect(md).toContain('| destination | planned | observed | Δ points | requests | errors | codes | flags | p50 | p99 |');
    expect(md).toContain('**Gate failed**');
    expect(JSON.parse(observeJson(r))).toEqual(JSON.parse(JSON.stringify(r)));
  });
});

describe('a host whose rules split by match', () => {
  test('shares shown, not compared, and not gated on the split', () => {
    const plan = planOfVariant('bookinfo-jason-v2');
    const reviews = 'reviews.bookinfo.svc.cluster.local';
    const observed: Observed = {
      source: 'test', latency: [],
      requests: [
        { service: reviews, version: 'v1', workload: 'reviews-v1', code: '200', flags: '-', count: 90 },
        { service: reviews, version: 'v2', workload: 'reviews-v2', code: '200', flags: '-', count: 10 },
      ],
    };
    const r = observeReport('bookinfo-jason-v2', 'istio', plan, observed, { maxDeviation: 1, hosts: [reviews] });
    expect(r.hosts).toHaveLength(1);
    expect(r.hosts[0].notCompared).toMatch(/2 rules with different destinations split its traffic by match/);
    expect(r.hosts[0].destinations.map((d) => [d.subset, d.observedPercent, d.plannedPercent])).toEqual([['v2', 10, undefined], ['v1', 90, undefined]]);
    expect(r.gate!.passed).toBe(true);
    // Named and quiet: too little to judge.
    const quiet = observeReport('bookinfo-jason-v2', 'istio', plan, { ...observed, requests: [] }, { maxDeviation: 5, hosts: [reviews], minRequests: 200 });
    expect(quiet.gate!.failures).toEqual([`${reviews}: 0 request(s) seen, fewer than 200: too few to judge`]);
  });
});

describe('from live proxies', () => {
  let v1: Backend; let v2: Backend; let proxy: RunningProxy;
  const chart = 'springboot-canary-node-sidecar';
  const canary = 'http://springbootapp-svc.springistiodemo:8080/hello';
  beforeAll(async () => {
    v1 = await backend('v1');
    v2 = await backend('v2');
    proxy = await startProxy(routeTableOf(synthVariant(variant(chart)), 'istioclient'), ['--namespace', 'istioclient', ...resolveTo({
      'springbootapp-svc-v1.springistiodemo.svc.cluster.local:8080': v1.port,
      'springbootapp-svc-v2.springistiodemo.svc.cluster.local:8080': v2.port,
    })]);
    for (let i = 0; i < 200; i++) await viaProxy(proxy.port, canary);
  });
  afterAll(async () => { await proxy.stop(); await v1.close(); await v2.close(); });

  test('the CLI shows v1 at 70% of 200 requests and its gate passes', async () => {
    const r = await cli([chart, '--proxy', `http://127.0.0.1:${proxy.stats}`, '--max-deviation', '5', '--format', 'json']);
    expect(r.err).toBe('');
    expect(r.status).toBe(0);
    const report = JSON.parse(r.out);
    expect(report.hosts[0].requests).toBe(200);
    expect(report.hosts[0].destinations.map((d: { subset: string; observedPercent: number }) => [d.subset, d.observedPercent])).toEqual([['v1', 70], ['v2', 30]]);
    expect(report.gate.passed).toBe(true);
  });

  test('with a window, only the requests inside it count', async () => {
    const url = `http://127.0.0.1:${proxy.stats}`;
    // observe waits the window between its two reads: 10 requests come meanwhile.
    const o = await fromProxies([url], 1000, fetch, async () => { for (let i = 0; i < 10; i++) await viaProxy(proxy.port, canary); });
    expect(o.requests.reduce((a, r) => a + r.count, 0)).toBe(10);
    const v1n = o.requests.filter((r) => r.version === 'v1').reduce((a, r) => a + r.count, 0);
    expect(v1n).toBe(7);
  });

  test('bad arguments are refused with the usage (2); an unreachable source is not a verdict (3)', async () => {
    const bad = await cli([chart, '--prometheus', 'http://127.0.0.1:1', '--max-deviation', '101']);
    expect(bad.status).toBe(2);
    expect(bad.err).toMatch(/--max-deviation is "101"; expected a number of percent/);
    expect((await cli([chart, '--proxy', 'http://127.0.0.1:1', '--host', 'nope'])).err).toMatch(/nope: not a host of chart springboot-canary-node-sidecar; its hosts are: springbootapp-svc/);
    const down = await cli([chart, '--prometheus', 'http://127.0.0.1:1']);
    expect(down.status).toBe(3);
    expect(down.err).toMatch(/Prometheus at http:\/\/127\.0\.0\.1:1 did not answer/);
  });
});

describe('the exposition and the quantiles', () => {
  test('labels with escapes, timestamps, special values; a broken line is named', () => {
    const s = parseExposition('# HELP x y\n# TYPE x counter\nx{a="q\\"uote",b="back\\\\slash",c="new\\nline"} 3 1700000000000\ny 4\nz{le="+Inf"} +Inf\n');
    expect(s).toEqual([
      { name: 'x', labels: { a: 'q"uote', b: 'back\\slash', c: 'new\nline' }, value: 3 },
      { name: 'y', labels: {}, value: 4 },
      { name: 'z', labels: { le: '+Inf' }, value: Infinity },
    ]);
    expect(() => parseExposition('x{a="1" 3\n')).toThrow(/unterminated labels in "x\{a=/);
    // prom-client writes NaN as "Nan" (its event-loop lag before a sample): read, not refused.
    expect(parseExposition('mesh_proxy_nodejs_eventloop_lag_mean_seconds Nan\nq NaN\nw -inf\n').map((x) => x.value)).toEqual([NaN, NaN, -Infinity]);
    expect(() => parseExposition('x banana\n')).toThrow(/not a sample line: "x banana"/);
  });

  test('windows are Prometheus durations', () => {
    expect(['30s', '1h30m', '2d', '0s', '5x', '', '1.5m'].map(prometheusDurationMs)).toEqual([30_000, 5_400_000, 172_800_000, undefined, undefined, undefined, undefined]);
  });

  test('histogram_quantile as Prometheus computes it', () => {
    const b: Array<[number, number]> = [[1, 10], [5, 50], [10, 90], [Infinity, 100]];
    expect(quantile(0.5, b)).toBe(5); // rank 50 falls at the top of the (1, 5] bucket
    expect(quantile(0.1, b)).toBe(1);
    expect(quantile(0.7, b)).toBe(7.5); // halfway through (5, 10]
    expect(quantile(0.99, b)).toBe(10); // in +Inf: the highest finite bound
    expect(quantile(0.5, [[1, 0], [Infinity, 0]])).toBeUndefined();
  });
});
