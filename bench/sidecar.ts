// `npm run bench:sidecar`: the mesh proxy against nginx on loopback, in one run.
//
// 1. Throughput: wrk (1 thread, 32 connections) against the backend directly, through
//    nginx as a reverse proxy with an 80/20 split, and through the sidecar with the same
//    split (as a forward proxy, the way an app with HTTP_PROXY calls it). rps, p50, p99.
//    BENCH_ROUNDS rounds (default 3) of every target in turn, BENCH_SECONDS each (default 5);
//    the ratios are the median of the per-round ratios (the hey part below runs in rounds too).
// 2. Added latency at a fixed 1,000 rps with 1 KB bodies (the shape of Istio's own
//    benchmark): hey, directly and through the sidecar; p50/p90/p99 differences
//    (hey reports whole 0.1 ms steps, so differences carry about +-0.1 ms).
//    The sidecar has a 1,000-host route table loaded; its peak RSS and CPU are read
//    from /proc during this run.
//    The Node.js peers in bench/peers/ (undici Pool, a naive pipe, node-http-proxy) run
//    the same 80/20 split as reverse proxies, in the same run: the floor a Node proxy pays.
//    bench/peers/floor-llhttp.js, a bare proxy on Node's HTTP parser with the sidecar's
//    Node flags, is reported beside them (never in Q): the most a Node proxy reaches here.
//    The sidecar runs with the Node flags of its image (apps/sidecar/Dockerfile).
// Ends with: sidecar-bench: rps_ratio_vs_nginx=R rps_ratio_vs_node_best=Q p90_added_ms=X
//            p99_added_ms=Y rss_mb=M vcpu_per_1k=C
//
// Everything listens on 127.0.0.1 only, every run is bounded in time, and every
// process started here is stopped at the end (also on failure or Ctrl-C).
// nginx, wrk and hey come from Debian; the script installs them when missing (as root).
import { ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROUTE_TABLE_API_VERSION, RouteTable } from '../model';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
// Rounds of every wrk target in turn; ratios are taken within a round and the median
// round reported: on a shared 2-core VM one target's run can be 30% off the next one's.
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const BODY = 'x'.repeat(1024);
const SIDECAR = join(__dirname, '..', 'build', 'sidecar', 'main.js');
const DOCKERFILE = join(__dirname, '..', 'apps', 'sidecar', 'Dockerfile');
/**
 * The Node flags the image runs the proxy with: its ENTRYPOINT's flags before /app/main.js
 * and its NODE_OPTIONS, read from apps/sidecar/Dockerfile so the bench measures the proxy
 * as it runs in a pod. BENCH_NODE_FLAGS (space-separated) replaces them for experiments.
 */
