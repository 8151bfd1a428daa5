// The proxy's pure parts: weighted picking, host names, request targets, retry conditions, table validation.
import { SmoothWeightedRoundRobin, WeightedRandom } from '../apps/sidecar/balancer';
import { rawQuery } from '../apps/sidecar/table';
import { destinationPort, normalizePath, parseTarget, responseHeaders, retriable, rewritePath } from '../apps/sidecar/proxy';
import { ConfigError, HostIndex, hostCandidates, parseRouteTable } from '../apps/sidecar/table';
import { DurationHistogram, ProxyMetrics } from '../apps/sidecar/metrics';
import { Histogram, Registry } from 'prom-client';
import { ROUTE_TABLE_API_VERSION } from '../model';

describe('smooth weighted round robin', () => {
  const picks = (weights: number[], n: number) => {
    const p = new SmoothWeightedRoundRobin(weights);
    return Array.from({ length: n }, () => p.next());
  };
  test('70/30 is exact in every window of 10 and interleaved, not 7 in a row', () => {
    const seq = picks([70, 30], 100);
    for (let i = 0; i < 100; i += 10) expect(seq.slice(i, i + 10).filter((x) => x === 1)).toHaveLength(3);
    expect(seq.slice(0, 10).join('')).not.toMatch(/0{5}/);
  });
  test('80/20 is 4:1 in every 5; 33/33/34 over 100; a zero weight is never picked', () => {
    const s = picks([80, 20], 50);
    for (let i = 0; i < 50; i += 5) expect(s.slice(i, i + 5).filter((x) => x === 1)).toHaveLength(1);
    const t = picks([33, 33, 34], 100);
    expect([0, 1, 2].map((k) => t.filter((x) => x === k).length)).toEqual([33, 33, 34]);
    expect(picks([0, 100], 20).every((x) => x === 1)).toBe(true);
  });
  test('random follows the weights of the draw', () => {
    const draws = [0.0, 0.69, 0.7, 0.99];
    const r = new WeightedRandom([70, 30], () => draws.shift()!);
    expect([r.next(), r.next(), r.next(), r.next()]).toEqual([0, 0, 1, 1]);
  });
});

describe('host names', () => {
  test('Kubernetes DNS search path from the pod\'s namespace', () => {
    expect(hostCandidates('reviews', 'bookinfo', 'cluster.local')).toEqual(['reviews.bookinfo.svc.cluster.local']);
    expect(hostCandidates('reviews.other', 'bookinfo', 'cluster.local')).toEqual(['reviews.other.svc.cluster.local', 'reviews.other']);
    expect(hostCandidates('reviews.other.svc', 'x', 'cluster.local')).toEqual(['reviews.other.svc.cluster.local']);
    expect(hostCandidates('Reviews.Other.svc.cluster.local.', 'x', 'cluster.local')).toEqual(['reviews.other.svc.cluster.local']);
    expect(hostCandidates('10.0.0.7', 'x', 'cluster.local')).toEqual(['10.0.0.7']);
    expect(hostCandidates('api.example.com', 'x', 'cluster.local')).toEqual(['api.example.com']);
  });
  test('exact beats the longest wildcard, which beats "*"', () => {
    const ix = new HostIndex<string>();
    ix.add('*', 'any');
    ix.add('*.example.com', 'wild');
    ix.add('*.shop.example.com', 'shop-wild');
    ix.add('www.example.com', 'exact');
    expect(['www.example.com', 'a.example.com', 'x.shop.example.com', 'example.org'].map((h) => ix.get(h))).toEqual(['exact', 'wild', 'shop-wild', 'any']);
  });
});

