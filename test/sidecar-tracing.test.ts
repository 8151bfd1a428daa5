// Spans from the node sidecar on loopback: two proxies in a chain with an app between
// them that forwards the tracing headers (as Bookinfo's apps do), a stand-in Zipkin (or
// OTLP) receiver, sampling, and a collector that is down or never answers.
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { RouteTable, RtTracing } from '../model';
import { Backend, backend, deadPort, eventually, resolveTo, routeTableOf, RunningProxy, sleep, startProxy, viaProxy } from './support/sidecar';
import { synthVariant, variant } from './support/synth';

jest.setTimeout(60_000);

const WEB = 'http://web-svc.default:8080/';
const base = routeTableOf(synthVariant(variant('web-weighted-node-sidecar')));
const withTracing = (t: RtTracing): RouteTable => ({ ...base, tracing: t });

/** A stand-in collector: records every span POSTed to it (Zipkin v2 arrays, or OTLP JSON). */
interface Receiver { port: number; spans: any[]; posts: number; close(): Promise<void> }
/** Receivers still open: closed after the file even when a test fails before closing its own (else jest never exits). */
const openReceivers = new Set<Receiver>();
afterAll(() => Promise.all([...openReceivers].map((r) => r.close())));

async function receiver(answer: 'ok' | 'never' = 'ok'): Promise<Receiver> {
  const r: Receiver = { port: 0, spans: [], posts: 0, close: async () => undefined };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      r.posts++;
      const body = JSON.parse(Buffer.concat(chunks).toString());
      if (req.url === '/api/v2/spans') r.spans.push(...body);
      else if (req.url === '/v1/traces') r.spans.push(...body.resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans.map((s: any) => ({ ...s, resource: rs.resource })))));
      if (answer === 'ok') res.writeHead(202).end();
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  r.port = (server.address() as AddressInfo).port;
  r.close = () => new Promise<void>((ok) => { openReceivers.delete(r); server.closeAllConnections(); server.close(() => ok()); });
  openReceivers.add(r);
  return r;
}

