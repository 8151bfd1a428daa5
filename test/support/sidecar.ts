// Loopback harness for the mesh proxy: real backend servers, the bundled proxy
// (build/sidecar/main.js, built by `npm test`'s pretest) as a child process.
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RouteTable } from '../../model';
import { K8sObject } from './synth';

export const SIDECAR_BUNDLE = join(__dirname, '..', '..', 'build', 'sidecar', 'main.js');
// The proxy runs with the Node options its image sets (apps/sidecar/Dockerfile), so that
// memory measured here is memory in the pod.
const IMAGE_NODE_OPTIONS = /NODE_OPTIONS="([^"]*)"/.exec(readFileSync(join(__dirname, '..', '..', 'apps', 'sidecar', 'Dockerfile'), 'utf8'))?.[1] ?? '';

export interface Seen { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }

export interface Backend {
  readonly port: number;
  readonly seen: Seen[];
  /** Requests whose connection closed before the backend answered (client aborts that reached it). */
  aborted: number;
  close(): Promise<void>;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string, n: number) => void;

// Backends a failed test did not close would keep jest from exiting: closed after the file.
const openBackends = new Set<Backend>();
afterAll(() => Promise.all([...openBackends].map((b) => b.close())));

/** A backend that records what it receives; by default it answers 200 with its name. */
export async function backend(name: string, handler?: Handler): Promise<Backend> {
  const seen: Seen[] = [];
  const b: Backend = { port: 0, seen, aborted: 0, close: async () => undefined };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString();
      seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
      res.on('close', () => { if (!res.writableFinished) b.aborted++; });
      if (handler) handler(req, res, body, seen.length);
      else res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name }).end(name);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  (b as { port: number }).port = (server.address() as AddressInfo).port;
  b.close = () => new Promise<void>((r) => { openBackends.delete(b); server.closeAllConnections(); server.close(() => r()); });
  openBackends.add(b);
  return b;
}

/** A port nothing listens on (for connect failures). */
export async function deadPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export interface RunningProxy {
  readonly port: number;
  readonly admin: number;
  /** Istio's merged metrics port (15020 in a pod). */
  readonly stats: number;
  readonly proc: ChildProcess;
  readonly configFile: string;
  readonly log: string[];
  /** Send a signal and wait for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** The value of one Prometheus sample, 0 when absent. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
}

const running = new Set<ChildProcess>();
afterAll(() => { for (const p of running) p.kill('SIGKILL'); });

/** Start the proxy on `table` with free ports; resolves once it logs "listening". */
export async function startProxy(table: RouteTable | string, args: string[] = [], env: Record<string, string> = {}): Promise<RunningProxy> {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-proxy-'));
  const configFile = join(dir, 'routes.json');
  writeFileSync(configFile, typeof table === 'string' ? table : JSON.stringify(table));
  // A sidecar keeps serving for its whole drain period after SIGTERM (5 s): tests that do
  // not look at draining stop it sooner.
  const drain = args.includes('--drain-timeout') ? [] : ['--drain-timeout', '200'];
  const proc = spawn(process.execPath, [SIDECAR_BUNDLE, '--config', configFile, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', ...(args.includes('--stats') ? [] : ['--stats', '127.0.0.1:0']), ...drain, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: IMAGE_NODE_OPTIONS, ...env },
  });
  running.add(proc);
  const log: string[] = [];
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => { running.delete(proc); r(code); }));
  const ports = await new Promise<{ port: number; admin: number; stats: number }>((resolve, reject) => {
    let buf = '';
    proc.stderr!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i: number;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        log.push(line);
        try {
          const j = JSON.parse(line);
          if (j.msg === 'listening') resolve({ port: j.addresses[0]?.port, admin: j.admin.port, stats: j.stats?.port });
        } catch { /* not JSON */ }
      }
    });
    proc.stdout!.on('data', (d: Buffer) => log.push(...d.toString().trim().split('\n')));
    void exited.then((code) => reject(new Error(`proxy exited (${code}) before listening:\n${log.join('\n')}`)));
  });
  return {
    ...ports, proc, configFile, log,
    stop: (signal = 'SIGTERM') => { proc.kill(signal); return exited; },
    metric: async (name, labels = {}) => {
      const text = (await get(`http://127.0.0.1:${ports.admin}/stats/prometheus`)).body;
      const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
      const line = text.split('\n').find((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `) ? want.every((w) => l.includes(w)) : false);
      return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
    },
  };
}

export interface Reply { status: number; headers: http.IncomingHttpHeaders; body: string }

/** A plain GET (admin endpoints, gateway listeners). */
export function get(url: string, headers: http.OutgoingHttpHeaders = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    http.get(url, { headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    }).on('error', reject);
  });
}

/** A request through the forward proxy, as an app with HTTP_PROXY set sends it (absolute URL). */
export function viaProxy(proxyPort: number, url: string, opts: { method?: string; headers?: http.OutgoingHttpHeaders; body?: string; signal?: AbortSignal } = {}): Promise<Reply> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port: proxyPort, method: opts.method ?? 'GET', path: url, agent: false, signal: opts.signal,
      headers: { host: u.host, ...opts.headers },
    }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

/** Raw bytes to a port; resolves with everything the server sent before closing (or after `ms`). */
export function raw(port: number, data: string | Buffer, ms = 2000): Promise<string> {
  return new Promise((resolve) => {
    const sock = new Socket();
    let got = '';
    const done = () => { sock.destroy(); resolve(got); };
    const t = setTimeout(done, ms);
    sock.connect(port, '127.0.0.1', () => sock.write(data));
    sock.on('data', (d) => (got += d.toString()));
    sock.on('close', () => { clearTimeout(t); resolve(got); });
    sock.on('error', () => undefined);
  });
}

/** The route table of a synthesized chart, from its `mesh-routes` ConfigMap. */
export function routeTableOf(objs: K8sObject[], namespace?: string): RouteTable {
  const cm = objs.find((o) => o.kind === 'ConfigMap' && o.metadata.name === 'mesh-routes' && (namespace === undefined || o.metadata.namespace === namespace));
  if (!cm) throw new Error(`no mesh-routes ConfigMap${namespace ? ` in ${namespace}` : ''}`);
  return JSON.parse(cm.data['routes.json']);
}

/** `--resolve` flags sending each `host:port` to a loopback port. */
export function resolveTo(map: Record<string, number>): string[] {
  return Object.entries(map).flatMap(([from, port]) => ['--resolve', `${from}=127.0.0.1:${port}`]);
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Poll until `f` holds (or fail after `ms`). */
export async function eventually(f: () => Promise<boolean> | boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await f()) return;
    await sleep(20);
  }
  throw new Error(`condition not met within ${ms}ms: ${f.toString()}`);
}