function imageNodeFlags(): string[] {
  if (process.env.BENCH_NODE_FLAGS !== undefined) return process.env.BENCH_NODE_FLAGS.split(/\s+/).filter(Boolean);
  const text = readFileSync(DOCKERFILE, 'utf8');
  const entry = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(text);
  const argv: unknown = entry ? JSON.parse(entry[1]) : undefined;
  const main = Array.isArray(argv) ? argv.indexOf('/app/main.js') : -1;
  if (!Array.isArray(argv) || argv[0] !== 'node' || main < 1) {
    throw new Error(`${DOCKERFILE}: expected ENTRYPOINT ["node", FLAGS..., "/app/main.js"], found ${entry?.[0] ?? 'no ENTRYPOINT'}`);
  }
  const options = /NODE_OPTIONS="([^"]*)"/.exec(text)?.[1] ?? '';
  return [...(argv.slice(1, main) as string[]), ...options.split(/\s+/).filter(Boolean)];
}
const SIDECAR_NODE_FLAGS = [...imageNodeFlags(), ...(process.env.BENCH_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROF}`] : [])];
/** bench/peers/<name>.js; BENCH_PEERS=undici-pool (a comma list) runs fewer, for quick iterations. */
const ALL_PEERS = ['undici-pool', 'naive-pipe', 'http-proxy'];
const PEERS = process.env.BENCH_PEERS ? process.env.BENCH_PEERS.split(',').map((p) => p.trim()).filter(Boolean) : ALL_PEERS;
for (const p of PEERS) if (!ALL_PEERS.includes(p)) throw new Error(`BENCH_PEERS: no peer ${JSON.stringify(p)} (there are: ${ALL_PEERS.join(', ')})`);

const children: ChildProcess[] = [];
const nginxMasters: ChildProcess[] = [];
/** Every pid started here, nginx's workers included: none may outlive the bench. */
const started = new Set<number>();
function cleanup(): void {
  // SIGTERM: nginx's master then stops its workers (SIGKILL would orphan them), the
  // sidecar writes its CPU profile when asked for one; stopAll checks that all went.
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
}
const childrenOf = (pid: number): number[] => readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number).filter((p) => {
  try { return Number(readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ')[1]) === pid; } catch { return false; }
});
const running = (pid: number): boolean => {
  try { return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0] !== 'Z'; } catch { return false; }
};
/** Stop everything, wait for it, and say whether anything survived. */
async function stopAll(): Promise<void> {
  for (const m of nginxMasters) for (const w of childrenOf(m.pid!)) started.add(w);
  cleanup();
  const until = Date.now() + 5000;
  while ([...started].some(running) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
  const left = [...started].filter(running);
  if (left.length) {
    for (const p of left) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } }
    throw new Error(`processes started by the bench survived it: ${left.join(', ')} (killed now)`);
  }
  console.log(`bench: all ${started.size} processes it started (nginx workers included) are gone`);
}
process.on('exit', cleanup);
for (const s of ['SIGINT', 'SIGTERM'] as const) process.on(s, () => { cleanup(); process.exit(130); });

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

function ensureTools(): void {
  const missing = [['nginx', 'nginx'], ['wrk', 'wrk'], ['hey', 'hey']].filter(([cmd]) => !have(cmd)).map(([, pkg]) => pkg);
  if (missing.length === 0) return;
  if (process.getuid?.() !== 0) throw new Error(`missing ${missing.join(', ')}: install them with apt-get (Debian) and run again`);
  console.log(`installing ${missing.join(', ')} from Debian...`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  if (spawnSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { env, stdio: 'ignore' }).status !== 0) {
    execFileSync('apt-get', ['update', '-q'], { env, stdio: 'ignore' });
    execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...missing], { env, stdio: 'ignore' });
  }
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

async function waitPort(port: number, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, '127.0.0.1', () => { s.destroy(); r(true); });
      s.on('error', () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port}`);
}

function start(cmd: string, args: string[]): ChildProcess {
  const c = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  c.stderr!.on('data', () => undefined);
  children.push(c);
  started.add(c.pid!);
  return c;
}

function nginxConf(dir: string, servers: string): string {
  for (const d of ['b', 'p', 'f', 'u', 's']) mkdirSync(join(dir, d), { recursive: true });
  // One worker: the sidecar is one process with one event loop, so this is like for like.
  return `worker_processes 1;
error_log ${dir}/error.log;
pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/b; proxy_temp_path ${dir}/p; fastcgi_temp_path ${dir}/f; uwsgi_temp_path ${dir}/u; scgi_temp_path ${dir}/s;
  keepalive_requests 1000000;
${servers}
}
`;
}

function startNginx(dir: string, servers: string): ChildProcess {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'nginx.conf'), nginxConf(dir, servers));
  const c = start('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf'), '-g', 'daemon off;']);
  nginxMasters.push(c);
  return c;
}

interface WrkResult { rps: number; p50: number; p99: number }

function ms(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) return NaN;
  return Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1);
}

function wrk(url: string, script?: string): WrkResult {
  const args = ['-t1', '-c32', `-d${SECONDS}s`, '--latency', ...(script ? ['-s', script] : []), url];
  const out = execFileSync('wrk', args, { encoding: 'utf8', timeout: (SECONDS + 30) * 1000 });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p50 = ms(/\s50%\s+(\S+)/.exec(out)?.[1] ?? '');
  const p99 = ms(/\s99%\s+(\S+)/.exec(out)?.[1] ?? '');
  const errors = /Non-2xx or 3xx responses: (\d+)/.exec(out);
  if (errors) throw new Error(`wrk saw ${errors[1]} error responses from ${url}`);
  return { rps, p50, p99 };
}

interface HeyResult { p50: number; p90: number; p99: number; rps: number; errors: number }

