import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Chart, Testing } from 'cdk8s';
import { CHART_VARIANTS, createVariant } from '../charts';
import { CanaryRelease, CanaryReleaseProps, DataPlane, DestinationPolicy, MeshNamespace, MeshWorkload, ProgressiveDelivery, TrafficRoute } from '../constructs';
import { HttpRule } from '../model';
import { istioManifestsOf, manifestsOf } from '../lint/sources';
import { diffMarkdown, diffPlans, istioFormOf, objectNames, PlanDiff, planOf } from '../plan';

const REPO = path.join(__dirname, '..');
const BIN = path.join(REPO, 'bin', 'cdk8s-mesh.js');

/** A shop chart: cart v1/v2 in `namespace`, routed by `rules` (none: no VirtualService). */
function shop(rules: (cart: any) => HttpRule[] | undefined, namespace = 'shop'): Chart {
  const c = new Chart(Testing.app(), 'shop');
  const ns = new MeshNamespace(c, 'ns', { name: namespace });
  new MeshWorkload(c, 'v1', { app: 'cart', version: 'v1', image: 'cart:1', port: 8080, namespace: ns });
  new MeshWorkload(c, 'v2', { app: 'cart', version: 'v2', image: 'cart:2', port: 8080, namespace: ns, service: false, deploymentName: 'cart-v2' });
  const cart = { serviceName: 'cart', serviceNamespace: namespace, servicePorts: [8080], subsetNames: ['v1', 'v2'] };
  new DestinationPolicy(c, 'dr', { name: 'cart', service: cart, namespace, subsets: [{ name: 'v1' }, { name: 'v2' }] });
  const http = rules(cart);
  if (http) new TrafficRoute(c, 'vs', { name: 'cart', namespace, hosts: [cart], http });
  return c;
}
const split = (cart: any, v1: number, extra: Partial<HttpRule> = {}): HttpRule => ({ route: [{ to: cart, subset: 'v1', weight: v1 }, { to: cart, subset: 'v2', weight: 100 - v1 }], ...extra });

function diff(base: Chart, head: Chart): PlanDiff {
  const b = manifestsOf(base);
  const h = manifestsOf(head);
  return diffPlans(planOf(b), planOf(h), { base: objectNames(b.map((m) => m.obj)), head: objectNames(h.map((m) => m.obj)) });
}

/** A release Argo Rollouts or Flagger drives. */
function released(props: Partial<CanaryReleaseProps> = {}): Chart {
  const c = new Chart(Testing.app(), 'shop');
  new CanaryRelease(c, 'cart', { app: 'cart', port: 8080, namespace: 'shop', canary: { version: 'v2', image: 'cart:2' }, steps: [10, 25, 50], progressiveDelivery: ProgressiveDelivery.argoRollouts(), ...props } as CanaryReleaseProps);
  return c;
}

describe('plan --diff on releases a controller drives', () => {
  test('from a split the chart writes to Argo Rollouts: the route\'s new weights are the controller\'s starting point, not gated; the release is reported', () => {
    const before = new Chart(Testing.app(), 'shop');
    new CanaryRelease(before, 'cart', { app: 'cart', port: 8080, namespace: 'shop', stable: { version: 'v1', image: 'cart:1' }, canary: { version: 'v2', image: 'cart:2' }, canaryWeight: 30, routeName: 'cart-vs' });
    const d = diff(before, released());
    expect(d.hosts.flatMap((h) => h.shifts)).toEqual([]);
    expect(d.hosts[0].lines).toContain('rule 1 (every request): cart.shop stable 0% -> 100% (+100) (starting weights; Argo Rollouts moves them, not gated)');
    expect(d.releases).toEqual(['Rollout shop/cart (Argo Rollouts) added: steps 10 -> 25 -> 50 -> 100; analysis success >= 99%, p99 <= 500 ms, every 1m; rolls back after 5 failed checks']);
    expect(d.summary).toMatch(/1 progressive-delivery change/);
  });

  test('other steps and analysis are reported in words, with no weight shift', () => {
    const d = diff(released(), released({ steps: [5, 50], progressiveDelivery: ProgressiveDelivery.argoRollouts({ analysis: { successRate: 99.9 } }) }));
    expect(d.hosts).toEqual([]);
    expect(d.releases).toEqual([
      'Rollout shop/cart (Argo Rollouts): steps 10 -> 25 -> 50 -> 100 => 5 -> 50 -> 100',
      'Rollout shop/cart (Argo Rollouts): analysis success >= 99%, p99 <= 500 ms, every 1m; rolls back after 5 failed checks => success >= 99.9%, p99 <= 500 ms, every 1m; rolls back after 5 failed checks',
    ]);
    expect(diffMarkdown('shop', d)).toContain('- release: Rollout shop/cart (Argo Rollouts): steps 10 -> 25 -> 50 -> 100 => 5 -> 50 -> 100');
  });

  test('a new canary image alone is no traffic change: the controller starts the release, the plan is the same', () => {
    expect(diff(released(), released({ canary: { version: 'v2', image: 'cart:2.1' } })).summary).toBe('no traffic change');
  });

  test('Flagger\'s steps change the same way', () => {
    const d = diff(released({ progressiveDelivery: ProgressiveDelivery.flagger() }), released({ steps: [10, 20, 30], progressiveDelivery: ProgressiveDelivery.flagger() }));
    expect(d.releases).toEqual(['Canary shop/cart (Flagger): steps 10 -> 25 -> 50 -> 100 => 10 -> 20 -> 30 -> 100']);
  });
});

