/**
 * Checks and clients shared by the e2e suites: the secure-defaults check read from each
 * running container, and a client pod outside the mesh.
 */
import * as path from 'path';
import { ChartInCluster, removeManifest } from './chart';
import { clusterReachable, expectedIds, identityOf, kubectlOk, Pod, PROJECT_DIR, readManifest, shIn } from './kube';

/**
 * The secure defaults, read from each running container's PID 1: the user and group the
 * manifest asks for (never root), no capabilities, no_new_privs, a seccomp filter,
 * a read-only root filesystem.
 */
export function secureDefaults(chart: ChartInCluster): void {
  test('every container runs as synthesized: non-root, no capabilities, no privilege escalation, seccomp, read-only root', async () => {
    const seen: Record<string, unknown> = {};
    const want: Record<string, unknown> = {};
    for (const pod of chart.pods) {
      for (const c of pod.spec.containers as { name: string }[]) {
        const id = await identityOf(pod, c.name);
        const { uid, gid } = expectedIds(pod, c.name);
        const key = `${pod.deployment}/${c.name}`;
        seen[key] = { uid: id.uid, gid: id.gid, capEff: id.capEff, noNewPrivs: id.noNewPrivs, seccomp: id.seccomp, rootReadOnly: id.rootReadOnly };
        want[key] = { uid: [uid, uid, uid, uid], gid: [gid, gid, gid, gid], capEff: '0000000000000000', noNewPrivs: '1', seccomp: '2', rootReadOnly: true };
        expect(uid).toBeGreaterThan(0);
      }
    }
    expect(Object.keys(seen).length).toBeGreaterThan(0);
    expect(seen).toEqual(want);
  });
}

const OUTSIDE_FILE = path.join(PROJECT_DIR, 'test', 'e2e', 'fixtures', 'outside-client.yaml');

/**
 * A busybox pod in `default` with no proxy container and no proxy environment (the
 * fixture outside-client.yaml), there for the suite: its requests go straight to a
 * Service's ClusterIP, as a browser's reach a gateway.
 */
export function useOutsideClient(): Pod {
  const objects = readManifest(OUTSIDE_FILE);
  const pod: Pod = { namespace: 'default', name: 'e2e-outside-client', deployment: '', spec: objects[0].spec };
  beforeAll(async () => {
    const unreachable = await clusterReachable();
    if (unreachable) throw new Error(unreachable);
    await kubectlOk(['apply', '-f', OUTSIDE_FILE]);
    await kubectlOk(['wait', '--for=condition=Ready', 'pod/e2e-outside-client', '-n', 'default', '--timeout=120s'], { timeoutMs: 130_000 });
  }, 140_000);
  afterAll(() => removeManifest(OUTSIDE_FILE, objects), 90_000);
  return pod;
}

/** HTTP status and output of one GET: busybox wget -S prints the response head to stderr. */
export async function get(pod: Pod, container: string, url: string, wgetArgs = ''): Promise<{ status: number; output: string }> {
  // Debian's busybox wget crashes (SIGSEGV) when given -T: `timeout` bounds the request.
  const output = await shIn(pod, container, `timeout 10 wget -S ${wgetArgs} -O - ${url} 2>&1; true`);
  const status = Number((output.match(/^\s*HTTP\/1\.[01] (\d{3})/m) ?? [])[1] ?? 0);
  return { status, output };
}

export interface RawReply { status: number; headers: Record<string, string>; body: string }

/**
 * One HTTP/1.1 request written by hand with busybox `nc`, so that the status line and
 * headers of any answer are seen (busybox wget prints none for 4xx/5xx).
 */
export async function rawHttp(pod: Pod, container: string, hostPort: string, method: string, path: string, opts: { headers?: Record<string, string>; body?: string } = {}): Promise<RawReply> {
  const [host, port] = hostPort.split(':');
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${hostPort}`, 'Connection: close',
    ...Object.entries(opts.headers ?? {}).map(([k, v]) => `${k}: ${v}`),
    ...(opts.body !== undefined ? [`Content-Length: ${Buffer.byteLength(opts.body)}`] : [])];
  const request = `${lines.join('\r\n')}\r\n\r\n${opts.body ?? ''}`;
  if (/['\\%]/.test(request)) throw new Error(`rawHttp: the request may not contain ', \\ or %: ${request}`);
  // busybox nc quits when its input ends, answer or not: the input stays open 2 s.
  const out = await shIn(pod, container, `{ printf '${request.replace(/\r\n/g, '\\r\\n')}'; sleep 2; } | timeout 10 nc ${host} ${port}`, 20_000);
  const [head, ...rest] = out.split('\r\n\r\n');
  const [statusLine, ...headerLines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of headerLines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  let body = rest.join('\r\n\r\n');
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) body = dechunk(body);
  return { status: Number((statusLine.match(/^HTTP\/1\.[01] (\d{3})/) ?? [])[1] ?? 0), headers, body };
}

/** The body of a chunked message (sizes in hex, each chunk followed by CRLF). */
function dechunk(text: string): string {
  let out = '';
  let rest = text;
  for (;;) {
    const i = rest.indexOf('\r\n');
    const size = parseInt(rest.slice(0, i), 16);
    if (!(size > 0)) return out;
    out += rest.slice(i + 2, i + 2 + size);
    rest = rest.slice(i + 2 + size + 2);
  }
}
