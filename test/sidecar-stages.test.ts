// Each stage of the proxy's request path (apps/sidecar/stages.ts) alone, without sockets:
// what it decides for a request, and what it answers by itself. The proxy suites run them
// together against real clients (sidecar-proxy, -edge, -framing, -policy, -hardening).
import type { IncomingMessage } from 'node:http';
import {
  admitToCluster, bodyPlan, faultAbort, faultDelay, GatewayListener, loopGuard, matchRoute, pickDestination, redirectReply, requestTarget,
  selectHost, Target, upstreamHead, upstreamOf,
} from '../apps/sidecar/stages';
import { compileTable, hostCandidates, RequestView } from '../apps/sidecar/table';
import { TraceContext } from '../apps/sidecar/tracing';
import { ROUTE_TABLE_API_VERSION, ROUTE_TABLE_KIND, RouteTable, RtRoute } from '../model';

const REVIEWS = 'reviews.default.svc.cluster.local';
const table: RouteTable = {
  apiVersion: ROUTE_TABLE_API_VERSION, kind: ROUTE_TABLE_KIND, clusterDomain: 'cluster.local', outboundTrafficPolicy: 'ALLOW_ANY',
  services: [
    { host: REVIEWS, ports: [9080] },
    { host: 'ratings.default.svc.cluster.local', ports: [9080, 9090] },
    { host: 'api.partner.test', ports: [443], external: { resolution: 'DNS' } },
  ],
  virtualHosts: [
    {
      name: 'default/reviews', hosts: [REVIEWS], gateways: ['mesh'],
      routes: [
        { match: [{ headers: { 'end-user': { kind: 'exact', value: 'jason' } } }], destinations: [{ host: `${REVIEWS}-v2`, weight: 100 }] },
        { match: [], destinations: [{ host: `${REVIEWS}-v1`, weight: 80 }, { host: `${REVIEWS}-v3`, weight: 20 }] },
      ],
    },
    { name: 'default/shop', hosts: ['shop.example.com'], gateways: ['default/edge'], routes: [{ match: [], destinations: [{ host: REVIEWS, weight: 100 }] }] },
  ],
  gateways: [{ name: 'default/edge', servers: [{ port: 80, listenPort: 8080, protocol: 'HTTP', hosts: ['shop.example.com', '*.shop.example.com'] }] }],
};
const mesh = compileTable(table, { kind: 'mesh' }, 'round-robin', 'default');
const edge = compileTable(table, { kind: 'gateway', names: ['default/edge'] }, 'round-robin', 'default');
const candidates = (h: string) => hostCandidates(h, 'default', 'cluster.local');
const listener: GatewayListener = { port: 8080, protocol: 'HTTP', servers: [{ gateway: 'default/edge', server: table.gateways[0].servers[0] }] };
const target = (host: string, port: number, path = '/'): Target => ({ host, port, authority: `${host}:${port}`, path });
const view = (t: Target, headers: Record<string, string> = {}): RequestView => ({ method: 'GET', path: t.path, headers, port: t.port });
const always = () => true;
const never = () => false;

