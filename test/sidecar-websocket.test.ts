// WebSocket through the node sidecar and its gateway: the handshake is routed by the rules
// (matches, faults, header operations) like any request, then tunnelled both ways after the
// upstream's 101. Real `ws` servers and clients on loopback.
import * as http from 'node:http';
import * as net from 'node:net';
import { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { RouteTable } from '../model';
import { deadPort, eventually, raw, RunningProxy, startProxy } from './support/sidecar';

const CHAT = 'chat.default.svc.cluster.local';

interface Echo { port: number; handshakes: http.IncomingHttpHeaders[]; clients(): WebSocket[]; close(): Promise<void> }
/** A WebSocket echo server that prefixes every message with its name. */
async function echo(name: string): Promise<Echo> {
  const server = http.createServer((_req, res) => { res.writeHead(426, { 'content-type': 'text/plain' }); res.end('websocket only\n'); });
  const wss = new WebSocketServer({ server });
  const handshakes: http.IncomingHttpHeaders[] = [];
  wss.on('connection', (ws, req) => {
    handshakes.push(req.headers);
    ws.on('message', (data, isBinary) => ws.send(isBinary ? Buffer.concat([Buffer.from(`${name}:`), data as Buffer]) : `${name}:${data.toString()}`));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port, handshakes, clients: () => [...wss.clients],
    close: () => new Promise<void>((r) => { for (const c of wss.clients) c.terminate(); wss.close(); server.closeAllConnections(); server.close(() => r()); }),
  };
}

function table(extra: Partial<RouteTable> = {}): RouteTable {
  return {
    apiVersion: 'mesh.cdk8s.io/v1alpha1', kind: 'RouteTable', clusterDomain: 'cluster.local', outboundTrafficPolicy: 'REGISTRY_ONLY',
    services: [{ host: CHAT, ports: [8080] }, { host: `chat-v2.default.svc.cluster.local`, ports: [8080] }],
    virtualHosts: [{
      name: 'default/chat', hosts: [CHAT, 'chat.example.com'], gateways: ['mesh', 'default/edge'],
      routes: [
        { match: [{ uri: { kind: 'prefix', value: '/broken' } }], destinations: [{ host: CHAT, weight: 1 }], fault: { abort: { httpStatus: 503, percentage: 100 } } },
        { match: [{ uri: { kind: 'prefix', value: '/v2' } }], destinations: [{ host: 'chat-v2.default.svc.cluster.local', weight: 1 }], headers: { request: { set: { 'x-route': 'v2' } }, response: { set: { 'x-served-by': 'v2' } } } },
        { match: [], destinations: [{ host: CHAT, weight: 1 }] },
      ],
    }],
    gateways: [{ name: 'default/edge', servers: [{ port: 8080, listenPort: 8080, protocol: 'HTTP', hosts: ['chat.example.com'] }] }],
    ...extra,
  };
}

/** A client that talks to the proxy as an app with HTTP_PROXY would for a plain ws:// URL: the request to the proxy, Host naming the service. */
function open(proxyPort: number, url: string, headers: Record<string, string> = {}): Promise<{ ws?: WebSocket; status?: number; upgradeHeaders?: http.IncomingHttpHeaders; body?: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(url, { headers, createConnection: () => net.connect(proxyPort, '127.0.0.1') });
    ws.once('upgrade', (res) => { ws.once('open', () => resolve({ ws, status: 101, upgradeHeaders: res.headers })); });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    ws.once('error', (e) => resolve({ status: -1, body: String(e) }));
  });
}
const next = (ws: WebSocket) => new Promise<string | Buffer>((r) => ws.once('message', (d, bin) => r(bin ? (d as Buffer) : d.toString())));

