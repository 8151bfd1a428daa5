// `npm run bench:reload`: how long a route-table reload stalls the proxy, and its memory.
//
// The proxy (the bundle, with its image's NODE_OPTIONS) serves one route on loopback while a
// client sends requests one after another through it. Each case writes a new table, sends
// SIGHUP (an immediate reload) and keeps sending for a second: the stall is the slowest
// request in that window, beside the slowest before it (the baseline, same run). RSS is
// sampled from /proc every 10 ms. Cases: a table the size of a ConfigMap's 1 MiB limit,
// 20,000 wildcard hosts, and 100,000 hosts (27 MiB), which the default --max-table-bytes
// refuses before reading; the last case raises the limit to show what it would cost.
// Prints one `reload-bench:` line per case. Everything is on 127.0.0.1 and stops by itself.
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROUTE_TABLE_API_VERSION, RouteTable } from '../model';

const SIDECAR = join(__dirname, '..', 'build', 'sidecar', 'main.js');
const NODE_OPTIONS = /NODE_OPTIONS="([^"]*)"/.exec(readFileSync(join(__dirname, '..', 'apps', 'sidecar', 'Dockerfile'), 'utf8'))?.[1] ?? '';
const PROBE = 'probe.default.svc.cluster.local';

function table(n: number, wildcard: boolean): RouteTable {
  const to = (i: number) => `svc-${i}.default.svc.cluster.local`;
  return {
    apiVersion: ROUTE_TABLE_API_VERSION, kind: 'RouteTable', clusterDomain: 'cluster.local', outboundTrafficPolicy: 'ALLOW_ANY',
    services: [{ host: PROBE, ports: [8080] }, ...Array.from({ length: n }, (_, i) => ({ host: to(i), ports: [8080] }))],
    virtualHosts: [
      { name: 'default/probe', hosts: [PROBE], gateways: ['mesh'], routes: [{ match: [], destinations: [{ host: PROBE, port: 8080, weight: 100 }] }] },
      ...Array.from({ length: n }, (_, i) => ({
        name: `default/vs-${i}`, hosts: [wildcard ? `*.h${i}.example.com` : to(i)], gateways: ['mesh'],
        routes: [{ match: [{ uri: { kind: 'prefix' as const, value: '/api' } }], destinations: [{ host: to(i), port: 8080, weight: 100 }] }],
      })),
    ],
    gateways: [],
  };
}

/** The largest number of exact hosts whose table fits in `bytes`. */
function hostsFor(bytes: number): number {
  let lo = 0;
  let hi = 100_000;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (JSON.stringify(table(mid, false)).length <= bytes) lo = mid; else hi = mid - 1;
  }
  return lo;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const backend = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
  const backendPort = (backend.address() as AddressInfo).port;
  const cases: Array<{ name: string; n: number; wildcard: boolean; args: string[] }> = [
    { name: 'configmap-1MiB', n: hostsFor(1024 * 1024), wildcard: false, args: [] },
    { name: 'wildcards-20k', n: 20_000, wildcard: true, args: ['--max-table-bytes', String(8 * 1024 * 1024)] },
    { name: 'hosts-100k-default-limit', n: 100_000, wildcard: false, args: [] },
    { name: 'hosts-100k-limit-raised', n: 100_000, wildcard: false, args: ['--max-table-bytes', String(64 * 1024 * 1024)] },
  ];
  const procs: ChildProcess[] = [];
  const stopAll = () => { for (const p of procs) p.kill('SIGKILL'); backend.close(); };
  process.on('SIGINT', () => { stopAll(); process.exit(130); });
  try {
    for (const c of cases) {
      const dir = mkdtempSync(join(tmpdir(), 'reload-bench-'));
      const file = join(dir, 'routes.json');
      writeFileSync(file, JSON.stringify(table(0, false)));
      const proc = spawn(process.execPath, [SIDECAR, '--config', file, '--listen', '127.0.0.1:0', '--admin', '127.0.0.1:0', '--stats', '127.0.0.1:0', '--reload-interval', '600000',
        '--resolve', `${PROBE}:8080=127.0.0.1:${backendPort}`, ...c.args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NODE_OPTIONS } });
      procs.push(proc);
      let log = '';
      const port = await new Promise<number>((resolve, reject) => {
        proc.stderr!.on('data', (d: Buffer) => {
          log += d.toString();
          const m = /"msg":"listening".*?"port":(\d+)/.exec(log);
          if (m) resolve(Number(m[1]));
        });
        proc.once('exit', (code) => reject(new Error(`proxy exited (${code}): ${log}`)));
      });
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const once = () => new Promise<number>((resolve, reject) => {
        const t0 = performance.now();
        http.get({ host: '127.0.0.1', port, path: `http://${PROBE}:8080/`, headers: { host: PROBE }, agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(performance.now() - t0));
        }).on('error', reject);
      });
      let rssPeak = 0;
      const sampler = setInterval(() => {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'));
        if (m) rssPeak = Math.max(rssPeak, Number(m[1]) / 1024);
      }, 10);
      // Baseline: two seconds of requests before the reload.
      let baseline = 0;
      for (const until = Date.now() + 2000; Date.now() < until;) baseline = Math.max(baseline, await once());
      const rssBefore = rssPeak;
      const text = JSON.stringify(table(c.n, c.wildcard));
      writeFileSync(file, text);
      const logAt = log.length;
      proc.kill('SIGHUP');
      let stall = 0;
      for (const until = Date.now() + 1000; Date.now() < until || !/config reload/.test(log.slice(logAt));) {
        stall = Math.max(stall, await once());
        if (Date.now() > until + 30_000) break;
      }
      clearInterval(sampler);
      const result = /config reloaded/.test(log.slice(logAt)) ? 'applied' : /config reload refused/.test(log.slice(logAt)) ? 'refused' : 'none';
      console.log(`reload-bench: case=${c.name} hosts=${c.n} bytes=${text.length} result=${result} stall_ms=${stall.toFixed(1)} baseline_max_ms=${baseline.toFixed(1)} rss_before_mb=${rssBefore.toFixed(1)} rss_peak_mb=${rssPeak.toFixed(1)}`);
      agent.destroy();
      proc.kill('SIGKILL');
      await sleep(100);
    }
  } finally {
    stopAll();
  }
}

main().catch((e) => { console.error(e); process.exit(1); });
