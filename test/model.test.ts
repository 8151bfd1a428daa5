import { buildGatewayServers, buildSubsets, buildTrafficPolicy, buildTrafficRoute, Check, checkDuration, Duration, externalHost, hostFor, isRe2, MeshValidationError, ServiceRef } from '../model';

const reviews: ServiceRef = { serviceName: 'reviews', serviceNamespace: 'bookinfo', subsetNames: ['v1', 'v2', 'v3'], servicePorts: [9080] };
const route = (http: any[], hosts: any[] = [reviews]) => buildTrafficRoute('test/route', { hosts, http });

describe('Duration', () => {
  test.each([
    ['0.002s', 2_000_000, '0.002s'],
    ['7s', 7_000_000_000, '7s'],
    ['1m', 60_000_000_000, '1m'],
    ['90s', 90_000_000_000, '90s'],
    ['1h30m', 5_400_000_000_000, '90m'],
    ['500ms', 500_000_000, '0.5s'],
    ['2h', 7_200_000_000_000, '2h'],
    ['1.5s', 1_500_000_000, '1.5s'],
  ])('reads %s and writes Istio\'s form', (text, nanos, out) => {
    const d = Duration.parse(text);
    expect(d.nanos).toBe(nanos);
    expect(d.toIstio()).toBe(out);
    expect(Duration.parse(d.toIstio()).nanos).toBe(nanos);
  });

  test('builders', () => {
    expect(Duration.millis(2).toIstio()).toBe('0.002s');
    expect(Duration.seconds(7).toIstio()).toBe('7s');
    expect(Duration.minutes(1).toIstio()).toBe('1m');
  });

  test.each(['', '7', 's', '7 s', '-1s', '1d', 'banana'])('rejects %j', (text) => {
    expect(() => Duration.parse(text)).toThrow();
  });

  test('check() requires at least 1ms', () => {
    const c = new Check('x');
    expect(checkDuration(c, 'timeout', '1ms').toMilliseconds()).toBe(1);
    expect(() => checkDuration(c, 'timeout', '0.0005s')).toThrow(/at least 1ms/);
    expect(() => checkDuration(c, 'timeout', 7)).toThrow(/a duration such as/);
  });
});

describe('hosts', () => {
  test('short name in the same namespace, FQDN from another, external hosts as given', () => {
    expect(hostFor(reviews, 'bookinfo')).toBe('reviews');
    expect(hostFor(reviews, 'other')).toBe('reviews.bookinfo.svc.cluster.local');
    expect(hostFor(reviews, undefined)).toBe('reviews.bookinfo.svc.cluster.local');
    expect(hostFor({ serviceName: 'web' }, 'any')).toBe('web');
    expect(hostFor(externalHost('api.example.com'), 'x')).toBe('api.example.com');
  });
});