describe('request targets', () => {
  test('absolute-form (forward proxy) and origin-form with Host', () => {
    expect(parseTarget('http://Web-Svc:8080/a?b=1', undefined, 80)).toEqual({ host: 'web-svc', port: 8080, authority: 'Web-Svc:8080', path: '/a?b=1' });
    expect(parseTarget('http://web?x=1', undefined, 80)).toEqual({ host: 'web', port: 80, authority: 'web', path: '/?x=1' });
    expect(parseTarget('/p', 'shop.example.com', 80)).toEqual({ host: 'shop.example.com', port: 80, authority: 'shop.example.com', path: '/p' });
    expect(parseTarget('http://[::1]:9/', undefined, 80)).toMatchObject({ host: '::1', port: 9 });
  });
  test('bad targets are explained', () => {
    expect(parseTarget('ftp://x/', undefined, 80)).toMatch(/neither a path nor an http:\/\/ URL/);
    expect(parseTarget('/p', undefined, 80)).toBe('no Host header');
    expect(parseTarget('http://a b/', undefined, 80)).toMatch(/not a host name/);
    expect(parseTarget('http://web:70000/', undefined, 80)).toMatch(/out of range/);
  });
});

describe('retryOn conditions (Envoy semantics)', () => {
  test.each([
    [['5xx'], { status: 500 }, true], [['5xx'], { status: 404 }, false], [['5xx'], { error: 'reset' }, true],
    [['gateway-error'], { status: 502 }, true], [['gateway-error'], { status: 500 }, false], [['gateway-error'], { error: 'per-try-timeout' }, true],
    [['connect-failure'], { error: 'connect-failure' }, true], [['connect-failure'], { status: 503 }, false], [['connect-failure'], { error: 'reset' }, false],
    [['reset'], { error: 'reset' }, true], [['retriable-4xx'], { status: 409 }, true],
    [['retriable-status-codes'], { status: 503 }, true], [['retriable-status-codes', '502'], { status: 503 }, false], [['429'], { status: 429 }, true],
  ] as const)('%j on %j -> %s', (on, outcome, want) => {
    expect(retriable(on, outcome as Parameters<typeof retriable>[1])).toBe(want);
  });
});

describe('route table validation', () => {
  const ok = {
    apiVersion: ROUTE_TABLE_API_VERSION, kind: 'RouteTable', clusterDomain: 'cluster.local', outboundTrafficPolicy: 'ALLOW_ANY', services: [], gateways: [],
    virtualHosts: [{ name: 'd/v', hosts: ['a.d.svc.cluster.local'], gateways: ['mesh'], routes: [{ match: [], destinations: [{ host: 'a.d.svc.cluster.local', weight: 100 }] }] }],
  };
  const bad = (mutate: (t: any) => void) => {
    const t = JSON.parse(JSON.stringify(ok));
    mutate(t);
    return () => parseRouteTable(JSON.stringify(t), 'routes.json');
  };
  test('a good table parses', () => expect(parseRouteTable(JSON.stringify(ok), 'f').virtualHosts).toHaveLength(1));
  test.each([
    ['not JSON', () => parseRouteTable('{', 'routes.json'), /routes.json: not valid JSON/],
    ['a string weight', bad((t) => { t.virtualHosts[0].routes[0].destinations[0].weight = '100'; }), /\/virtualHosts\/0\/routes\/0\/destinations\/0\/weight must be integer/],
    ['an unknown field', bad((t) => { t.virtualHosts[0].routes[0].retryPolicy = {}; }), /must NOT have additional properties/],
    ['a bad policy', bad((t) => { t.outboundTrafficPolicy = 'DENY'; }), /outboundTrafficPolicy must be equal to one of the allowed values \(ALLOW_ANY, REGISTRY_ONLY\)/],
    ['all-zero weights', bad((t) => { t.virtualHosts[0].routes[0].destinations[0].weight = 0; }), /all weights are 0/],
    ['a non-RE2 regex', bad((t) => { t.virtualHosts[0].routes[0].match = [{ uri: { kind: 'regex', value: '(?=x)' } }]; }), /match\/0\/uri: "\(\?=x\)" is not an RE2 regular expression/],
    ['neither destinations nor redirect', bad((t) => { t.virtualHosts[0].routes[0].destinations = []; }), /needs destinations or a redirect/],
    // The rewritten path goes on the upstream's request line as it is.
    ['a rewrite with a space', bad((t) => { t.virtualHosts[0].routes[0].rewrite = { uri: '/a b' }; }), /rewrite\/uri must match pattern/],
    // Istio's rules for Host in header operations (tables written by hand, not by synth).
    ['a removed Host', bad((t) => { t.virtualHosts[0].routes[0].headers = { request: { remove: ['Host'] } }; }), /routes\/0\/headers\/request\/remove: Host cannot be removed/],
    ['Host on a response', bad((t) => { t.virtualHosts[0].routes[0].headers = { response: { add: { host: 'x' } } }; }), /headers\/response\/add: a response has no Host header/],
    ['Host set twice', bad((t) => { t.virtualHosts[0].routes[0].rewrite = { authority: 'a' }; t.virtualHosts[0].routes[0].headers = { request: { set: { host: 'b' } } }; }), /Host is set 2 times/],
    // Framing is the proxy's own: a rule that set it would reframe the message for the next hop.
    ['a route setting Content-Length', bad((t) => { t.virtualHosts[0].routes[0].headers = { request: { set: { 'Content-Length': '0' } } }; }), /headers\/request\/set: Content-Length is a framing or connection header/],
    ['a route adding Transfer-Encoding to responses', bad((t) => { t.virtualHosts[0].routes[0].headers = { response: { add: { 'transfer-encoding': 'chunked' } } }; }), /headers\/response\/add: transfer-encoding is a framing or connection header/],
    ['a rewrite with CR LF', bad((t) => { t.virtualHosts[0].routes[0].rewrite = { uri: '/a\r\nx-injected: 1' }; }), /rewrite\/uri must match pattern/],
  ])('%s is refused', (_what, f, msg) => {
    expect(f).toThrow(ConfigError);
    expect(f).toThrow(msg);
  });
});

