// The traffic pictures as a reviewer sees them: `cdk8s-mesh plan` writes every chart's
// SVG, headless Chromium draws each one, and what it drew is measured.
import { execFileSync } from 'child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { App } from 'cdk8s';
import { CHART_VARIANTS, createVariant } from '../../charts';
import { chartPlan, trafficDot, trafficGraph } from '../../plan';
import { measureSvg } from './browser';

const ROOT = join(__dirname, '..', '..');
// Screenshots stay for a person to look at (README: "Reviewing mesh changes").
const SHOTS = join(ROOT, 'dist', 'screenshots');
let out: string;

beforeAll(() => {
  out = mkdtempSync(join(tmpdir(), 'mesh-plan-svg-'));
  execFileSync(process.execPath, [join(ROOT, 'bin', 'cdk8s-mesh.js'), 'plan', '--out', out], { cwd: ROOT, stdio: 'pipe' });
  mkdirSync(SHOTS, { recursive: true });
});
afterAll(() => rmSync(out, { recursive: true, force: true }));

test('plan writes one SVG per chart', () => {
  const svgs = readdirSync(out).filter((f) => f.endsWith('.traffic.svg'));
  expect(svgs.sort()).toEqual(CHART_VARIANTS.map((v) => `${v.id}.traffic.svg`).sort());
});

describe.each(CHART_VARIANTS.map((v) => v.id))('%s.traffic.svg drawn by Chromium', (id) => {
  test('labels readable and inside their boxes; labels and edges clear of boxes and of each other', () => {
    const svg = readFileSync(join(out, `${id}.traffic.svg`), 'utf8');
    const m = measureSvg(svg, id.startsWith('bookinfo') ? join(SHOTS, `${id}.traffic.png`) : undefined);
    const plan = chartPlan(createVariant(new App(), CHART_VARIANTS.find((v) => v.id === id)!));
    const graph = trafficGraph(plan.plan);
    // Every node and edge of the plan's graph was drawn (none lost on the way).
    expect({ nodes: m.nodes, edges: m.edges }).toEqual({ nodes: graph.nodes.length || 1, edges: graph.edges.length });
    expect(m.problems).toEqual([]);
    expect(m.minFontPx).toBeGreaterThanOrEqual(12);
    console.log(`${id}: ${Math.round(m.width)}x${Math.round(m.height)} px, ${m.nodes} nodes, ${m.edges} edges, ${m.texts} texts, smallest text ${m.minFontPx.toFixed(1)} px, 0 problems`);
  });
});

test('negative control: the checker sees labels run into each other when Graphviz measured the wrong font', async () => {
  // A font list makes Graphviz fall back to Times' narrower metrics (plan/svg.ts keeps one name for that reason).
  const p = chartPlan(createVariant(new App(), CHART_VARIANTS.find((v) => v.id === 'bookinfo-jason-v2')!));
  const dot = trafficDot(trafficGraph(p.plan), p.title).replace(/fontname="Helvetica"/g, 'fontname="Helvetica,Arial,sans-serif"');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const viz = await (require('@viz-js/viz') as { instance(): Promise<{ renderString(d: string, o: object): string }> }).instance();
  const m = measureSvg(viz.renderString(dot, { format: 'svg' }));
  expect(m.problems.map((x) => x.kind)).toContain('text-on-text');
});

test('negative control: the checker sees an edge drawn through a box', async () => {
  // Three boxes in a row with the edge forced straight through the middle one.
  const dot = 'digraph { rankdir=LR; splines=line; node [shape=box, fontname="Helvetica"]; a -> b -> c; a -> c [constraint=false]; {rank=same; } }';
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const viz = await (require('@viz-js/viz') as { instance(): Promise<{ renderString(d: string, o: object): string }> }).instance();
  const m = measureSvg(viz.renderString(dot, { format: 'svg' }));
  expect(m.problems.map((x) => x.kind)).toContain('edge-through-box');
});
