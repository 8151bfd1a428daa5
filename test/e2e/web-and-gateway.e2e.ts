/**
 * The web and gateway charts, node-sidecar data plane, as pods on the local cluster
 * (`npm run test:e2e`). Every request below is made from inside a pod with
 * `kubectl exec`, as the seeds' tutorials do.
 */
import { useChart } from './support/chart';
import { get, secureDefaults, useOutsideClient } from './support/checks';
import { Pod, shIn, tally } from './support/kube';

const outside = useOutsideClient();

// Debian's busybox 1.35 wget crashes (SIGSEGV) when given -T, so each request is bounded
// with busybox's `timeout` instead.
/** N requests with busybox wget from inside a container, one body line each. */
function requests(pod: Pod, container: string, url: string, n: number): Promise<string> {
  return shIn(pod, container, `for i in $(seq 1 ${n}); do timeout 10 wget -q -O - ${url} || echo "FAILED"; done`, 120_000);
}

/** Which backend answered: the first word of the body ("hello httpd" or "tomcat-app v1: ..."). */
function backends(bodies: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [line, n] of tally(bodies)) {
    const name = line.startsWith('hello httpd') ? 'httpd' : line.startsWith('tomcat-app') ? 'tomcat' : line;
    out[name] = (out[name] ?? 0) + n;
  }
  return out;
}

describe('web-basic', () => {
  const chart = useChart('web-basic');

  test('httpd-svc:8080 answers "hello httpd" to the client', async () => {
    expect(await requests(chart.pod('client'), 'client', 'http://httpd-svc:8080/', 1)).toBe('hello httpd\n');
  });

  test('tomcat-svc:8080 answers tomcat to the client', async () => {
    expect(await requests(chart.pod('client'), 'client', 'http://tomcat-svc:8080/', 1)).toMatch(/^tomcat-app v1: /);
  });

  test('no pod of the chart has a proxy (the client and backends are outside the mesh)', () => {
    const containers = chart.pods.map((p) => `${p.deployment}: ${p.spec.containers.map((c: any) => c.name).join(',')}`);
    expect(containers.sort()).toEqual(['client: client', 'httpd: httpd', 'tomcat: tomcat']);
  });

  secureDefaults(chart);
});

describe('web-round-robin', () => {
  const chart = useChart('web-round-robin');

  test('web-svc:8080 reaches both backends over 20 requests (Kubernetes balances, no route)', async () => {
    const seen = backends(await requests(chart.pod('client'), 'client', 'http://web-svc:8080/', 20));
    expect(Object.keys(seen).sort()).toEqual(['httpd', 'tomcat']);
    expect(seen.httpd + seen.tomcat).toBe(20);
  });

  secureDefaults(chart);
});

describe('web-weighted', () => {
  const chart = useChart('web-weighted');

  test('100 requests from the client in the mesh split exactly 20 tomcat / 80 httpd', async () => {
    expect(backends(await requests(chart.pod('client'), 'client', 'http://web-svc:8080/', 100))).toEqual({ httpd: 80, tomcat: 20 });
  });

  test("the client's proxy counted those 100 requests under the route's virtual host", async () => {
    const stats = await shIn(chart.pod('client'), 'mesh-proxy', 'wget -q -O - http://127.0.0.1:15000/stats/prometheus');
    const count = (dest: string) => stats.split('\n')
      .filter((l) => l.startsWith('mesh_proxy_requests_total{') && l.includes('virtual_host="default/web-svc-vs"') && l.includes(`destination="${dest}`) && l.includes('code="200"'))
      .reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
    expect({ httpd: count('httpd-svc'), tomcat: count('tomcat-svc') }).toEqual({ httpd: 80, tomcat: 20 });
  });

  test('a client outside the mesh (no proxy) is not split: kube-proxy spreads its 100 requests evenly', async () => {
    const seen = backends(await requests(outside, 'client', 'http://web-svc:8080/', 100));
    expect(seen.httpd + seen.tomcat).toBe(100);
    // kube-proxy picks an endpoint uniformly: tomcat gets ~50, far from the route's 20
    // (25 or fewer of 100 at p = 0.5 happens about once in 10^7 runs).
    expect(seen.tomcat).toBeGreaterThan(25);
    expect(seen.tomcat).toBeLessThan(75);
  });

  secureDefaults(chart);
});

describe('demo-gateway', () => {
  const chart = useChart('demo-gateway');

  test("GET / through the gateway's Service answers nginx's page", async () => {
    const r = await get(outside, 'client', 'http://demo-gateway.default.svc.cluster.local/');
    expect(r.status).toBe(200);
    expect(r.output).toContain('<title>Welcome to nginx!</title>');
  });

  test('GET /other through the gateway is 404 (only exact / is routed)', async () => {
    expect((await get(outside, 'client', 'http://demo-gateway.default.svc.cluster.local/other')).status).toBe(404);
  });

  test('the gateway runs the proxy alone, in gateway mode, and nginx has its sidecar', () => {
    expect(chart.pod('demo-gateway').spec.containers.map((c: any) => [c.name, c.args.slice(0, 2)])).toEqual([['mesh-proxy', ['--mode', 'gateway']]]);
    expect(chart.pod('nginx').spec.containers.map((c: any) => c.name)).toEqual(['mesh-proxy', 'demo']);
  });

  secureDefaults(chart);
});