function hey(url: string, proxy?: string): HeyResult {
  // One worker capped at 1,000 rps: evenly spaced requests. (hey's workers tick in step, so
  // -c 10 -q 100 would send bursts of 10 at once every 10ms, which measures burst queueing.)
  const args = ['-z', `${SECONDS}s`, '-c', '1', '-q', '1000', '-o', 'csv', ...(proxy ? ['-x', proxy] : []), url];
  const out = execFileSync('hey', args, { encoding: 'utf8', timeout: (SECONDS + 30) * 1000, maxBuffer: 256 * 1024 * 1024 });
  const rows = out.trim().split('\n').slice(1).map((l) => l.split(','));
  const lat = rows.map((r) => Number(r[0]) * 1000).sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))];
  return { p50: q(0.5), p90: q(0.9), p99: q(0.99), rps: lat.length / SECONDS, errors: rows.filter((r) => r[6] !== '200').length };
}

/** A route table with `n` hosts; host `web` splits 80/20 between the two backend versions. */
function table(n: number): RouteTable {
  const vh = (name: string) => ({
    name: `bench/${name}`,
    hosts: [`${name}.bench.svc.cluster.local`],
    gateways: ['mesh'],
    routes: [
      { match: [{ headers: { 'end-user': { kind: 'exact' as const, value: 'jason' } } }], destinations: [{ host: `${name}-v2.bench.svc.cluster.local`, port: 80, weight: 100 }] },
      { match: [], destinations: [{ host: `${name}-v1.bench.svc.cluster.local`, port: 80, weight: 80 }, { host: `${name}-v2.bench.svc.cluster.local`, port: 80, weight: 20 }] },
    ],
  });
  const names = ['web', ...Array.from({ length: n - 1 }, (_, i) => `svc-${i}`)];
  return {
    apiVersion: ROUTE_TABLE_API_VERSION, kind: 'RouteTable', clusterDomain: 'cluster.local', outboundTrafficPolicy: 'ALLOW_ANY', gateways: [],
    services: names.flatMap((s) => ['', '-v1', '-v2'].map((v) => ({ host: `${s}${v}.bench.svc.cluster.local`, ports: [80] }))),
    virtualHosts: names.map(vh),
  };
}

function procStats(pid: number): { rssKb: number; hwmKb: number; anonKb: number; fileKb: number; cpuTicks: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return {
    rssKb: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]),
    hwmKb: Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]),
    // Private memory, and pages of files (the node binary's code, shared by every proxy on a node).
    anonKb: Number(/RssAnon:\s+(\d+)/.exec(status)?.[1]),
    fileKb: Number(/RssFile:\s+(\d+)/.exec(status)?.[1]),
    cpuTicks: Number(stat[11]) + Number(stat[12]), // utime + stime
  };
}

const fmt = (x: number, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'NaN');