describe('traffic rules', () => {
  test('matches keep Istio\'s OR-of-ANDs shape and order', () => {
    const m = route([
      {
        match: [
          { uri: { prefix: '/api' }, headers: { 'End-User': { exact: 'jason' } }, method: 'GET' },
          { queryParams: { v: { regex: '^[0-9]+$' } }, port: 9080 },
          { headers: { 'x-canary': { present: true } } },
        ],
        route: [{ to: reviews, subset: 'v2' }],
      },
      { route: [{ to: reviews, subset: 'v1' }] },
    ]);
    expect(m.http).toHaveLength(2);
    const [a, b, c] = m.http[0].match;
    expect(a.uri).toEqual({ kind: 'prefix', value: '/api' });
    expect(a.headers).toEqual({ 'end-user': { kind: 'exact', value: 'jason' } });
    expect(a.method).toEqual({ kind: 'exact', value: 'GET' });
    expect(b.queryParams).toEqual({ v: { kind: 'regex', value: '^[0-9]+$' } });
    expect(b.port).toBe(9080);
    expect(c.headers['x-canary']).toEqual({ kind: 'present', value: '' });
    expect(m.http[1].match).toEqual([]);
  });

  test('a single destination gets weight 100; several must name theirs', () => {
    expect(route([{ route: [{ to: reviews }] }]).http[0].route[0].weight).toBe(100);
    const split = route([{ route: [{ to: reviews, subset: 'v1', weight: 70 }, { to: reviews, subset: 'v2', weight: 30 }] }]);
    expect(split.http[0].route.map((d) => d.weight)).toEqual([70, 30]);
    expect(route([{ route: [{ to: reviews, subset: 'v1', weight: 0 }, { to: reviews, subset: 'v2', weight: 100 }] }]).http[0].route[0].weight).toBe(0);
  });

  test('weights must add up to 100', () => {
    expect(() => route([{ route: [{ to: reviews, subset: 'v1', weight: 70 }, { to: reviews, subset: 'v2', weight: 20 }] }]))
      .toThrow('weights adding up to 100 (they add up to 90)');
  });

  test('timeouts, retries, faults, mirror, rewrite, headers are normalized', () => {
    const m = route([{
      route: [{ to: reviews, subset: 'v1' }],
      timeout: '10s',
      retries: { attempts: 3, perTryTimeout: '2s', retryOn: ['5xx', 'connect-failure', '503'] },
      fault: { delay: { fixedDelay: '7s', percentage: 100 }, abort: { httpStatus: 500, percentage: 12.5 } },
      mirror: { to: reviews, subset: 'v3', percentage: 10 },
      rewrite: { uri: '/v2' },
      headers: { request: { set: { 'x-env': 'prod' } }, response: { remove: ['server'] } },
    }]).http[0];
    expect(m.timeout!.toIstio()).toBe('10s');
    expect(m.retries).toEqual({ attempts: 3, perTryTimeout: expect.any(Duration), retryOn: ['5xx', 'connect-failure', '503'] });
    expect(m.fault!.delay!.fixedDelay.toIstio()).toBe('7s');
    expect(m.fault!.abort).toEqual({ httpStatus: 500, percentage: 12.5 });
    expect(m.mirror).toMatchObject({ subset: 'v3', percentage: 10 });
  });

  test('a header operation value with CR or LF is refused (header injection)', () => {
    expect(() => route([{ route: [{ to: reviews }], headers: { request: { set: { 'x-env': 'prod\r\nx-admin: 1' } } } }]))
      .toThrow(/headers\.request\.set\.x-env.*a header value without CR, LF or NUL characters/);
  });

  test('query parameters match exactly or by regex, never by prefix (as Istio)', () => {
    expect(() => route([{ match: [{ queryParams: { debug: { prefix: '1' } } }], route: [{ to: reviews }] }, { route: [{ to: reviews }] }]))
      .toThrow(/queryParams\.debug.*Istio has no prefix match for query parameters/);
  });

  test('redirect instead of route', () => {
    const m = route([{ match: [{ uri: { exact: '/old' } }], redirect: { uri: '/new', redirectCode: 302 } }, { route: [{ to: reviews }] }]);
    expect(m.http[0].route).toEqual([]);
    expect(m.http[0].redirect).toEqual({ uri: '/new', redirectCode: 302 });
  });

  test('"*" is only a host with a gateway', () => {
    expect(() => route([{ route: [{ to: reviews }] }], ['*'])).toThrow(MeshValidationError);
    expect(buildTrafficRoute('t', { hosts: ['*'], gateways: ['gw'], http: [{ route: [{ to: reviews }] }] }).gateways).toEqual(['gw']);
  });

  test('a catch-all rule must come last', () => {
    expect(() => route([{ route: [{ to: reviews }] }, { match: [{ uri: { prefix: '/x' } }], route: [{ to: reviews }] }]))
      .toThrow(/rules after it can never match/);
  });
});

describe('RE2', () => {
  test('accepts RE2 and refuses what RE2 cannot do', () => {
    expect(isRe2('^/api/v[0-9]+/.*$')).toBe(true);
    expect(isRe2('(?i)jason')).toBe(true);
    expect(isRe2('(?=x)y')).toBe(false);
    expect(isRe2('(a)\\1')).toBe(false);
    expect(isRe2('[')).toBe(false);
  });
});