test('paths are normalised as Istio\'s BASE does (RFC 3986 dot segments, decoded unreserved characters)', () => {
  expect(normalizePath('/public/../admin')).toBe('/admin');
  expect(normalizePath('/public/%2e%2e/admin')).toBe('/admin');
  expect(normalizePath('/public/%2E%2e/admin?x=/../y')).toBe('/admin?x=/../y');
  expect(normalizePath('/a/./b/../c/')).toBe('/a/c/');
  expect(normalizePath('/a/b/..')).toBe('/a/');
  expect(normalizePath('/../../etc')).toBe('/etc');
  expect(normalizePath('/%7Euser/%41')).toBe('/~user/A');
  expect(normalizePath('/a%2fb%3f')).toBe('/a%2Fb%3F'); // escaped slashes stay escaped (KEEP_UNCHANGED)
  expect(normalizePath('/a//b')).toBe('/a//b');
  expect(normalizePath('/a//b', true)).toBe('/a/b');
  expect(normalizePath('/plain/path?q=1')).toBe('/plain/path?q=1');
});

test("a destination's port comes from the table, never from the request (except pass-through)", () => {
  const services = new Map([['one.ns.svc.cluster.local', [8080]], ['two.ns.svc.cluster.local', [80, 9090]]]);
  expect(destinationPort({ host: 'one.ns.svc.cluster.local', port: 9999 }, 15000, services, false)).toBe(9999);
  expect(destinationPort({ host: 'one.ns.svc.cluster.local' }, 15000, services, false)).toBe(8080);
  expect(destinationPort({ host: 'two.ns.svc.cluster.local' }, 9090, services, false)).toBe(9090);
  expect(destinationPort({ host: 'two.ns.svc.cluster.local' }, 15400, services, false)).toBeUndefined();
  // A gateway's Host header (ext.example.com:15400) cannot pick the port of a portless destination.
  expect(destinationPort({ host: 'ext.example.com' }, 15400, services, false)).toBeUndefined();
  expect(destinationPort({ host: 'ext.example.com' }, 18082, services, true)).toBe(18082);
});

test('rewrite.uri as Istio: a rule without a uri match swaps only the leading "/" (its implicit prefix match)', () => {
  expect(rewritePath('/something?x=1', undefined, '/v2')).toBe('/v2something?x=1');
  expect(rewritePath('/api/items', { kind: 'prefix', value: '/api' }, '/v2')).toBe('/v2/items');
  expect(rewritePath('/exact', { kind: 'exact', value: '/exact' }, '/new')).toBe('/new');
  expect(rewritePath('/items/7', { kind: 'regex', value: '/items/[0-9]+' }, '/item')).toBe('/item');
});

