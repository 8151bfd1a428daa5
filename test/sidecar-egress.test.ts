// HTTPS egress through the node sidecar: CONNECT tunnels as curl and Node's TLS client make
// them through HTTPS_PROXY, the outbound policy per tunnel (REGISTRY_ONLY: 403 with the
// reason), the proxy's own ports out of reach, limits, timeouts, Istio's TCP metrics.
// The HTTPS origin is a real TLS server on loopback with its own CA.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tls from 'node:tls';
import { RouteTable } from '../model';
import { deadPort, eventually, raw, RunningProxy, sleep, startProxy } from './support/sidecar';

const dir = mkdtempSync(join(tmpdir(), 'mesh-egress-'));
// A CA of our own and a server certificate it signed for the external host.
execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=mesh test CA', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt')], { stdio: 'ignore' });
execFileSync('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=api.example.com', '-keyout', join(dir, 'server.key'), '-out', join(dir, 'server.csr')], { stdio: 'ignore' });
execFileSync('bash', ['-c', `printf 'subjectAltName=DNS:api.example.com,DNS:other.example.com' > ${dir}/ext && openssl x509 -req -in ${dir}/server.csr -CA ${dir}/ca.crt -CAkey ${dir}/ca.key -CAcreateserial -days 1 -extfile ${dir}/ext -out ${dir}/server.crt`], { stdio: 'ignore' });
const CA = readFileSync(join(dir, 'ca.crt'));

let origin: https.Server;
let port: number;
beforeAll(async () => {
  origin = https.createServer({ key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.crt')) }, (req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => res.end(`origin ${req.method} ${req.url} ${body}`));
  });
  await new Promise<void>((r) => origin.listen(0, '127.0.0.1', r));
  port = (origin.address() as AddressInfo).port;
});
afterAll(() => new Promise<void>((r) => { origin.closeAllConnections(); origin.close(() => r()); }));

function table(policy: 'ALLOW_ANY' | 'REGISTRY_ONLY', services: RouteTable['services'] = []): RouteTable {
  return { apiVersion: 'mesh.cdk8s.io/v1alpha1', kind: 'RouteTable', clusterDomain: 'cluster.local', outboundTrafficPolicy: policy, services, virtualHosts: [], gateways: [] };
}
const resolve = () => ['--resolve', `api.example.com:${port}=127.0.0.1:${port}`, '--resolve', `other.example.com:${port}=127.0.0.1:${port}`];