describe('destination policy', () => {
  test('subsets default to the version label', () => {
    expect(buildSubsets('t', [{ name: 'v1' }, { name: 'v2-mysql', labels: { version: 'v2-mysql' } }])).toEqual([
      { name: 'v1', labels: { version: 'v1' }, trafficPolicy: undefined },
      { name: 'v2-mysql', labels: { version: 'v2-mysql' }, trafficPolicy: undefined },
    ]);
  });
  test('traffic policy: load balancer, connection pool, outlier detection', () => {
    const p = buildTrafficPolicy(new Check('t'), 'trafficPolicy', {
      loadBalancer: 'LEAST_REQUEST',
      connectionPool: { tcp: { maxConnections: 100, connectTimeout: '30ms' }, http: { http1MaxPendingRequests: 10, maxRequestsPerConnection: 1 } },
      outlierDetection: { consecutive5xxErrors: 7, interval: '5m', baseEjectionTime: '15m', maxEjectionPercent: 50 },
      tls: 'ISTIO_MUTUAL',
    })!;
    expect(p.loadBalancer).toBe('LEAST_REQUEST');
    expect(p.connectionPool!.tcp!.connectTimeout!.toIstio()).toBe('0.03s');
    expect(p.outlierDetection!.interval!.toIstio()).toBe('5m');
    expect(p.tls).toBe('ISTIO_MUTUAL');
  });
  test('consistent hash: one key, a cookie ttl as a duration, Maglev of a prime size', () => {
    const p = buildTrafficPolicy(new Check('t'), 'trafficPolicy', {
      consistentHash: { httpCookie: { name: 'user', path: '/', ttl: '10s' }, maglev: { tableSize: 65537 } },
      outlierDetection: { minHealthPercent: 50 },
      connectionPool: { tcp: { tcpKeepalive: { probes: 3, time: '60s', interval: '10s' } } },
    })!;
    expect(p.consistentHash).toEqual({ httpCookie: { name: 'user', path: '/', ttl: expect.anything() }, maglev: { tableSize: 65537 } });
    expect(p.consistentHash!.httpCookie!.ttl!.toMilliseconds()).toBe(10_000);
    expect(p.outlierDetection!.minHealthPercent).toBe(50);
    expect(p.connectionPool!.tcp!.tcpKeepalive!.time!.toMilliseconds()).toBe(60_000);
  });
  test.each([
    [{ loadBalancer: 'RANDOM', consistentHash: { useSourceIp: true } }, /t: trafficPolicy.consistentHash is .*no consistentHash beside loadBalancer RANDOM/],
    [{ consistentHash: {} }, /exactly one hash key .*none given/],
    [{ consistentHash: { httpHeaderName: 'x-user', useSourceIp: true } }, /httpHeaderName and useSourceIp given/],
    [{ consistentHash: { httpHeaderName: 'x user' } }, /consistentHash.httpHeaderName is .*an HTTP header name/],
    [{ consistentHash: { httpCookie: { name: 'a;b' } } }, /httpCookie.name is .*a cookie name/],
    [{ consistentHash: { httpCookie: { name: 'u', path: '/a;b' } } }, /httpCookie.path/],
    [{ consistentHash: { useSourceIp: true, maglev: { tableSize: 65536 } } }, /maglev.tableSize is 65536.*a prime number/],
    [{ consistentHash: { useSourceIp: true, ringHash: {}, maglev: {} } }, /no maglev beside ringHash/],
    [{ consistentHash: { useSourceIp: true, ringHash: { minimumRingSize: 9_000_000 } } }, /ringHash.minimumRingSize/],
    [{ outlierDetection: { minHealthPercent: 101 } }, /minHealthPercent/],
  ])('a bad consistent hash or policy is refused: %j', (policy, message) => {
    expect(() => buildTrafficPolicy(new Check('t'), 'trafficPolicy', policy)).toThrow(message);
  });
});

describe('gateway servers', () => {
  test('HTTP with redirect, HTTPS with a credential', () => {
    const s = buildGatewayServers('t', [
      { port: 80, hosts: ['bookinfo.example.com'], httpsRedirect: true },
      { port: 443, protocol: 'HTTPS', hosts: ['bookinfo.example.com'], tls: { mode: 'SIMPLE', credentialName: 'bookinfo-cert' } },
    ]);
    expect(s.map((x) => [x.name, x.protocol, x.httpsRedirect])).toEqual([['http-80', 'HTTP', true], ['https-443', 'HTTPS', false]]);
  });
});
