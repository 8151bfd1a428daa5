// Draw an SVG in headless Chromium and measure what the browser drew, with the fonts it
// really has (Graphviz only estimates text widths when it lays out the graph).
import { execFileSync } from 'child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';

const CANDIDATES = ['chromium-headless-shell', 'chromium', 'google-chrome', 'chrome'];

/** The browser binary, or a clear error saying what to install. */
export function browser(): string {
  for (const name of [process.env.CHROMIUM, ...CANDIDATES].filter((x): x is string => !!x)) {
    try {
      execFileSync('sh', ['-c', `command -v "${name}"`], { stdio: 'pipe' });
      return name;
    } catch { /* next */ }
  }
  throw new Error(`no headless Chromium found (tried ${CANDIDATES.join(', ')}; or set CHROMIUM): on Debian, apt-get install chromium-headless-shell fonts-liberation2`);
}

export interface Rect { readonly x: number; readonly y: number; readonly w: number; readonly h: number }
export interface Problem { readonly kind: string; readonly what: string }
export interface Measured {
  readonly width: number;
  readonly height: number;
  readonly nodes: number;
  readonly edges: number;
  readonly texts: number;
  /** The smallest text drawn, in CSS pixels at 100 % zoom. */
  readonly minFontPx: number;
  readonly problems: readonly Problem[];
}

// Runs in the page. Every rectangle in CSS pixels (getBoundingClientRect), every path
// point mapped to the same space with the element's screen matrix.
const MEASURE = String.raw`
(() => {
  const out = { problems: [] };
  const svg = document.querySelector('svg');
  const r = (el) => { const b = el.getBoundingClientRect(); return { x: b.left, y: b.top, w: b.width, h: b.height }; };
  const inside = (a, b, tol) => a.x >= b.x - tol && a.y >= b.y - tol && a.x + a.w <= b.x + b.w + tol && a.y + a.h <= b.y + b.h + tol;
  const overlap = (a, b, tol) => a.x + tol < b.x + b.w && b.x + tol < a.x + a.w && a.y + tol < b.y + b.h && b.y + tol < a.y + a.h;
  const union = (rs) => { const x = Math.min(...rs.map((q) => q.x)), y = Math.min(...rs.map((q) => q.y)); return { x, y, w: Math.max(...rs.map((q) => q.x + q.w)) - x, h: Math.max(...rs.map((q) => q.y + q.h)) - y }; };
  const title = (g) => (g.querySelector('title') || {}).textContent || '';
  const nodes = [...svg.querySelectorAll('g.node')].map((g) => {
    const shapes = [...g.querySelectorAll('polygon, path, ellipse, rect, polyline')].map(r);
    const texts = [...g.querySelectorAll('text')];
    return { id: title(g), shape: shapes.length ? union(shapes) : null, texts, label: texts.map((t) => t.textContent).join(' ') };
  });
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const edges = [...svg.querySelectorAll('g.edge')].map((g) => {
    const [from, to] = title(g).split('->');
    return { from, to, name: title(g), path: g.querySelector('path'), texts: [...g.querySelectorAll('text')] };
  });
  const all = [...svg.querySelectorAll('text')];
  const view = r(svg);
  out.width = view.w; out.height = view.h; out.nodes = nodes.length; out.edges = edges.length; out.texts = all.length;
  out.minFontPx = Math.min(...all.map((t) => parseFloat(getComputedStyle(t).fontSize) * (t.getScreenCTM() ? t.getScreenCTM().a : 1)));
  const say = (kind, what) => out.problems.push({ kind, what });
  for (const t of all) if (!inside(r(t), view, 1)) say('clipped', JSON.stringify(t.textContent));
  // Node text inside its own shape.
  for (const n of nodes) {
    if (!n.shape) continue;
    for (const t of n.texts) if (!inside(r(t), n.shape, 1)) say('text-outside-box', n.label + ': ' + JSON.stringify(t.textContent));
  }
  // Edge labels clear of every box.
  for (const e of edges) for (const t of e.texts) for (const n of nodes) {
    if (n.shape && overlap(r(t), n.shape, 1)) say('label-on-box', e.name + ' ' + JSON.stringify(t.textContent) + ' on ' + JSON.stringify(n.label));
  }
  // The title and legend clear of every box.
  for (const t of all) {
    if (t.closest('g.node') || t.closest('g.edge')) continue;
    for (const n of nodes) if (n.shape && overlap(r(t), n.shape, 1)) say('label-on-box', 'heading ' + JSON.stringify(t.textContent) + ' on ' + JSON.stringify(n.label));
  }
  // No two texts drawn over each other (a node's or edge's own lines are stacked, not overlapping).
  for (let i = 0; i < all.length; i++) for (let j = i + 1; j < all.length; j++) {
    if (overlap(r(all[i]), r(all[j]), 1)) say('text-on-text', JSON.stringify(all[i].textContent) + ' and ' + JSON.stringify(all[j].textContent));
  }
  // Edges clear of every box but their own two ends: points every 2 px along the path.
  for (const e of edges) {
    if (!e.path) continue;
    const m = e.path.getScreenCTM();
    const len = e.path.getTotalLength();
    const hit = new Set();
    for (let s = 0; s <= len; s += 2) {
      const p = new DOMPoint(e.path.getPointAtLength(s).x, e.path.getPointAtLength(s).y).matrixTransform(m);
      for (const n of nodes) {
        if (!n.shape || n.id === e.from || n.id === e.to || hit.has(n.id)) continue;
        const b = n.shape;
        if (p.x > b.x + 2 && p.x < b.x + b.w - 2 && p.y > b.y + 2 && p.y < b.y + b.h - 2) { hit.add(n.id); say('edge-through-box', e.name + ' through ' + JSON.stringify(n.label)); }
      }
    }
  }
  const pre = document.createElement('pre');
  pre.id = 'measured';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
`;

function run(args: string[]): string {
  return execFileSync(browser(), ['--no-sandbox', '--disable-gpu', '--hide-scrollbars', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60000 });
}

/** Draw the SVG, measure it; with `screenshot`, also save what was drawn as a PNG there. */
export function measureSvg(svg: string, screenshot?: string): Measured {
  const dir = mkdtempSync(join(tmpdir(), 'mesh-svg-'));
  try {
    const body = svg.replace(/^<\?xml[^>]*>\s*/, '').replace(/<!DOCTYPE[^>]*>\s*/, '');
    const page = join(dir, 'page.html');
    writeFileSync(page, `<!doctype html><html><body style="margin:0">${body}<script>${MEASURE}</script></body></html>`);
    const dom = run(['--dump-dom', `file://${page}`]);
    const m = /<pre id="measured">([\s\S]*?)<\/pre>/.exec(dom);
    if (!m) throw new Error(`the browser printed no measurement:\n${dom.slice(0, 2000)}`);
    const measured = JSON.parse(m[1].replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')) as Measured;
    if (screenshot) run([`--screenshot=${screenshot}`, `--window-size=${Math.ceil(measured.width)},${Math.ceil(measured.height)}`, `file://${page}`]);
    return measured;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
