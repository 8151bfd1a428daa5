// The proxy under hostile or unlucky conditions (issue "Node sidecar hardening"):
// each test here reproduces a defect found by trying to break the proxy on loopback.
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { RouteTable, RtRoute } from '../model';
import { resolveTo, RunningProxy, startProxy, viaProxy } from './support/sidecar';

const HOST = 'api.default.svc.cluster.local';

function table(routes: RtRoute[]): RouteTable {
  return {
    apiVersion: 'mesh.cdk8s.io/v1alpha1', kind: 'RouteTable', clusterDomain: 'cluster.local', outboundTrafficPolicy: 'ALLOW_ANY',
    services: [{ host: HOST, ports: [8080] }],
    virtualHosts: [{ name: 'default/api', hosts: [HOST], gateways: ['mesh'], routes }],
    gateways: [],
  };
}

const to = [{ host: HOST, port: 8080, weight: 100 }];
const prefix = (value: string) => [{ uri: { kind: 'prefix' as const, value } }];

describe('a request reaches the backend at most as often as the retry policy says', () => {
  // A backend that answers the first request of each connection (keep-alive) and resets
  // the connection when a second one arrives on it: what a server closing an idle
  // keep-alive connection just as the proxy reuses it looks like.
  let server: http.Server;
  let port = 0;
  const received: string[] = [];
  let proxy: RunningProxy;

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      received.push(`${req.method} ${req.url}`);
      const s = req.socket as typeof req.socket & { served?: number };
      s.served = (s.served ?? 0) + 1;
      if (s.served > 1) { s.destroy(); return; }
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'keep-alive' }).end('ok');
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
    proxy = await startProxy(table([
      { match: prefix('/default'), destinations: to },
      { match: prefix('/off'), destinations: to, retries: { attempts: 0, retryOn: ['reset'] } },
      { match: prefix('/reset'), destinations: to, retries: { attempts: 1, retryOn: ['reset'] } },
    ]), resolveTo({ [`${HOST}:8080`]: port }));
  });
  afterAll(async () => {
    await proxy.stop();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });

  // Two requests in a row: the second reuses the pooled connection and meets the reset.
  async function pair(path: string, method = 'POST'): Promise<number[]> {
    const body = method === 'POST' ? 'x' : undefined;
    const a = await viaProxy(proxy.port, `http://api${path}`, { method, body });
    const b = await viaProxy(proxy.port, `http://api${path}`, { method, body });
    return [a.status, b.status];
  }

  test("Istio's default policy (no reset in retryOn): the reset is answered 503, the POST is not sent again", async () => {
    received.length = 0;
    expect(await pair('/default')).toEqual([200, 503]);
    expect(received).toEqual(['POST /default', 'POST /default']);
    expect(await proxy.metric('mesh_proxy_retries_total', { reason: 'reset' })).toBe(0);
  });

  test('attempts: 0 is exactly one try, even for a GET on a reused connection', async () => {
    received.length = 0;
    expect(await pair('/off', 'GET')).toEqual([200, 503]);
    expect(received).toEqual(['GET /off', 'GET /off']);
  });

  test('retryOn reset: the resend is the policy\'s, and counted', async () => {
    received.length = 0;
    const before = await proxy.metric('mesh_proxy_retries_total', { reason: 'reset' });
    expect(await pair('/reset')).toEqual([200, 200]);
    expect(received).toEqual(['POST /reset', 'POST /reset', 'POST /reset']);
    expect(await proxy.metric('mesh_proxy_retries_total', { reason: 'reset' })).toBe(before + 1);
  });
});