describe('requestTarget', () => {
  test('origin form takes Host; absolute form its own authority; the path is normalised', () => {
    expect(requestTarget('/a/../admin', 'reviews:9080', undefined, 'base')).toEqual({ target: { host: 'reviews', port: 9080, authority: 'reviews:9080', path: '/admin' } });
    expect(requestTarget('http://Reviews:9080//x', 'other', undefined, 'merge-slashes')).toEqual({ target: { host: 'reviews', port: 9080, authority: 'Reviews:9080', path: '/x' } });
    expect(requestTarget('/a/../b', 'reviews', undefined, 'none')).toMatchObject({ target: { path: '/a/../b', port: 80 } });
  });
  test('a gateway binds the server whose hosts name the authority; its port is the default', () => {
    expect(requestTarget('/', 'x.shop.example.com', listener, 'base')).toMatchObject({ target: { port: 80 }, bound: { gateway: 'default/edge' } });
  });
  test.each([
    ['*', 'reviews', /neither a path nor an http:\/\/ URL/],
    ['/x#frag', 'reviews', /#fragment/],
    ['/%00', 'reviews', /encoded NUL/],
    ['/', undefined, /no Host header/],
    ['/', 'bad host', /is not a host name or address/],
    ['/', 'reviews:70000', /out of range/],
  ])('%s with Host %s: 400', (url, host, why) => {
    const r = requestTarget(url, host, undefined, 'base');
    expect(r).toMatchObject({ reply: { status: 400 } });
    expect('reply' in r && r.reply.body).toMatch(why);
  });
});

describe('loopGuard', () => {
  test("a Via with this proxy's token is a loop (508); another proxy's is not", () => {
    const own = '1.1 mesh-proxy-abcd1234';
    expect(loopGuard(`1.1 other, ${own}`, own)).toMatchObject({ reply: { status: 508 } });
    expect(loopGuard(['1.1 mesh-proxy-abcd1234'], own)).toMatchObject({ reply: { status: 508 } });
    expect(loopGuard('1.1 mesh-proxy-ffff0000', own)).toBeUndefined();
    expect(loopGuard(undefined, own)).toBeUndefined();
  });
});

describe('selectHost', () => {
  test('a short name, a namespaced name and the full name find the rules and the Service', () => {
    for (const h of ['reviews', 'reviews.default', REVIEWS]) {
      const s = selectHost(target(h, 9080), undefined, mesh, candidates, new Set());
      expect(s).toMatchObject({ knownHost: REVIEWS, vh: { vh: { name: 'default/reviews' } } });
    }
  });
  test("a Service's name on a port it does not have is not that Service", () => {
    expect(selectHost(target('ratings', 22), undefined, mesh, candidates, new Set())).toEqual({ vh: undefined, knownHost: undefined, otherPortOf: 'ratings.default.svc.cluster.local' });
  });
  test("the proxy's own ports are refused (508), by address or localhost", () => {
    const own = new Set(['127.0.0.1:15001']);
    expect(selectHost(target('localhost', 15001), undefined, mesh, candidates, own)).toMatchObject({ reply: { status: 508 } });
    expect(selectHost(target('127.0.0.1', 15001), undefined, mesh, candidates, own)).toMatchObject({ reply: { status: 508 } });
    expect(selectHost(target('127.0.0.1', 8080), undefined, mesh, candidates, own)).not.toHaveProperty('reply');
  });
  test("at a gateway: the server's hosts (404 otherwise), then only its Gateway's rules", () => {
    const bound = listener.servers[0];
    expect(selectHost(target('shop.example.com', 80), bound, edge, candidates, new Set())).toMatchObject({ vh: { vh: { name: 'default/shop' } } });
    expect(selectHost(target('evil.example.com', 80), bound, edge, candidates, new Set())).toMatchObject({ reply: { status: 404, body: expect.stringMatching(/not served on port 80/) } });
    // Served by the server (wildcard) but no rules of this Gateway for it.
    expect(selectHost(target('a.shop.example.com', 80), bound, edge, candidates, new Set())).toMatchObject({ reply: { status: 404, body: expect.stringMatching(/no route for host a.shop.example.com on gateway default\/edge/) } });
    // The mesh's rules for reviews are not the gateway's.
    expect(selectHost(target(REVIEWS, 80), { gateway: 'default/edge', server: { ...bound.server, hosts: ['*'] } }, edge, candidates, new Set())).toHaveProperty('reply');
  });
  test('httpsRedirect answers 301 to https with the same host and path', () => {
    const bound = { gateway: 'default/edge', server: { ...listener.servers[0].server, httpsRedirect: true } };
    expect(selectHost(target('shop.example.com', 80, '/cart?x=1'), bound, edge, candidates, new Set())).toEqual({
      reply: { status: 301, body: 'moved to https', headers: { location: 'https://shop.example.com/cart?x=1' } },
    });
  });
});

describe('matchRoute and pickDestination', () => {
  const sel = selectHost(target('reviews', 9080), undefined, mesh, candidates, new Set());
  if ('reply' in sel) throw new Error('reviews not found');
  test('the first rule whose match holds; the weighted picker spreads 80/20 over 10 picks', () => {
    const t = target('reviews', 9080);
    const jason = matchRoute(sel, view(t, { 'end-user': 'jason' }), t, mesh, 'ALLOW_ANY');
    expect('reply' in jason ? undefined : pickDestination(jason)?.host).toBe(`${REVIEWS}-v2`);
    const others = matchRoute(sel, view(t), t, mesh, 'ALLOW_ANY');
    if ('reply' in others) throw new Error('no route');
    const picks = Array.from({ length: 10 }, () => pickDestination(others)!.host);
    expect(picks.filter((h) => h.endsWith('-v1'))).toHaveLength(8);
  });
  test('no rule matching: 404 NR', () => {
    const vh = { vh: { ...table.virtualHosts[0], name: 'default/only-jason' }, routes: [] };
    expect(matchRoute({ vh }, view(target('reviews', 9080)), target('reviews', 9080), mesh, 'ALLOW_ANY')).toMatchObject({ reply: { status: 404, flags: 'NR' } });
  });
  test('a host without rules goes to itself; REGISTRY_ONLY refuses unknown hosts (502, BlackHoleCluster) but not ServiceEntry hosts', () => {
    const t = target('example.org', 80);
    expect(matchRoute({}, view(t), t, mesh, 'ALLOW_ANY')).toEqual({ route: { match: [], destinations: [{ host: 'example.org', weight: 1 }] }, virtualHost: 'PassthroughCluster' });
    expect(matchRoute({}, view(t), t, mesh, 'REGISTRY_ONLY')).toMatchObject({ reply: { status: 502, blackhole: true, body: expect.stringMatching(/not a service of this mesh/) } });
    expect(matchRoute({ otherPortOf: 'ratings.default.svc.cluster.local' }, view(t), t, mesh, 'REGISTRY_ONLY')).toMatchObject({ reply: { body: expect.stringMatching(/port 80 is not a port of service ratings.* \(it has 9080, 9090\)/) } });
    expect(matchRoute({ knownHost: REVIEWS }, view(t), t, mesh, 'REGISTRY_ONLY')).toMatchObject({ virtualHost: REVIEWS });
  });
});

describe('faults', () => {
  const route: RtRoute = { match: [], destinations: [], fault: { delay: { fixedDelayMs: 7000, percentage: 50 }, abort: { httpStatus: 503, percentage: 10 } } };
  test('delay and abort each drawn against their percentage', () => {
    const asked: number[] = [];
    const chance = (p: number) => { asked.push(p); return true; };
    expect(faultDelay(route, chance)).toBe(7000);
    expect(faultAbort(route, chance)).toEqual({ reply: { status: 503, body: 'fault filter abort', flags: 'FI' } });
    expect(asked).toEqual([50, 10]);
    expect(faultDelay(route, never)).toBeUndefined();
    expect(faultAbort(route, never)).toBeUndefined();
    expect(faultDelay({ match: [], destinations: [] }, always)).toBeUndefined();
  });
});

describe('redirectReply', () => {
  const t = target('shop.example.com', 8080, '/old?q=1');
  test('uri replaces the path, the query stays; the port stays unless the scheme changes or it is the default', () => {
    expect(redirectReply({ uri: '/new', code: 301 }, undefined, t)?.reply.headers).toEqual({ location: 'http://shop.example.com:8080/new?q=1' });
    expect(redirectReply({ scheme: 'https', code: 302 }, undefined, t)?.reply.headers).toEqual({ location: 'https://shop.example.com/old?q=1' });
    expect(redirectReply({ authority: 'www.example.com', port: 80, code: 308 }, undefined, t)).toMatchObject({ reply: { status: 308, headers: { location: 'http://www.example.com/old?q=1' } } });
    expect(redirectReply(undefined, undefined, t)).toBeUndefined();
  });
  test("on an HTTPS server the scheme is https", () => {
    const server = { port: 443, listenPort: 8443, protocol: 'HTTPS' as const, hosts: ['*'] };
    expect(redirectReply({ uri: '/x', code: 301 }, server, target('shop.example.com', 443, '/'))?.reply.headers).toEqual({ location: 'https://shop.example.com/x' });
  });
});

describe('upstreamOf', () => {
  test("the Service's single port; Istio's names for metrics; a pass-through keeps the port asked for", () => {
    const t = target('reviews', 80);
    const sel = { knownHost: REVIEWS };
    expect(upstreamOf({ host: REVIEWS, weight: 1 }, t, mesh, sel)).toEqual({ host: REVIEWS, port: 9080, destination: `${REVIEWS}:9080`, cluster: `outbound|9080||${REVIEWS}` });
    expect(upstreamOf({ host: 'example.org', weight: 1 }, target('example.org', 8081), mesh, {})).toEqual({ host: 'example.org', port: 8081, destination: 'PassthroughCluster', cluster: 'PassthroughCluster' });
  });
  test('a Service with several ports and a request on none of them: 503; no destination: 500', () => {
    expect(upstreamOf({ host: 'ratings.default.svc.cluster.local', weight: 1 }, target('x', 80), mesh, { knownHost: 'x' })).toMatchObject({ reply: { status: 503 } });
    expect(upstreamOf(undefined, target('x', 80), mesh, {})).toMatchObject({ reply: { status: 500 } });
  });
});

describe('admitToCluster', () => {
  test('at maxRequests: 503 UO with x-envoy-overloaded', () => {
    expect(admitToCluster({ active: 9, maxRequests: 10 })).toBeUndefined();
    expect(admitToCluster({ active: 10, maxRequests: 10 })).toMatchObject({ reply: { status: 503, flags: 'UO', headers: { 'x-envoy-overloaded': 'true' } } });
  });
});

describe('upstreamHead', () => {
  const trace: TraceContext = { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), parentId: 'c'.repeat(16), sampled: true } as TraceContext;
  const base = { connection: undefined, via: undefined, ownVia: '1.1 mesh-proxy-1', requestId: 'rid', trace, authority: 'reviews:9080' };
  test("the client's headers in order and case, minus hop-by-hop, nominated and proxy-written ones; then the proxy's", () => {
    const { lines, authority } = upstreamHead({
      ...base, connection: 'close, X-Secret',
      rawHeaders: ['Accept', '*/*', 'Host', 'evil', 'X-Secret', 's', 'Content-Length', '5', 'Transfer-Encoding', 'chunked', 'X-Request-Id', 'forged', 'Keep-Alive', '5', 'X-Keep', 'yes'],
    });
    expect(authority).toBe('reviews:9080');
    expect(lines.split('\r\n').filter(Boolean)).toEqual([
      'Accept: */*', 'X-Keep: yes', 'x-request-id: rid', `x-b3-traceid: ${'a'.repeat(32)}`, `x-b3-spanid: ${'b'.repeat(16)}`,
      `x-b3-parentspanid: ${'c'.repeat(16)}`, 'x-b3-sampled: 1', 'via: 1.1 mesh-proxy-1',
    ]);
  });
  test('a Connection header cannot nominate framing or the authority away', () => {
    const { lines } = upstreamHead({ ...base, connection: 'content-length, host, x-forwarded-for', rawHeaders: ['X-A', '1'] });
    expect(lines).toContain('X-A: 1');
  });
  test('at the edge: forwarding headers and x-envoy-* from the client are dropped and written by the proxy', () => {
    const { lines } = upstreamHead({
      ...base, edge: { remoteAddress: '10.0.0.9', forwardedFor: '1.2.3.4', https: true },
      rawHeaders: ['X-Forwarded-For', '6.6.6.6', 'X-Envoy-Original-Path', '/admin', 'X-Forwarded-Client-Cert', 'forged', 'X-Forwarded-Proto', 'http'],
    });
    expect(lines).not.toMatch(/6\.6\.6\.6|X-Envoy-Original-Path|forged|X-Forwarded-Proto: http/);
    expect(lines).toContain('x-forwarded-for: 1.2.3.4, 10.0.0.9\r\n');
    expect(lines).toContain('x-forwarded-proto: https\r\n');
    expect(lines).toContain('x-envoy-external-address: 10.0.0.9\r\n');
  });
  test("the route's operations: set replaces, remove drops (the proxy's own too), Host is the authority", () => {
    const { lines, authority } = upstreamHead({
      ...base, rawHeaders: ['X-Env', 'dev', 'X-Drop', '1'], rewriteAuthority: 'rewritten:9080',
      ops: { set: { 'x-env': 'prod', host: 'set-host' }, remove: ['x-drop', 'via'] },
    });
    expect(lines).not.toMatch(/X-Env: dev|X-Drop|via:/);
    expect(lines).toContain('x-env: prod\r\n');
    expect(authority).toBe('set-host');
    expect(upstreamHead({ ...base, rawHeaders: [], rewriteAuthority: 'rewritten:9080' }).authority).toBe('rewritten:9080');
  });
  test("the caller's sampling decision travels on unless this proxy made one", () => {
    const undecided = { ...trace, sampled: undefined } as TraceContext;
    expect(upstreamHead({ ...base, trace: undecided, rawHeaders: ['X-B3-Sampled', '0'] }).lines).toContain('X-B3-Sampled: 0');
    expect(upstreamHead({ ...base, rawHeaders: ['X-B3-Sampled', '0'] }).lines).not.toContain('X-B3-Sampled: 0');
  });
});

describe('bodyPlan', () => {
  const h = (x: Record<string, string>) => x as IncomingMessage['headers'];
  test('buffered when a retry or mirror may resend it and it fits; streamed once otherwise', () => {
    expect(bodyPlan(h({}), true, 1024)).toEqual({ length: undefined, mode: 'none', unbuffered: false });
    expect(bodyPlan(h({ 'content-length': '0' }), true, 1024)).toMatchObject({ mode: 'none' });
    expect(bodyPlan(h({ 'content-length': '100' }), true, 1024)).toEqual({ length: 100, mode: 'buffer', unbuffered: false });
    expect(bodyPlan(h({ 'content-length': '2048' }), true, 1024)).toEqual({ length: 2048, mode: 'stream', unbuffered: true });
    expect(bodyPlan(h({ 'transfer-encoding': 'chunked' }), true, 1024)).toEqual({ length: undefined, mode: 'stream', unbuffered: true });
    expect(bodyPlan(h({ 'content-length': '100' }), false, 1024)).toEqual({ length: 100, mode: 'stream', unbuffered: false });
  });
});