test('query parameters are read as Envoy matches them: split, not percent-decoded, first value', () => {
  const q = (s: string) => Object.fromEntries(rawQuery(s));
  expect(q('debug=1&x=a%20b&x=2&flag&e=')).toEqual({ debug: '1', x: 'a%20b', flag: '', e: '' });
  expect(q('a=b=c')).toEqual({ a: 'b=c' });
});

describe('request metrics, counted as plain numbers and handed to prom-client at scrape time', () => {
  const count = async (m: ProxyMetrics, code: string) => {
    const text = await m.registry.metrics();
    const line = text.split('\n').find((l) => l.startsWith(`mesh_proxy_requests_total{virtual_host="shop/web",destination="web:80",code="${code}"}`));
    return line === undefined ? undefined : Number(line.split(' ').pop());
  };
  test('each scrape shows the running total; a reload (forgetChildren) keeps what was counted', async () => {
    const m = new ProxyMetrics();
    for (let i = 0; i < 3; i++) m.record('shop/web', 'web:80', '200', 0.001);
    m.record('shop/web', 'web:80', '503', 0.002);
    expect([await count(m, '200'), await count(m, '503')]).toEqual([3, 1]);
    m.record('shop/web', 'web:80', '200', 0.001);
    m.record('shop/web', 'web:80', '200', 0.001);
    expect(await count(m, '200')).toBe(5);
    expect(await count(m, '200')).toBe(5); // a second scrape adds nothing
    m.record('shop/web', 'web:80', '200', 0.001);
    m.forgetChildren();
    m.record('shop/web', 'web:80', '200', 0.001);
    expect(await count(m, '200')).toBe(7);
    expect((await m.registry.metrics())).toMatch(/mesh_proxy_request_duration_seconds_count\{virtual_host="shop\/web"\} 8/);
  });
  test('the duration histogram is exposed exactly as prom-client\'s own Histogram would expose it', async () => {
    const bounds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
    const theirs = new Registry();
    const h = new Histogram({ name: 'd_seconds', help: 'h', labelNames: ['virtual_host'], buckets: bounds, registers: [theirs] });
    const ours = new Registry();
    const d = new DurationHistogram('d_seconds', 'h', bounds);
    ours.registerMetric(d as unknown as Parameters<Registry['registerMetric']>[0]);
    const seen = [0.0001, 0.0005, 0.0007, 0.003, 0.2, 0.2, 9.9, 11, 42];
    seen.forEach((v, i) => { const vh = i % 3 ? 'a/web' : 'b/api'; h.labels(vh).observe(v); d.observe(vh, v); });
    expect(await ours.metrics()).toBe(await theirs.metrics());
    expect(await ours.metrics()).toMatch(/^d_seconds_bucket\{le="\+Inf",virtual_host="a\/web"\} 6$/m);
  });
  test('the in-flight gauge reads the proxy at scrape time', async () => {
    const m = new ProxyMetrics();
    let n = 4;
    m.trackInflight(() => n);
    expect(await m.registry.metrics()).toMatch(/^mesh_proxy_requests_in_flight 4$/m);
    n = 0;
    expect(await m.registry.metrics()).toMatch(/^mesh_proxy_requests_in_flight 0$/m);
  });
});

test('response heads: hop-by-hop and Connection-named headers go, Via is joined, header operations apply with removal winning', () => {
  const raw = ['Content-Type', 'text/plain', 'Connection', 'keep-alive, X-Hop', 'X-Hop', 'secret', 'Keep-Alive', 'timeout=5', 'Via', '1.1 up', 'Set-Cookie', 'a=1', 'set-cookie', 'b=2', 'X-Old', 'o'];
  expect(responseHeaders(raw, '1.1 me', undefined, false)).toEqual(['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'set-cookie', 'b=2', 'X-Old', 'o', 'via', '1.1 up, 1.1 me']);
  const ops = { set: { 'x-old': 'new', 'x-both': 'set' }, add: { 'x-added': '1' }, remove: ['x-both', 'set-cookie'] };
  expect(responseHeaders(raw, '1.1 me', ops, true)).toEqual(['Content-Type', 'text/plain', 'via', '1.1 up, 1.1 me', 'x-old', 'new', 'x-added', '1', 'connection', 'close']);
});
