import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { spawn } from 'child_process';
import { Testing } from 'cdk8s';
import { init } from '../apps/init';

// `cdk8s-mesh init` on each data plane: the scaffold's chart is synthesized here against this
// repository's sources (scripts/test-consumer.sh runs the Istio scaffold from the npm tarball).

const REPO_INDEX = path.join(__dirname, '..', 'index');
const made: string[] = [];
afterAll(() => { for (const d of made) fs.rmSync(d, { recursive: true, force: true }); });

function scaffold(...args: string[]): { dir: string; code: number; err: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mesh-init-'));
  made.push(dir);
  const writes: string[] = [];
  const spy = jest.spyOn(process.stderr, 'write').mockImplementation((s) => { writes.push(String(s)); return true; });
  const out = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    return { dir, code: init([path.join(dir, 'shop'), ...args]), err: writes.join('') };
  } finally {
    spy.mockRestore();
    out.mockRestore();
  }
}

/** The scaffold's AppChart, its import pointed at this repository, loaded through ts-jest. */
function appChart(dir: string, edit: (src: string) => string = (s) => s): new (...a: any[]) => any {
  const src = fs.readFileSync(path.join(dir, 'shop', 'chart.ts'), 'utf8').replace("from 'cdk8s-mesh'", `from ${JSON.stringify(REPO_INDEX)}`);
  const file = path.join(dir, 'shop', 'chart-local.ts');
  fs.writeFileSync(file, edit(src));
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(file).AppChart;
}

describe('cdk8s-mesh init', () => {
  test.each([
    ['istio', 'ISTIO', 'VirtualService'],
    ['node-sidecar', 'NODE_SIDECAR', 'ConfigMap'],
    ['gateway-api', 'GATEWAY_API', 'HTTPRoute'],
  ])('--data-plane %s: main.ts uses DataPlane.%s and the chart synthesizes (%s)', (plane, member, kind) => {
    const { dir, code } = scaffold('--data-plane', plane);
    expect(code).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'shop', 'main.ts'), 'utf8')).toContain(`DataPlane.${member}`);
    const chart = fs.readFileSync(path.join(dir, 'shop', 'chart.ts'), 'utf8');
    expect(chart).not.toMatch(/\{\{|\}\}/); // every placeholder filled
    const AppChart = appChart(dir);
    const { DataPlane } = require(REPO_INDEX); // eslint-disable-line @typescript-eslint/no-require-imports
    const objs = Testing.synth(new AppChart(Testing.app(), 'shop', { dataPlane: DataPlane[member] }));
    expect(objs.map((o: { kind: string }) => o.kind)).toContain(kind);
  });

  test('gateway-api: no retry policy by default (standard channel); the commented one synthesizes on the experimental channel', () => {
    const { dir } = scaffold('--data-plane', 'gateway-api');
    const chart = fs.readFileSync(path.join(dir, 'shop', 'chart.ts'), 'utf8');
    expect(chart).toMatch(/^\s*\/\/ and status codes only, e\.g\. retries: /m);
    const AppChart = appChart(dir, (s) => s.replace('// and status codes only, e.g. retries:', 'retries:'));
    const { DataPlane } = require(REPO_INDEX); // eslint-disable-line @typescript-eslint/no-require-imports
    const objs = Testing.synth(new AppChart(Testing.app(), 'shop', { dataPlane: DataPlane.GATEWAY_API, gatewayApi: { channel: 'experimental' } }));
    const routes = objs.filter((o: { kind: string }) => o.kind === 'HTTPRoute');
    expect(routes.some((r: { spec: { rules: Array<{ retry?: { attempts: number; codes: number[] } }> } }) => r.spec.rules.some((x) => x.retry?.attempts === 2 && x.retry.codes.includes(503)))).toBe(true);
  });

  test('an unknown data plane is refused with the ones there are, and nothing is written', () => {
    const { dir, code, err } = scaffold('--data-plane', 'linkerd');
    expect(code).toBe(2);
    expect(err).toBe('cdk8s-mesh init: --data-plane is "linkerd"; expected istio, node-sidecar, gateway-api\n');
    expect(fs.existsSync(path.join(dir, 'shop'))).toBe(false);
  });
});

describe('the scaffold\'s npm run synth is cdk8s-mesh synth, and lint agrees with it', () => {
  const bin = path.join(__dirname, '..', 'bin', 'cdk8s-mesh.js');
  /** The scaffold wired to this repository's sources and node_modules, as `npm install` would wire the package. */
  function project(plane: string): string {
    const { dir } = scaffold('--data-plane', plane);
    const root = path.join(dir, 'shop');
    fs.symlinkSync(path.join(__dirname, '..', 'node_modules'), path.join(root, 'node_modules'));
    const chart = path.join(root, 'chart.ts');
    fs.writeFileSync(chart, fs.readFileSync(chart, 'utf8').replace("from 'cdk8s-mesh'", `from ${JSON.stringify(REPO_INDEX)}`));
    const main = path.join(root, 'main.ts');
    fs.writeFileSync(main, fs.readFileSync(main, 'utf8').replace("from 'cdk8s-mesh'", `from ${JSON.stringify(REPO_INDEX)}`));
    return root;
  }
  const run = (cwd: string, args: string[]) => new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
    const p = spawn(process.execPath, [bin, ...args], { cwd });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('close', (status) => resolve({ status, stdout, stderr }));
  });

  /** One plane: synth writes the chart; with a mistake, synth and lint both refuse it. */
  async function trial(plane: string): Promise<Record<string, unknown>> {
    const root = project(plane);
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    // What `npm run synth` runs, from the project's directory (cdk8s.yaml names main.ts).
    const ok = await run(root, ['synth']);
    const written = fs.existsSync(path.join(root, 'dist', 'shop.k8s.yaml'));
    fs.rmSync(path.join(root, 'dist'), { recursive: true, force: true });
    const chart = path.join(root, 'chart.ts');
    fs.writeFileSync(chart, fs.readFileSync(chart, 'utf8').replace('canaryWeight: 10,', 'canaryWeight: 120,'));
    const [synth, lint] = await Promise.all([run(root, ['synth']), run(root, ['lint'])]);
    const refusal = (r: { status: number | null; stderr: string }) => ({
      status: r.status, message: /shop\/api: canaryWeight is 120; expected /.test(r.stderr), stack: /^\s+at /m.test(r.stderr),
    });
    return {
      script: pkg.scripts.synth, ok: [ok.status, ok.stdout], written,
      synth: refusal(synth), lint: refusal(lint), writtenAfter: fs.existsSync(path.join(root, 'dist')),
    };
  }

  test('on istio, node-sidecar and gateway-api: synth writes the chart; a mistake is refused by synth and lint alike (exit 1, one message, no stack), nothing written', async () => {
    // The three planes side by side: each spawn compiles this repository's sources.
    const results = await Promise.all(['istio', 'node-sidecar', 'gateway-api'].map(trial));
    for (const r of results) {
      expect(r).toEqual({
        script: 'cdk8s-mesh synth', ok: [0, 'wrote 1 chart(s) to dist/\n'], written: true,
        synth: { status: 1, message: true, stack: false }, lint: { status: 1, message: true, stack: false }, writtenAfter: false,
      });
    }
  }, 120_000);
});
