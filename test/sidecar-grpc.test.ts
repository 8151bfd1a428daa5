// gRPC through the node sidecar: a real gRPC client (@grpc/grpc-js) that uses the proxy as
// gRPC libraries do (grpc_proxy / https_proxy / http_proxy: a CONNECT tunnel), two versions
// of a gRPC service on loopback. The tunnel's port is declared GRPC, so the proxy serves
// HTTP/2 inside it and routes every call: a 90/10 split, a method-prefix match, retries on
// UNAVAILABLE, deadlines and route timeouts, faults as gRPC statuses, grpc_response_status.
import * as grpc from '@grpc/grpc-js';
import { execFile } from 'child_process';
import * as net from 'net';
import { join } from 'path';
import { RouteTable, RtRoute } from '../model';
import { eventually, RunningProxy, startProxy } from './support/sidecar';

const GREETER = 'greeter.default.svc.cluster.local';
const GREETER_V2 = 'greeter-v2.default.svc.cluster.local';
const bytes = { requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b };
const SERVICE = {
  hello: { path: '/demo.Greeter/Hello', requestStream: false, responseStream: false, ...bytes },
  slow: { path: '/demo.Greeter/Slow', requestStream: false, responseStream: false, ...bytes },
  flaky: { path: '/demo.Greeter/Flaky', requestStream: false, responseStream: false, ...bytes },
  invalid: { path: '/demo.Greeter/Invalid', requestStream: false, responseStream: false, ...bytes },
  stats: { path: '/demo.Admin/Stats', requestStream: false, responseStream: false, ...bytes },
  chat: { path: '/demo.Greeter/Chat', requestStream: true, responseStream: true, ...bytes },
} as unknown as grpc.ServiceDefinition;
type Unary = (req: Buffer, md: grpc.Metadata, opts: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r?: Buffer) => void) => grpc.ClientUnaryCall;
type Client = grpc.Client & { hello: Unary; slow: Unary; flaky: Unary; invalid: Unary; stats: Unary; chat(md?: grpc.Metadata): grpc.ClientDuplexStream<Buffer, Buffer> };
const ClientCtor = grpc.makeGenericClientConstructor(SERVICE, 'Greeter') as unknown as new (target: string, creds: grpc.ChannelCredentials, opts?: grpc.ChannelOptions) => Client;

interface Version { port: number; calls: string[]; authorities: string[]; cancelled: number; server: grpc.Server }
async function version(name: string): Promise<Version> {
  const server = new grpc.Server();
  const v: Version = { port: 0, calls: [], authorities: [], cancelled: 0, server };
  let flaky = 0;
  const answer = (method: string, f: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => void) => (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
    v.calls.push([method, call.metadata.get('x-user')[0], call.metadata.get('x-routed')[0]].filter((x) => x !== undefined).join(' '));
    v.authorities.push(call.getHost());
    call.on('cancelled', () => { v.cancelled++; });
    f(call, cb);
  };
  server.addService(SERVICE, {
    hello: answer('hello', (call, cb) => cb(null, Buffer.from(`${name}:${call.request.toString()}`))),
    slow: answer('slow', (call, cb) => { setTimeout(() => cb(null, Buffer.from(`${name}:late`)), 1500); }),
    // Every other call fails with UNAVAILABLE: a retry succeeds.
    flaky: answer('flaky', (_call, cb) => (flaky++ % 2 === 0 ? cb({ code: grpc.status.UNAVAILABLE, details: 'try again' }) : cb(null, Buffer.from(`${name}:ok`)))),
    invalid: answer('invalid', (_call, cb) => cb({ code: grpc.status.INVALID_ARGUMENT, details: 'bad name' })),
    stats: answer('stats', (_call, cb) => cb(null, Buffer.from(`${name}:stats`))),
    chat: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => { call.on('data', (d: Buffer) => call.write(Buffer.from(`${name}:${d.toString()}`))); call.on('end', () => call.end()); },
  });
  v.port = await new Promise<number>((r, j) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, port) => (e ? j(e) : r(port))));
  return v;
}

function table(routes: RtRoute[]): RouteTable {
  return {
    apiVersion: 'mesh.cdk8s.io/v1alpha1', kind: 'RouteTable', clusterDomain: 'cluster.local', outboundTrafficPolicy: 'REGISTRY_ONLY',
    services: [{ host: GREETER, ports: [50051], portNames: ['grpc'], protocols: ['GRPC'] }, { host: GREETER_V2, ports: [50051], portNames: ['grpc'], protocols: ['GRPC'] }],
    virtualHosts: [{ name: 'default/greeter', hosts: [GREETER], gateways: ['mesh'], routes }],
    gateways: [],
  };
}