async function main(): Promise<void> {
  ensureTools();
  const dir = mkdtempSync(join(tmpdir(), 'bench-sidecar-'));
  const [v1, v2, front, sidecarPort, adminPort, floorPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort(), freePort()]);
  const peerPorts = await Promise.all(PEERS.map(() => freePort()));

  // Backends: one nginx, two "versions" returning 1 KB each.
  const ret = `location / { return 200 "${BODY}"; }`;
  startNginx(join(dir, 'backend'), `  server { listen 127.0.0.1:${v1} backlog=4096; ${ret} }\n  server { listen 127.0.0.1:${v2} backlog=4096; ${ret} }`);
  // The baseline proxy: nginx with the same 80/20 split and upstream keep-alive.
  startNginx(join(dir, 'proxy'), `  upstream web { server 127.0.0.1:${v1} weight=80; server 127.0.0.1:${v2} weight=20; keepalive 64; }
  server { listen 127.0.0.1:${front} backlog=4096; location / { proxy_pass http://web; proxy_http_version 1.1; proxy_set_header Connection ""; } }`);

  const configFile = join(dir, 'routes.json');
  writeFileSync(configFile, JSON.stringify(table(1000)));
  // Endpoints as in a pod: from a source (here the static file; in a pod the EndpointSlices),
  // balanced by the proxy. BENCH_ENDPOINTS=none measures the ClusterIP path (--resolve) instead.
  const endpointsArgs = process.env.BENCH_ENDPOINTS === 'none'
    ? ['--resolve', `web-v1.bench.svc.cluster.local:80=127.0.0.1:${v1}`, '--resolve', `web-v2.bench.svc.cluster.local:80=127.0.0.1:${v2}`]
    : ['--endpoints', join(dir, 'endpoints.json')];
  writeFileSync(join(dir, 'endpoints.json'), JSON.stringify({
    apiVersion: 'mesh.cdk8s.io/v1alpha1', kind: 'Endpoints',
    clusters: { 'web-v1.bench.svc.cluster.local:80': [{ address: '127.0.0.1', port: v1 }], 'web-v2.bench.svc.cluster.local:80': [{ address: '127.0.0.1', port: v2 }] },
  }));
  const sidecar = start(process.execPath, [...SIDECAR_NODE_FLAGS, SIDECAR, '--config', configFile, '--namespace', 'bench',
    '--listen', `127.0.0.1:${sidecarPort}`, '--admin', `127.0.0.1:${adminPort}`, '--stats', '127.0.0.1:0', '--drain-timeout', '100', ...endpointsArgs]);
  const peerProcs = PEERS.map((peer, i) => start(process.execPath, [join(__dirname, 'peers', `${peer}.js`), String(peerPorts[i]), String(v1), String(v2)]));
  // The floor (bench/peers/floor-llhttp.js) with the flags the sidecar gets: not a peer.
  const floor = start(process.execPath, [...SIDECAR_NODE_FLAGS.filter((f) => !f.startsWith('--cpu-prof')), join(__dirname, 'peers', 'floor-llhttp.js'), String(floorPort), String(v1), String(v2)]);
  await Promise.all([v1, v2, front, sidecarPort, floorPort, ...peerPorts].map((p) => waitPort(p)));
  const idle = procStats(sidecar.pid!);

  // wrk talks to the sidecar as an app with HTTP_PROXY does: absolute-form request target.
  const script = join(dir, 'forward-proxy.lua');
  writeFileSync(script, 'wrk.path = "http://web/"\nwrk.headers["Host"] = "web"\n');

  console.log(`sidecar bench: ${SECONDS}s per run, 1 KB responses, 1,000-host route table, endpoints ${process.env.BENCH_ENDPOINTS === 'none' ? 'none (ClusterIP path)' : 'from a static file'}, 2 cores shared by load generator and servers`);
  const targets: Array<[string, string, string?]> = [
    ['direct', `http://127.0.0.1:${v1}/`], ['nginx 80/20', `http://127.0.0.1:${front}/`],
    ...PEERS.map((peer, i) => [peer, `http://127.0.0.1:${peerPorts[i]}/`] as [string, string]),
    ['floor (llhttp)', `http://127.0.0.1:${floorPort}/`],
    ['sidecar 80/20', `http://127.0.0.1:${sidecarPort}/`, script],
  ];
  for (const [, url, s] of targets) wrk(url, s); // warm-up (JIT, connection pools)
  const rounds: Array<Map<string, WrkResult>> = [];
  for (let r = 0; r < ROUNDS; r++) {
    const round = new Map<string, WrkResult>();
    for (const [name, url, s] of targets) {
      const res = wrk(url, s);
      round.set(name, res);
      console.log(`wrk round ${r + 1} ${name.padEnd(14)} rps=${fmt(res.rps, 0).padStart(6)} p50_ms=${fmt(res.p50, 3)} p99_ms=${fmt(res.p99, 3)}`);
    }
    rounds.push(round);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  for (const [name] of targets) {
    const rps = rounds.map((r) => r.get(name)!.rps);
    console.log(`wrk median ${name.padEnd(14)} rps=${fmt(median(rps), 0).padStart(6)} (${rps.map((x) => fmt(x, 0)).join(', ')})`);
  }
  // Per round: the sidecar against nginx and against that round's fastest peer.
  const bestOf = (r: Map<string, WrkResult>) => PEERS.reduce((a, b) => (r.get(b)!.rps > r.get(a)!.rps ? b : a));
  const ratioNginx = median(rounds.map((r) => r.get('sidecar 80/20')!.rps / r.get('nginx 80/20')!.rps));
  const ratioBest = median(rounds.map((r) => r.get('sidecar 80/20')!.rps / r.get(bestOf(r))!.rps));
  const floorRatio = median(rounds.map((r) => r.get('floor (llhttp)')!.rps / r.get('nginx 80/20')!.rps));
  const peakMb = (c: ChildProcess) => fmt(procStats(c.pid!).hwmKb / 1024, 1);
  const split = (c: ChildProcess) => { const st = procStats(c.pid!); return `now ${fmt(st.anonKb / 1024, 1)} anon + ${fmt(st.fileKb / 1024, 1)} file`; };
  console.log(`peak RSS under wrk: ${PEERS.map((p, i) => `${p} ${peakMb(peerProcs[i])} MB`).join(', ')}; floor ${peakMb(floor)} MB (${split(floor)}); sidecar ${peakMb(sidecar)} MB (${split(sidecar)}); node flags: ${SIDECAR_NODE_FLAGS.join(' ') || 'none'}`);
  console.log(`per-round ratios: vs nginx ${rounds.map((r) => fmt(r.get('sidecar 80/20')!.rps / r.get('nginx 80/20')!.rps)).join(', ')}; vs the round's fastest Node peer ${rounds.map((r) => `${fmt(r.get('sidecar 80/20')!.rps / r.get(bestOf(r))!.rps)} (${bestOf(r)})`).join(', ')}`);

  // Fixed 1,000 rps: direct vs through the sidecar, in rounds like wrk's; the added
  // latency and the CPU are the medians of the per-round values.
  const hz = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  const added: Array<{ p90: number; p99: number; vcpu: number }> = [];
  for (let r = 0; r < ROUNDS; r++) {
    const base = hey(`http://127.0.0.1:${v1}/`);
    const before = procStats(sidecar.pid!);
    const t0 = Date.now();
    const through = hey('http://web.bench.svc.cluster.local/', `http://127.0.0.1:${sidecarPort}`);
    const elapsed = (Date.now() - t0) / 1000;
    const after = procStats(sidecar.pid!);
    const vcpu = (after.cpuTicks - before.cpuTicks) / hz / elapsed * (1000 / through.rps);
    for (const [name, x] of [['direct', base], ['sidecar', through]] as const) {
      console.log(`hey round ${r + 1} 1000rps ${name.padEnd(8)} rps=${fmt(x.rps, 0)} p50_ms=${fmt(x.p50, 2)} p90_ms=${fmt(x.p90, 2)} p99_ms=${fmt(x.p99, 2)} errors=${x.errors}`);
    }
    if (base.errors || through.errors) throw new Error('error responses during the fixed-rate run');
    added.push({ p90: through.p90 - base.p90, p99: through.p99 - base.p99, vcpu });
  }
  const p90Added = median(added.map((a) => a.p90));
  const p99Added = median(added.map((a) => a.p99));
  const vcpuPer1k = median(added.map((a) => a.vcpu));
  const rssMb = procStats(sidecar.pid!).hwmKb / 1024;
  console.log(`per-round added latency: p90 ${added.map((a) => fmt(a.p90)).join(', ')} ms; p99 ${added.map((a) => fmt(a.p99)).join(', ')} ms; vCPU per 1,000 rps ${added.map((a) => fmt(a.vcpu, 3)).join(', ')}`);
  console.log(`sidecar memory: idle_rss_mb=${fmt(idle.rssKb / 1024, 1)} peak_rss_mb=${fmt(rssMb, 1)} (1,000 hosts loaded)`);

  const floorMb = procStats(floor.pid!).hwmKb / 1024;
  await stopAll();
  // What no Node proxy here gets past: the floor's numbers in the same run, then the result.
  console.log(`floor (no routing, no metrics, not counted in Q): rps_ratio_vs_nginx=${fmt(floorRatio)} rss_mb=${fmt(floorMb, 1)}`);
  console.log(`sidecar-bench: rps_ratio_vs_nginx=${fmt(ratioNginx)} rps_ratio_vs_node_best=${fmt(ratioBest)} p90_added_ms=${fmt(p90Added)} p99_added_ms=${fmt(p99Added)} rss_mb=${fmt(rssMb, 1)} vcpu_per_1k=${fmt(vcpuPer1k, 3)}`);
}

main().then(() => process.exit(0), async (e) => {
  console.error(`bench:sidecar failed: ${(e as Error).message}`);
  await stopAll().catch((x) => console.error((x as Error).message));
  process.exit(1);
});