/** The proxy's answer to a CONNECT: the status line and body, and the socket when it is open. */
function connect(proxyPort: number, authority: string): Promise<{ status: number; head: string; socket?: net.Socket }> {
  return new Promise((resolveP, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxyPort, method: 'CONNECT', path: authority, agent: false });
    req.on('connect', (res, socket, head) => {
      // Bytes after the 200 are the tunnel's (TLS servers wait for the hello, but keep them anyway).
      if (res.statusCode === 200) { if (head.length) socket.unshift(head); return resolveP({ status: 200, head: '', socket }); }
      let body = head.toString();
      socket.on('data', (d) => (body += d));
      socket.on('close', () => resolveP({ status: res.statusCode!, head: `${JSON.stringify(res.headers)}\n${body}` }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** An HTTPS GET through a tunnel, with the origin's certificate checked against our CA. */
async function httpsVia(proxyPort: number, host: string, path = '/get'): Promise<string> {
  const t = await connect(proxyPort, `${host}:${port}`);
  if (t.status !== 200) throw new Error(`CONNECT answered ${t.status}: ${t.head}`);
  const secure = tls.connect({ socket: t.socket, servername: host, ca: CA });
  await new Promise<void>((r, j) => { secure.once('secureConnect', () => r()); secure.once('error', j); });
  secure.write(`GET ${path} HTTP/1.1\r\nhost: ${host}\r\nconnection: close\r\n\r\n`);
  let got = '';
  for await (const c of secure) got += c;
  return got.slice(got.indexOf('\r\n\r\n') + 4);
}

const curl = (proxyPort: number, url: string) => new Promise<{ code: number; out: string }>((r) => {
  execFile('curl', ['-sS', '--max-time', '10', '-x', `http://127.0.0.1:${proxyPort}`, '--cacert', join(dir, 'ca.crt'), url], (err, stdout, stderr) => r({ code: err ? (err as { code?: number }).code ?? 1 : 0, out: `${stdout}${stderr}` }));
});

describe('ALLOW_ANY: any destination is tunnelled; TLS stays end to end', () => {
  let p: RunningProxy;
  beforeAll(async () => { p = await startProxy(table('ALLOW_ANY'), [...resolve(), '--access-log']); });
  afterAll(() => p.stop());

  test('curl through HTTPS_PROXY: the origin answers, its certificate verified against our CA', async () => {
    const r = await curl(p.port, `https://api.example.com:${port}/hello`);
    expect(r).toEqual({ code: 0, out: 'origin GET /hello ' });
  });

  test('Node\'s TLS client over a tunnel; Istio\'s TCP metrics count the tunnel and its bytes; an access log line', async () => {
    expect(await httpsVia(p.port, 'other.example.com', '/x')).toBe('origin GET /x ');
    const labels = { destination_service_name: 'PassthroughCluster', request_protocol: 'tcp' };
    await eventually(async () => (await p.metric('istio_tcp_connections_closed_total', labels)) >= 1);
    expect(await p.metric('istio_tcp_connections_opened_total', labels)).toBeGreaterThanOrEqual(1);
    expect(await p.metric('istio_tcp_sent_bytes_total', labels)).toBeGreaterThan(200); // the ClientHello and the request, encrypted
    expect(await p.metric('istio_tcp_received_bytes_total', labels)).toBeGreaterThan(500); // the certificate chain and the answer
    await eventually(() => p.log.some((l) => l.includes('"method":"CONNECT"') && l.includes(`other.example.com:${port}`) && l.includes('"code":200')));
  });

  test('bytes a client sends right behind the CONNECT head (one write) reach the origin, after the 200', async () => {
    const echo = net.createServer((c) => c.pipe(c));
    await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
    const sock = net.connect(p.port, '127.0.0.1');
    let got = '';
    sock.on('data', (d) => (got += d));
    sock.write(`CONNECT 127.0.0.1:${(echo.address() as AddressInfo).port} HTTP/1.1\r\nhost: x\r\n\r\nping`);
    await eventually(() => got.includes('ping'));
    expect(got).toBe('HTTP/1.1 200 OK\r\n\r\nping');
    sock.destroy();
    echo.close();
  });
});

describe('REGISTRY_ONLY: ServiceEntry hosts and Services on their ports; 403 with the reason otherwise', () => {
  let p: RunningProxy;
  beforeAll(async () => {
    p = await startProxy(table('REGISTRY_ONLY', [
      { host: 'api.example.com', ports: [port], protocols: ['HTTPS'], external: { resolution: 'DNS' } },
      { host: 'web.default.svc.cluster.local', ports: [8080] },
    ]), resolve());
  });
  afterAll(() => p.stop());

  test('the ServiceEntry host is tunnelled; another host and another port are refused, saying why', async () => {
    expect(await httpsVia(p.port, 'api.example.com')).toBe('origin GET /get ');
    const other = await connect(p.port, `other.example.com:${port}`);
    expect(other.status).toBe(403);
    expect(other.head).toContain(`mesh-proxy: other.example.com is not a service of this mesh (nor a ServiceEntry host) and outboundTrafficPolicy is REGISTRY_ONLY`);
    const wrongPort = await connect(p.port, 'web:9090');
    expect(wrongPort.status).toBe(403);
    expect(wrongPort.head).toContain('port 9090 is not a port of service web.default.svc.cluster.local (it has 8080) and outboundTrafficPolicy is REGISTRY_ONLY');
    const r = await curl(p.port, `https://other.example.com:${port}/`);
    expect(r.code).not.toBe(0);
    expect(r.out).toMatch(/403/);
    expect(await p.metric('mesh_proxy_tunnels_total', { result: 'refused' })).toBe(3);
  });
});

describe('hostile CONNECTs', () => {
  let p: RunningProxy;
  beforeAll(async () => { p = await startProxy(table('ALLOW_ANY'), [...resolve(), '--tunnel-idle-timeout', '400']); });
  afterAll(() => p.stop());

  test('never the proxy\'s own ports, by loopback address, name or the unspecified address', async () => {
    for (const target of [`127.0.0.1:${p.admin}`, `localhost:${p.port}`, `0.0.0.0:${p.stats}`, `[::1]:${p.admin}`, `127.1.2.3:${p.port}`]) {
      const r = await connect(p.port, target);
      expect([target, r.status]).toEqual([target, 403]);
      expect(r.head).toContain('refusing to tunnel to the proxy\'s own port');
    }
  });

  test('targets that are not host:port are 400; nothing is connected', async () => {
    for (const target of ['/path', 'example.com', 'example.com:0', 'example.com:99999', 'http://example.com:80', 'ex%20ample.com:80', 'user@example.com:443', '-x.example.com:443', `api.example.com:${port}/x`]) {
      const got = await raw(p.port, `CONNECT ${target} HTTP/1.1\r\nhost: x\r\n\r\n`);
      expect([target, got.split('\r\n')[0]]).toEqual([target, 'HTTP/1.1 400 Bad Request']);
    }
    expect(await p.metric('mesh_proxy_tunnels_total', { result: 'opened' })).toBe(0);
  });

  test('an origin that refuses connections: 503 with the reason, counted', async () => {
    const dead = await deadPort();
    const r = await connect(p.port, `127.0.0.1:${dead}`);
    expect(r.status).toBe(503);
    expect(r.head).toMatch(/upstream connect error: ECONNREFUSED/);
    expect(await p.metric('mesh_proxy_tunnels_total', { result: 'connect_failed' })).toBe(1);
  });

  test('a tunnel with no bytes either way for the idle timeout is closed', async () => {
    const t = await connect(p.port, `api.example.com:${port}`);
    const closed = new Promise<number>((r) => { const at = Date.now(); t.socket!.once('close', () => r(Date.now() - at)); });
    const ms = await closed;
    expect(ms).toBeGreaterThanOrEqual(300);
    expect(ms).toBeLessThan(3000);
  });
});

describe('limits', () => {
  test('a ServiceEntry\'s connectionPool.maxConnections bounds its tunnels: 503 x-envoy-overloaded beyond it', async () => {
    const p = await startProxy(table('REGISTRY_ONLY', [
      { host: 'api.example.com', ports: [port], external: { resolution: 'DNS' }, policy: { connectionPool: { maxConnections: 2 } } },
    ]), resolve());
    try {
      const a = await connect(p.port, `api.example.com:${port}`);
      const b = await connect(p.port, `api.example.com:${port}`);
      const c = await connect(p.port, `api.example.com:${port}`);
      expect([a.status, b.status, c.status]).toEqual([200, 200, 503]);
      expect(c.head).toContain('"x-envoy-overloaded":"true"');
      a.socket!.destroy();
      await sleep(100);
      const d = await connect(p.port, `api.example.com:${port}`);
      expect(d.status).toBe(200);
      b.socket!.destroy();
      d.socket!.destroy();
    } finally {
      await p.stop();
    }
  });

  test('a gateway is no forward proxy: CONNECT to a gateway listener is 405', async () => {
    const gw: RouteTable = {
      ...table('ALLOW_ANY'),
      gateways: [{ name: 'default/edge', servers: [{ port: 8080, listenPort: 8080, protocol: 'HTTP', hosts: ['*'] }] }],
    };
    const p = await startProxy(gw, ['--mode', 'gateway', '--gateway', 'default/edge', '--port-offset', String(await freeOffset(8080)), ...resolve()]);
    try {
      const listening = p.log.map((l) => { try { return JSON.parse(l); } catch { return {}; } }).find((j) => j.msg === 'listening');
      const gwPort = listening.addresses.find((a: { port: number }) => a.port !== p.admin && a.port !== p.stats)?.port ?? listening.addresses[0].port;
      const r = await connect(gwPort, `api.example.com:${port}`);
      expect(r.status).toBe(405);
      expect(r.head).toContain('not served by a gateway');
    } finally {
      await p.stop();
    }
  });
});

/** A port offset that makes `base + offset` free on loopback. */
async function freeOffset(base: number): Promise<number> {
  const free = await deadPort();
  return free - base;
}