const call = (c: Client, method: 'hello' | 'slow' | 'flaky' | 'invalid' | 'stats', body = 'x', md = new grpc.Metadata(), opts: grpc.CallOptions = {}) =>
  new Promise<{ code: number; text: string }>((resolve) => {
    c[method](Buffer.from(body), md, opts, (e, r) => resolve(e ? { code: e.code, text: e.details } : { code: 0, text: r!.toString() }));
  });

/** A client as an app with the renderer's environment makes it: grpc-js reads grpc_proxy (then https_proxy, http_proxy) when the channel is made. */
function viaProxy(proxyPort: number, target: string): Client {
  const saved = process.env.grpc_proxy;
  process.env.grpc_proxy = `http://127.0.0.1:${proxyPort}`;
  try {
    return new ClientCtor(target, grpc.credentials.createInsecure());
  } finally {
    if (saved === undefined) delete process.env.grpc_proxy; else process.env.grpc_proxy = saved;
  }
}

let v1: Version;
let v2: Version;
let p: RunningProxy;
let client: Client;
beforeAll(async () => {
  v1 = await version('v1');
  v2 = await version('v2');
  const split = [{ host: GREETER, weight: 90 }, { host: GREETER_V2, weight: 10 }];
  p = await startProxy(table([
    { match: [{ uri: { kind: 'prefix', value: '/demo.Admin/' } }], destinations: [{ host: GREETER_V2, weight: 1 }] },
    { match: [{ headers: { 'x-user': { kind: 'exact', value: 'jason' } } }], destinations: [{ host: GREETER_V2, weight: 1 }], headers: { request: { set: { 'x-routed': 'jason' } } } },
    { match: [{ uri: { kind: 'exact', value: '/demo.Greeter/Slow' } }], destinations: [{ host: GREETER, weight: 1 }], timeoutMs: 400 },
    { match: [{ uri: { kind: 'exact', value: '/demo.Greeter/Invalid' } }, { uri: { kind: 'exact', value: '/demo.Greeter/Flaky' } }], destinations: [{ host: GREETER, weight: 1 }] },
    { match: [], destinations: split },
  ]), ['--resolve', `${GREETER}:50051=127.0.0.1:${v1.port}`, '--resolve', `${GREETER_V2}:50051=127.0.0.1:${v2.port}`]);
  // As an app with the renderer's environment: gRPC goes through the proxy by CONNECT.
  client = viaProxy(p.port, `${GREETER}:50051`);
});
afterAll(async () => {
  client?.close();
  await p?.stop();
  v1?.server.forceShutdown();
  v2?.server.forceShutdown();
});

test('a 90/10 split of calls, every call routed (one tunnel, many requests)', async () => {
  const got: string[] = [];
  for (let i = 0; i < 100; i++) got.push((await call(client, 'hello', `n${i}`)).text.split(':')[0]);
  expect([got.filter((x) => x === 'v1').length, got.filter((x) => x === 'v2').length]).toEqual([90, 10]);
  expect(await p.metric('mesh_proxy_tunnels_total', { result: 'grpc' })).toBeGreaterThanOrEqual(1);
  expect(await p.metric('istio_requests_total', { destination_service: GREETER_V2, request_protocol: 'grpc', grpc_response_status: '0', response_code: '200' })).toBe(10);
});

test('a method-prefix match and a metadata match pick v2; the route\'s header operations reach it', async () => {
  for (let i = 0; i < 10; i++) expect(await call(client, 'stats')).toEqual({ code: 0, text: 'v2:stats' });
  const md = new grpc.Metadata();
  md.set('x-user', 'jason');
  expect(await call(client, 'hello', 'j', md)).toEqual({ code: 0, text: 'v2:j' });
  expect(v2.calls.at(-1)).toBe('hello jason jason');
});

test('the tunnel\'s host routes every call: a client\'s own :authority does not pick another host', async () => {
  const saved = process.env.grpc_proxy;
  process.env.grpc_proxy = `http://127.0.0.1:${p.port}`;
  const sneaky = new ClientCtor(`${GREETER}:50051`, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'elsewhere.example.com:50051' });
  if (saved === undefined) delete process.env.grpc_proxy; else process.env.grpc_proxy = saved;
  try {
    expect(await call(sneaky, 'stats')).toEqual({ code: 0, text: 'v2:stats' });
    expect(v2.authorities.at(-1)).toBe(`${GREETER}:50051`);
  } finally {
    sneaky.close();
  }
});

test('UNAVAILABLE is retried (Istio\'s default retryOn includes unavailable); INVALID_ARGUMENT is passed on as is', async () => {
  for (let i = 0; i < 4; i++) expect(await call(client, 'flaky')).toEqual({ code: 0, text: 'v1:ok' });
  expect(await p.metric('mesh_proxy_retries_total', { reason: 'grpc-14' })).toBeGreaterThanOrEqual(4);
  expect(await call(client, 'invalid')).toEqual({ code: grpc.status.INVALID_ARGUMENT, text: 'bad name' });
  await eventually(async () => (await p.metric('istio_requests_total', { grpc_response_status: '3', destination_service: GREETER })) === 1);
});