describe('plan --diff: what a change does to traffic', () => {
  test('a weight shift: per destination, with the delta in points, and the summary names the largest', () => {
    const d = diff(shop((c) => [split(c, 90)]), shop((c) => [split(c, 70)]));
    expect(d.hosts).toEqual([expect.objectContaining({
      host: 'cart.shop (mesh)', status: 'changed',
      lines: ['rule 1 (every request): cart.shop v1 90% -> 70% (-20)', 'rule 1 (every request): cart.shop v2 10% -> 30% (+20)'],
    })]);
    expect(d.summary).toBe('1 host changed; largest weight shift 20 points on cart.shop');
  });

  test('an added header rule: added with its match in words; the rule it displaced moved', () => {
    const canary: HttpRule = { match: [{ headers: { 'x-canary': { exact: 'yes' } } }], route: [{ to: { serviceName: 'cart', serviceNamespace: 'shop', servicePorts: [8080], subsetNames: ['v1', 'v2'] }, subset: 'v2' }] };
    const d = diff(shop((c) => [split(c, 90)]), shop((c) => [canary, split(c, 90)]));
    expect(d.hosts[0].lines).toEqual(['rule 1 added: header x-canary = yes -> cart.shop v2 100%', 'rule "every request" moved from 1 to 2']);
    expect(d.hosts[0].rulesRemoved).toBe(0);
  });

  test('a removed route: the host and its rules are gone, and so is the VirtualService', () => {
    const d = diff(shop((c) => [split(c, 90)]), shop(() => undefined));
    expect(d.hosts).toEqual([expect.objectContaining({ host: 'cart.shop (mesh)', status: 'removed', rulesRemoved: 1 })]);
    expect(d.objectsRemoved).toEqual(['VirtualService shop/cart']);
    expect(d.summary).toBe('1 host removed; 0 object(s) added, 1 removed');
  });

  test('a new timeout and retries on a rule', () => {
    const d = diff(shop((c) => [split(c, 90)]), shop((c) => [split(c, 90, { timeout: '2s', retries: { attempts: 3 } })]));
    expect(d.hosts[0].lines).toEqual(['rule 1 (every request): added: timeout 2s', 'rule 1 (every request): added: retries 3']);
    expect(d.summary).toBe('1 host changed');
  });

  test('a host moved to another namespace: one host removed, one added, the objects with it', () => {
    const d = diff(shop((c) => [split(c, 90)]), shop((c) => [split(c, 90)], 'store'));
    expect(d.hosts.map((h) => [h.host, h.status])).toEqual([['cart.shop (mesh)', 'removed'], ['cart.store (mesh)', 'added']]);
    expect(d.objectsAdded).toContain('VirtualService store/cart');
    expect(d.objectsRemoved).toContain('VirtualService shop/cart');
    expect(diffMarkdown('shop', d)).toContain('- **`cart.store`** (mesh) added\n  - rule 1: every request -> cart.store v1 90%, cart.store v2 10%');
  });

  test('no change: says so', () => {
    expect(diff(shop((c) => [split(c, 90)]), shop((c) => [split(c, 90)])).summary).toBe('no traffic change');
  });
});

describe('plan --diff reads node-sidecar and Gateway API YAML as the Istio objects of the same model', () => {
  const rules = (p: ReturnType<typeof planOf>) => p.hosts.map((h) => ({
    host: `${h.host} (${h.bindings.join(', ')})`,
    // A port the renderers write for a one-port Service, the model need not name: compared without ports.
    rules: h.rules.map((r) => ({ match: r.match, to: r.destinations.map((d) => `${d.host} ${d.subset ?? ''} ${d.percent}%`), policies: r.policies })),
  })).sort((a, b) => a.host.localeCompare(b.host));
  test.each(CHART_VARIANTS.filter((v) => v.dataPlane !== DataPlane.ISTIO).map((v) => [v.id, v]))('%s: its own YAML, read back, plans as its Istio twin', (_id, v) => {
    const c = createVariant(Testing.app(), v);
    expect(rules(planOf(istioFormOf(manifestsOf(c))))).toEqual(rules(planOf(istioManifestsOf(c))));
  });
});