const zipkin = (r: { port: number }, samplingPercentage = 100): RtTracing => ({ format: 'zipkin', endpoint: `http://127.0.0.1:${r.port}/api/v2/spans`, samplingPercentage });
const TRACE_HEADERS = ['x-request-id', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid', 'x-b3-sampled', 'x-b3-flags', 'x-ot-span-context'];

describe('two proxies and an app that forwards the tracing headers', () => {
  let collector: Receiver; let downstream: Backend; let app: Backend; let front: RunningProxy; let back: RunningProxy;
  beforeAll(async () => {
    collector = await receiver();
    downstream = await backend('tomcat');
    back = await startProxy(withTracing(zipkin(collector)), resolveTo({ 'httpd-svc.default.svc.cluster.local:8080': downstream.port, 'tomcat-svc.default.svc.cluster.local:8080': downstream.port }),
      { POD_NAME: 'web-7d9f-x2', POD_IP: '10.1.0.7', MESH_SERVICE_NAME: 'web.default' });
    // The app behind the first proxy calls on through its own proxy, forwarding what it received.
    app = await backend('app', (req, res) => {
      const headers = Object.fromEntries(TRACE_HEADERS.filter((h) => req.headers[h] !== undefined).map((h) => [h, req.headers[h] as string]));
      void viaProxy(back.port, WEB, { headers }).then((r) => res.writeHead(200).end(`app -> ${r.body}`));
    });
    front = await startProxy(withTracing(zipkin(collector)), resolveTo({ 'httpd-svc.default.svc.cluster.local:8080': app.port, 'tomcat-svc.default.svc.cluster.local:8080': app.port }),
      { POD_NAME: 'client-5c6b-q1', POD_IP: '10.1.0.5', MESH_SERVICE_NAME: 'client.default' });
  });
  afterAll(async () => { await front.stop(); await back.stop(); await app.close(); await downstream.close(); await collector.close(); });

  test("one trace: the second proxy's span is a child of the first's, each tagged as Envoy tags it", async () => {
    const r = await viaProxy(front.port, WEB, { headers: { 'x-request-id': 'req-42', 'user-agent': 'jest' } });
    expect(r.body).toBe('app -> tomcat');
    await eventually(() => collector.spans.filter((s) => s.tags['guid:x-request-id'] === 'req-42').length === 2, 5000);
    const spans = collector.spans.filter((s) => s.tags['guid:x-request-id'] === 'req-42');
    const first = spans.find((s) => s.localEndpoint.serviceName === 'client.default');
    const second = spans.find((s) => s.localEndpoint.serviceName === 'web.default');
    expect(first.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(second.traceId).toBe(first.traceId);
    expect(first.parentId).toBeUndefined();
    expect(second.parentId).toBe(first.id);
    // The span id is what the app received as x-b3-spanid; the backend saw the second proxy's.
    expect(app.seen.at(-1)!.headers['x-b3-spanid']).toBe(first.id);
    expect(downstream.seen.at(-1)!.headers['x-b3-spanid']).toBe(second.id);
    expect(downstream.seen.at(-1)!.headers['x-b3-parentspanid']).toBe(first.id);
    expect(downstream.seen.at(-1)!.headers['x-b3-sampled']).toBe('1');
    expect(first).toMatchObject({
      kind: 'CLIENT', name: 'web-svc.default.svc.cluster.local:8080/*',
      localEndpoint: { serviceName: 'client.default', ipv4: '10.1.0.5' },
      tags: {
        'http.method': 'GET', 'http.url': 'http://web-svc.default:8080/', 'http.status_code': '200', 'http.protocol': 'HTTP/1.1',
        response_flags: '-', node_id: 'sidecar~10.1.0.5~client-5c6b-q1.default~default.svc.cluster.local', component: 'proxy',
        'guid:x-request-id': 'req-42', user_agent: 'jest', 'istio.namespace': 'default',
      },
    });
    expect(first.tags.upstream_cluster).toMatch(/^outbound\|8080\|\|(httpd|tomcat)-svc\.default\.svc\.cluster\.local$/);
    // The first span encloses the second in time. Its start is causally first; the ends are
    // each process's 'close' callback, which a loaded machine may run in the inner proxy after
    // the outer one has passed the last byte on (5 ms seen on 2 busy cores): a small slack there.
    expect(first.timestamp).toBeLessThanOrEqual(second.timestamp);
    expect(first.timestamp + first.duration).toBeGreaterThanOrEqual(second.timestamp + second.duration - 50_000);
    expect(await front.metric('mesh_proxy_spans_exported_total')).toBeGreaterThanOrEqual(1);
  });

  test('an incoming trace is continued: same trace id, the caller span as parent', async () => {
    await viaProxy(front.port, WEB, { headers: { 'x-request-id': 'req-43', 'x-b3-traceid': 'c'.repeat(16), 'x-b3-spanid': 'd'.repeat(16), 'x-b3-sampled': '1' } });
    await eventually(() => collector.spans.filter((s) => s.tags['guid:x-request-id'] === 'req-43').length === 2);
    const first = collector.spans.find((s) => s.tags['guid:x-request-id'] === 'req-43' && s.localEndpoint.serviceName === 'client.default');
    expect([first.traceId, first.parentId]).toEqual(['c'.repeat(16), 'd'.repeat(16)]);
  });
});

describe('sampling as Istio does it: the percentage for new traces, the caller\'s decision otherwise', () => {
  let collector: Receiver; let b: Backend;
  beforeAll(async () => { collector = await receiver(); b = await backend('web'); });
  afterAll(async () => { await b.close(); await collector.close(); });
  const start = (pct: number) => startProxy(withTracing(zipkin(collector, pct)), resolveTo({ 'httpd-svc.default.svc.cluster.local:8080': b.port, 'tomcat-svc.default.svc.cluster.local:8080': b.port }));
  const spansOf = (prefix: string) => collector.spans.filter((s) => s.tags['guid:x-request-id'].startsWith(prefix));

  test('0%: no span, and the decision travels on (x-b3-sampled: 0); an incoming x-b3-sampled: 1 or debug flag is recorded anyway', async () => {
    const p = await start(0);
    for (let i = 0; i < 20; i++) await viaProxy(p.port, WEB, { headers: { 'x-request-id': `zero-${i}` } });
    expect(b.seen.at(-1)!.headers['x-b3-sampled']).toBe('0');
    await viaProxy(p.port, WEB, { headers: { 'x-request-id': 'zero-forced', 'x-b3-sampled': '1' } });
    await viaProxy(p.port, WEB, { headers: { 'x-request-id': 'zero-debug', 'x-b3-flags': '1' } });
    await eventually(() => spansOf('zero-').length === 2);
    await sleep(1200); // one more flush period: nothing else arrives
    expect(spansOf('zero-').map((s) => s.tags['guid:x-request-id']).sort()).toEqual(['zero-debug', 'zero-forced']);
    expect(spansOf('zero-debug')[0].debug).toBe(true);
    await p.stop();
  });

  test('100% with an incoming x-b3-sampled: 0: not recorded', async () => {
    const p = await start(100);
    await viaProxy(p.port, WEB, { headers: { 'x-request-id': 'full-off', 'x-b3-sampled': '0' } });
    await viaProxy(p.port, WEB, { headers: { 'x-request-id': 'full-on' } });
    await eventually(() => spansOf('full-on').length === 1);
    await sleep(1200);
    expect(spansOf('full-')).toHaveLength(1);
    await p.stop();
  });

  test('25% of 400 new traces are recorded (binomial: 100 +- 40 is over 4 standard deviations)', async () => {
    const p = await start(25);
    for (let i = 0; i < 400; i++) await viaProxy(p.port, WEB, { headers: { 'x-request-id': `quarter-${i}` } });
    await p.stop(); // SIGTERM sends what is queued
    const n = spansOf('quarter-').length;
    expect(n).toBeGreaterThan(60);
    expect(n).toBeLessThan(140);
    // Every request told its backend the decision, and the recorded ones are exactly those told 1.
    const told = b.seen.filter((s) => String(s.headers['x-request-id']).startsWith('quarter-'));
    expect(told.filter((s) => s.headers['x-b3-sampled'] === '1').map((s) => s.headers['x-request-id']).sort())
      .toEqual(spansOf('quarter-').map((s) => s.tags['guid:x-request-id']).sort());
  });
});

describe('a collector that is down or never answers', () => {
  let b: Backend;
  beforeAll(async () => { b = await backend('web'); });
  afterAll(() => b.close());
  const resolve = () => resolveTo({ 'httpd-svc.default.svc.cluster.local:8080': b.port, 'tomcat-svc.default.svc.cluster.local:8080': b.port });

  /** Sequential requests; the median time of one, in ms. */
  async function median(p: RunningProxy, n: number): Promise<number> {
    const t: number[] = [];
    for (let i = 0; i < n; i++) {
      const s = process.hrtime.bigint();
      expect((await viaProxy(p.port, WEB)).status).toBe(200);
      t.push(Number(process.hrtime.bigint() - s) / 1e6);
    }
    return t.sort((x, y) => x - y)[Math.floor(n / 2)];
  }

  test('down: every request answered, the spans counted as dropped (latency printed beside a proxy without tracing)', async () => {
    const off = await startProxy(base, resolve());
    const down = await startProxy(withTracing({ format: 'zipkin', endpoint: `http://127.0.0.1:${await deadPort()}/api/v2/spans`, samplingPercentage: 100 }), resolve());
    await median(off, 50); await median(down, 50); // warm up
    const [a, c] = [await median(off, 300), await median(down, 300)];
    await eventually(async () => (await down.metric('mesh_proxy_spans_dropped_total', { reason: 'collector_unreachable' })) >= 300, 5000);
    console.log(`tracing, collector down: median request ${c.toFixed(2)} ms, without tracing ${a.toFixed(2)} ms (ratio ${(c / a).toFixed(2)})`);
    await off.stop(); await down.stop();
  });

  test('never answers: requests are not held; the queue stays bounded and the overflow is counted', async () => {
    const hang = await receiver('never');
    const p = await startProxy(withTracing(zipkin(hang)), resolve());
    // Rounds of 3,000 requests, 30 at a time: 2 POSTs of 256 spans hang (each until the
    // 2 s export timeout frees its slot), 2,048 spans wait, the rest are dropped. On a slow
    // machine one round may take longer than the timeout, so rounds go on until spans drop
    // (the queue drains 512 spans per 2 s at most: any rate above 256 requests/s fills it).
    let ok = 0;
    let sent = 0;
    const dropped = () => p.metric('mesh_proxy_spans_dropped_total', { reason: 'queue_full' });
    for (let round = 0; round < 8 && (await dropped()) === 0; round++) {
      await Promise.all(Array.from({ length: 30 }, async () => {
        for (let i = 0; i < 100; i++) if ((await viaProxy(p.port, WEB)).status === 200) ok++;
      }));
      sent += 3000;
    }
    expect(ok).toBe(sent);
    expect(await dropped()).toBeGreaterThan(0);
    const rss = Number(/mesh_proxy_process_resident_memory_bytes (\d+)/.exec(await (await fetch(`http://127.0.0.1:${p.admin}/stats/prometheus`)).text())?.[1] ?? 0);
    console.log(`collector never answers: ${ok}/${sent} answered, ${await dropped()} spans dropped (queue full), RSS ${(rss / 2 ** 20).toFixed(1)} MiB`);
    await p.stop('SIGKILL');
    await hang.close();
  });
});

test('OTLP/HTTP: the same spans as OTLP JSON to /v1/traces', async () => {
  const collector = await receiver();
  const b = await backend('web');
  const p = await startProxy(withTracing({ format: 'otlp', endpoint: `http://127.0.0.1:${collector.port}/v1/traces`, samplingPercentage: 100 }),
    resolveTo({ 'httpd-svc.default.svc.cluster.local:8080': b.port, 'tomcat-svc.default.svc.cluster.local:8080': b.port }), { MESH_SERVICE_NAME: 'client.default' });
  await viaProxy(p.port, WEB, { headers: { 'x-request-id': 'otlp-1', 'x-b3-traceid': 'e'.repeat(16), 'x-b3-spanid': 'f'.repeat(16) } });
  await eventually(() => collector.spans.length === 1);
  const [s] = collector.spans;
  expect(s).toMatchObject({ traceId: `${'0'.repeat(16)}${'e'.repeat(16)}`, parentSpanId: 'f'.repeat(16), kind: 3, name: 'web-svc.default.svc.cluster.local:8080/*', status: { code: 0 } });
  expect(s.spanId).toMatch(/^[0-9a-f]{16}$/);
  expect(BigInt(s.endTimeUnixNano)).toBeGreaterThan(BigInt(s.startTimeUnixNano));
  expect(s.attributes).toEqual(expect.arrayContaining([{ key: 'guid:x-request-id', value: { stringValue: 'otlp-1' } }, { key: 'http.status_code', value: { stringValue: '200' } }]));
  expect(s.resource.attributes).toEqual(expect.arrayContaining([{ key: 'service.name', value: { stringValue: 'client.default' } }]));
  await p.stop(); await b.close(); await collector.close();
});