test('deadlines: the client\'s deadline cancels the upstream call; the route\'s timeout answers UNAVAILABLE (Envoy maps 504)', async () => {
  const before = v1.cancelled;
  const r = await call(client, 'slow', 'x', new grpc.Metadata(), { deadline: Date.now() + 150 });
  expect(r.code).toBe(grpc.status.DEADLINE_EXCEEDED);
  await eventually(() => v1.cancelled > before, 3000);
  const t0 = Date.now();
  const timedOut = await call(client, 'slow');
  expect([timedOut.code, timedOut.text]).toEqual([grpc.status.UNAVAILABLE, 'mesh-proxy: upstream request timeout']);
  expect(Date.now() - t0).toBeLessThan(1400);
});

test('a bidirectional stream flows both ways through the routed tunnel', async () => {
  const s = client.chat();
  const got: string[] = [];
  s.on('data', (d: Buffer) => got.push(d.toString()));
  for (const m of ['a', 'b', 'c']) s.write(Buffer.from(m));
  await eventually(() => got.length === 3);
  s.end();
  expect(got.map((g) => g.slice(3))).toEqual(['a', 'b', 'c']);
});

test('a fault abort is a gRPC status; an unknown host is refused at CONNECT under REGISTRY_ONLY', async () => {
  const q = await startProxy(table([{ match: [], destinations: [{ host: GREETER, weight: 1 }], fault: { abort: { httpStatus: 503, percentage: 100 } } }]), ['--resolve', `${GREETER}:50051=127.0.0.1:${v1.port}`]);
  const c = viaProxy(q.port, `${GREETER}:50051`);
  const other = viaProxy(q.port, 'elsewhere.example.com:50051');
  try {
    expect(await call(c, 'hello')).toEqual({ code: grpc.status.UNAVAILABLE, text: 'mesh-proxy: fault filter abort' });
    const refused = await call(other, 'hello', 'x', new grpc.Metadata(), { deadline: Date.now() + 2000 });
    expect(refused.code).not.toBe(0);
    expect(await q.metric('mesh_proxy_tunnels_total', { result: 'refused' })).toBeGreaterThanOrEqual(1);
  } finally {
    c.close();
    other.close();
    await q.stop();
  }
});

/**
 * A link that holds what the proxy sends for `holdMs` and hands it on in one write, as a
 * slow pod's socket does when it reads late: the CONNECT answer and the first bytes of the
 * tunnel (the server's HTTP/2 SETTINGS, sent at once as RFC 9113 asks) arrive in one read.
 */
async function coalescingLink(target: number, holdMs: number): Promise<{ port: number; close(): void }> {
  const server = net.createServer((down) => {
    const up = net.connect(target, '127.0.0.1');
    let held: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    up.on('data', (d) => {
      held.push(d);
      timer ??= setTimeout(() => { down.write(Buffer.concat(held)); held = []; timer = undefined; }, holdMs);
    });
    down.pipe(up);
    const end = () => { up.destroy(); down.destroy(); };
    up.on('close', end).on('error', end);
    down.on('close', end).on('error', end);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as net.AddressInfo).port, close: () => server.close() };
}

test('the proxy speaks first in a gRPC tunnel (SETTINGS right after the 200); a client that reads both at once keeps the bytes after the 200', async () => {
  // The proxy's side: the 200, then the HTTP/2 server preface without waiting for the client's.
  const raw = net.connect(p.port, '127.0.0.1');
  raw.write(`CONNECT ${GREETER}:50051 HTTP/1.1\r\nhost: ${GREETER}:50051\r\n\r\n`);
  let got = Buffer.alloc(0);
  raw.on('data', (d) => (got = Buffer.concat([got, d])));
  await eventually(() => got.length >= 19 + 9);
  raw.destroy();
  const head = 'HTTP/1.1 200 OK\r\n\r\n';
  expect(got.subarray(0, head.length).toString()).toBe(head);
  expect(got[head.length + 3]).toBe(0x4); // frame type SETTINGS
  // The e2e suite's pod client (test/e2e/support/pod-client.js) behind a link that coalesces:
  // the protocols suite failed now and then with ERR_HTTP2_ERROR when its pod read late.
  const link = await coalescingLink(p.port, 50);
  try {
    const out = await new Promise<string>((resolve, reject) => execFile(process.execPath, [join(__dirname, 'e2e', 'support', 'pod-client.js'),
      JSON.stringify(['grpc', { authority: `${GREETER}:50051`, path: '/demo.Greeter/Hello', n: 3, proxy: `http://127.0.0.1:${link.port}`, timeoutMs: 10_000 }])],
    (e, stdout) => (e ? reject(e) : resolve(stdout))));
    expect(JSON.parse(out.trim().split('\n').pop()!)).toMatchObject({ connect: 200, statuses: { 0: 3 } });
  } finally {
    link.close();
  }
});