describe('WebSocket through the sidecar', () => {
  let v1: Echo;
  let v2: Echo;
  let p: RunningProxy;
  beforeAll(async () => {
    v1 = await echo('v1');
    v2 = await echo('v2');
    p = await startProxy(table(), ['--resolve', `${CHAT}:8080=127.0.0.1:${v1.port}`, '--resolve', `chat-v2.default.svc.cluster.local:8080=127.0.0.1:${v2.port}`, '--tunnel-idle-timeout', '1500']);
  });
  afterAll(async () => { await p.stop(); await v1.close(); await v2.close(); });

  test('the handshake is routed by path; messages go both ways, text and a 1 MiB binary frame intact', async () => {
    const a = await open(p.port, 'ws://chat:8080/room');
    expect(a.status).toBe(101);
    a.ws!.send('hello');
    expect(await next(a.ws!)).toBe('v1:hello');
    const big = Buffer.alloc(1 << 20, 7);
    a.ws!.send(big);
    const back = await next(a.ws!) as Buffer;
    expect([back.length, back.subarray(0, 3).toString(), back.subarray(3).equals(big)]).toEqual([(1 << 20) + 3, 'v1:', true]);
    const b = await open(p.port, 'ws://chat:8080/v2/room');
    b.ws!.send('hi');
    expect(await next(b.ws!)).toBe('v2:hi');
    // The route's header operations on the handshake, both ways; the proxy's Via on the 101.
    expect(v2.handshakes.at(-1)!['x-route']).toBe('v2');
    expect(b.upgradeHeaders!['x-served-by']).toBe('v2');
    expect(b.upgradeHeaders!.via).toMatch(/mesh-proxy-/);
    a.ws!.close();
    b.ws!.close();
  });

  test('closing from either side closes the other; Istio counts the exchange as a 101', async () => {
    const a = await open(p.port, 'ws://chat:8080/room');
    const closed = new Promise<number>((r) => a.ws!.once('close', (code) => r(code)));
    await eventually(() => v1.clients().length > 0);
    for (const c of v1.clients()) c.close(4000, 'bye');
    expect(await closed).toBe(4000);
    await eventually(async () => (await p.metric('istio_requests_total', { response_code: '101', destination_service: CHAT })) >= 2);
    expect(await p.metric('mesh_proxy_upgrades_total', { result: 'tunnelled' })).toBeGreaterThanOrEqual(3);
  });

  test('a route fault answers the handshake itself; an upstream that declines the upgrade is passed on; a dead one is 503', async () => {
    expect(await open(p.port, 'ws://chat:8080/broken')).toMatchObject({ status: 503, body: 'fault filter abort\n' });
    const plain = http.createServer((_q, r) => { r.writeHead(400, { 'content-type': 'text/plain' }); r.end('no websocket here\n'); });
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r));
    const q = await startProxy(table(), ['--resolve', `${CHAT}:8080=127.0.0.1:${(plain.address() as AddressInfo).port}`, '--resolve', `chat-v2.default.svc.cluster.local:8080=127.0.0.1:${await deadPort()}`]);
    try {
      expect(await open(q.port, 'ws://chat:8080/room')).toMatchObject({ status: 400, body: 'no websocket here\n' });
      const dead = await open(q.port, 'ws://chat:8080/v2/room');
      expect(dead.status).toBe(503);
      expect(dead.body).toMatch(/connection failure/);
      expect(await q.metric('mesh_proxy_upgrades_total', { result: 'declined' })).toBe(1);
    } finally {
      await q.stop();
      plain.close();
    }
  });

  test('upgrades other than WebSocket (h2c aside), by another method, or with a body are refused, saying why', async () => {
    const irc = await raw(p.port, `GET / HTTP/1.1\r\nhost: ${CHAT}:8080\r\nconnection: upgrade\r\nupgrade: IRC/6.9\r\n\r\n`);
    expect(irc.split('\r\n')[0]).toBe('HTTP/1.1 403 Forbidden');
    expect(irc).toContain('upgrade to "IRC/6.9" by GET is not carried');
    const withBody = await raw(p.port, `GET / HTTP/1.1\r\nhost: ${CHAT}:8080\r\nconnection: upgrade\r\nupgrade: websocket\r\ncontent-length: 5\r\n\r\nhello`);
    expect(withBody.split('\r\n')[0]).toBe('HTTP/1.1 400 Bad Request');
    expect(withBody).toContain('an upgrade request with a body');
    const post = await raw(p.port, `POST / HTTP/1.1\r\nhost: ${CHAT}:8080\r\nconnection: upgrade\r\nupgrade: websocket\r\ncontent-length: 0\r\n\r\n`);
    expect(post.split('\r\n')[0]).toBe('HTTP/1.1 403 Forbidden');
  });

  test('a WebSocket with no bytes either way for the idle timeout is closed', async () => {
    const a = await open(p.port, 'ws://chat:8080/room');
    const t0 = Date.now();
    await new Promise((r) => a.ws!.once('close', r));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1200);
  });

  test('REGISTRY_ONLY: a handshake to an unknown host gets the 502 of any request', async () => {
    expect(await open(p.port, 'ws://elsewhere.example.com:8080/')).toMatchObject({ status: 502 });
  });
});

test('WebSocket through the gateway: routed by the host and path bound to the Gateway', async () => {
  const v1 = await echo('v1');
  const v2 = await echo('v2');
  const offset = (await deadPort()) - 8080;
  const p = await startProxy(table(), ['--mode', 'gateway', '--gateway', 'default/edge', '--port-offset', String(offset),
    '--resolve', `${CHAT}:8080=127.0.0.1:${v1.port}`, '--resolve', `chat-v2.default.svc.cluster.local:8080=127.0.0.1:${v2.port}`]);
  try {
    const a = await open(8080 + offset, 'ws://chat.example.com/v2/lobby');
    expect(a.status).toBe(101);
    a.ws!.send('from the edge');
    expect(await next(a.ws!)).toBe('v2:from the edge');
    // At the edge, x-forwarded-for is the gateway's to write, as for any request.
    expect(v2.handshakes.at(-1)!['x-forwarded-for']).toBe('127.0.0.1');
    a.ws!.close();
    expect(await open(8080 + offset, 'ws://other.example.com/')).toMatchObject({ status: 404 });
  } finally {
    await p.stop();
    await v1.close();
    await v2.close();
  }
});