describe('cdk8s-mesh plan --diff from the command line', () => {
  const run = (args: string[], cwd = REPO) => spawnSync(process.execPath, [BIN, 'plan', ...args], { cwd, encoding: 'utf8', timeout: 120_000 });

  test('a directory base; gates: a shift over --max-weight-shift exits 1 unless the host is allowed', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plan-base-'));
    expect(spawnSync(process.execPath, [BIN, 'synth', '--out', dir, 'bookinfo-reviews-80-20'], { cwd: REPO, encoding: 'utf8' }).status).toBe(0);
    const file = path.join(dir, 'bookinfo-reviews-80-20.k8s.yaml');
    fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replace('weight: 80', 'weight: 95').replace('weight: 20', 'weight: 5'));
    const refused = run(['--diff', dir, '--max-weight-shift', '10', 'bookinfo-reviews-80-20']);
    expect(refused.status).toBe(1);
    expect(refused.stdout).toContain('reviews.bookinfo v1 95% -> 80% (-15)');
    expect(refused.stdout).toContain('- bookinfo-reviews-80-20: reviews.bookinfo rule 1 (every request): reviews.bookinfo v1 moved 15 points, 95% -> 80% (more than 10)');
    expect(run(['--diff', dir, '--max-weight-shift', '10', '--allow', 'reviews.bookinfo', 'bookinfo-reviews-80-20']).status).toBe(0);
    expect(run(['--diff', dir, '--max-weight-shift', '20', 'bookinfo-reviews-80-20']).status).toBe(0);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  test('gates on every data plane: a 20-point shift on istio, node-sidecar and gateway-api charts, each gate line once, naming host and rule', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plan-planes-'));
    const app = path.join(__dirname, 'fixtures', 'three-planes-app.ts');
    const env = (w: number) => ({ ...process.env, SHOP_V1_WEIGHT: String(w) });
    expect(spawnSync(process.execPath, [BIN, 'synth', '--app', app, '--out', dir], { cwd: REPO, encoding: 'utf8', env: env(80) }).status).toBe(0);
    const same = spawnSync(process.execPath, [BIN, 'plan', '--diff', dir, '--app', app, '--max-weight-shift', '10'], { cwd: REPO, encoding: 'utf8', env: env(80) });
    expect([same.status, same.stdout]).toEqual([0, expect.stringContaining('No traffic change.')]);
    const shifted = spawnSync(process.execPath, [BIN, 'plan', '--diff', dir, '--app', app, '--max-weight-shift', '10'], { cwd: REPO, encoding: 'utf8', env: env(60) });
    expect(shifted.status).toBe(1);
    const gates = shifted.stdout.split('**Refused by the plan gates:**\n')[1].trim().split('\n');
    expect(gates).toEqual(['istio', 'node-sidecar', 'gateway-api'].flatMap((p) => [
      `- shop-${p}: reviews.shop rule 2 (every request): reviews.shop v1 moved 20 points, 80% -> 60% (more than 10)`,
      `- shop-${p}: reviews.shop rule 2 (every request): reviews.shop v2 moved 20 points, 20% -> 40% (more than 10)`,
    ]).sort((a, b) => a.localeCompare(b)));
    fs.rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  test('bad input: an unknown ref, a bad gate value', () => {
    const unknown = run(['--diff', 'no-such-ref-xyz']);
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/base: no-such-ref-xyz is neither a directory nor a git ref of .* \(branch, tag or commit\)/);
    const bad = run(['--diff', 'HEAD', '--max-weight-shift', 'lots']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--max-weight-shift is "lots"; expected an integer from 0 to 100 (points)');
  }, 60_000);

  test('a base that fails to synthesize, and a head that does: each error names its side', () => {
    // A project of its own in a git repository: its cdk8s.yaml app, broken in the base commit.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'plan-repo-'));
    const git = (...args: string[]) => execFileSync('git', ['-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args], { cwd: dir, encoding: 'utf8' });
    fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
    fs.writeFileSync(path.join(dir, '.gitignore'), 'node_modules\n');
    fs.writeFileSync(path.join(dir, 'cdk8s.yaml'), 'language: typescript\napp: node app.js\n');
    fs.writeFileSync(path.join(dir, 'app.js'), "throw new Error('the base is broken on purpose');\n");
    git('init', '-q');
    git('add', '.');
    git('commit', '-q', '-m', 'broken');
    const base = run(['--diff', 'HEAD'], dir);
    expect(base.status).toBe(1);
    expect(base.stderr).toMatch(/base: HEAD \([0-9a-f]{12}\) failed to synthesize:[\s\S]*the base is broken on purpose/);
    // A good base, a broken head.
    fs.writeFileSync(path.join(dir, 'app.js'), `const { App, Chart } = require('cdk8s');\nconst app = new App();\nnew Chart(app, 'empty');\napp.synth();\n`);
    git('commit', '-q', '-am', 'good');
    fs.writeFileSync(path.join(dir, 'app.js'), "throw new Error('the head is broken on purpose');\n");
    const head = run(['--diff', 'HEAD'], dir);
    expect(head.status).toBe(1);
    expect(head.stderr).toContain('head (this checkout) failed to synthesize');
    expect(execFileSync('git', ['worktree', 'list'], { cwd: dir, encoding: 'utf8' }).trim().split('\n')).toHaveLength(1);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 120_000);
});
