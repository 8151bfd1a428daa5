// Every TypeScript example in the guides (docs/*.md) is type-checked and run, and the App
// it builds synthesizes without a refusal: an example a reader copies works.
//
// Each ```ts block is its own module. Imports name the package as a user does
// ('cdk8s-mesh', 'cdk8s-mesh/pulumi', ...) or this repository's folders ('../constructs');
// both resolve to this checkout. What a block uses without defining (the guide says so in
// prose: "`chart`, a MeshChart", "the reviews service") comes from FIXTURES below.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ts from 'typescript';
import { App } from 'cdk8s';
import * as mesh from '../index';
import { validationErrorsOf } from '../constructs/mesh';

const ROOT = path.join(__dirname, '..');
const DOCS = path.join(ROOT, 'docs');
// Generated here (git-ignored): jest transforms it, and 'cdk8s', 'cdk8s-plus-28', ... resolve from node_modules.
const OUT = path.join(__dirname, '.docs-examples');

/** Names a block may use without defining them, and how they are made (in this order). */
const FIXTURES: ReadonlyArray<readonly [string, string]> = [
  ['app', 'const app = new App();'],
  ['chart', "const chart = new MeshChart(app, 'example');"],
  ['ns', "const ns = new MeshNamespace(chart, 'fixture-ns', { name: 'shop' });"],
  ['api', "const api = new MeshWorkload(chart, 'fixture-api', { app: 'api', image: 'acme/api:1', port: 8080, servicePort: 80 });"],
  ['reviews', "const reviews: ServiceRef = { serviceName: 'reviews', serviceNamespace: 'bookinfo', subsetNames: ['v1', 'v2', 'v3'], servicePorts: [9080] };"],
  ['reviewsShadow', "const reviewsShadow: ServiceRef = { serviceName: 'reviews-shadow', serviceNamespace: 'bookinfo', servicePorts: [9080] };"],
  ['cart', "const cart = new MeshWorkload(chart, 'fixture-cart', { app: 'cart', image: 'acme/cart:1', port: 8080 });"],
  ['ratings', "const ratings: ServiceRef = { serviceName: 'ratings', serviceNamespace: 'bookinfo', subsetNames: ['v1', 'v2'], servicePorts: [9080] };"],
  ['web', "const web = new MeshWorkload(chart, 'fixture-web', { app: 'web', image: 'acme/web:1', port: 8080 });"],
  ['checkout', "const checkout = new CanaryRelease(chart, 'fixture-checkout', { app: 'checkout', port: 8080, stable: { version: 'v1', image: 'acme/checkout:1' }, canary: { version: 'v2', image: 'acme/checkout:2' }, canaryWeight: 10 });"],
  ['ShopChart', 'class ShopChart extends MeshChart {}'],
  ['policy', "const policy = new DestinationPolicy(chart, 'fixture-policy', { name: 'reviews', service: reviews, subsets: [{ name: 'v1' }] });"],
];

interface Example { file: string; line: number; code: string }

function examples(): Example[] {
  return fs.readdirSync(DOCS).filter((f) => f.endsWith('.md')).sort().flatMap((f) => {
    const lines = fs.readFileSync(path.join(DOCS, f), 'utf8').split('\n');
    const out: Example[] = [];
    for (let i = 0; i < lines.length; i++) {
      if (lines[i].trim() !== '```ts') continue;
      const start = i + 1;
      while (++i < lines.length && lines[i].trim() !== '```');
      out.push({ file: `docs/${f}`, line: start + 1, code: lines.slice(start, i).join('\n') });
    }
    return out;
  });
}

/** Interfaces and types the package exports (not in `Object.keys` of the module at run time). */
const TYPE_NAMES = [...new Set(['model', 'constructs', path.join('constructs', 'progressive')].flatMap((dir) => fs.readdirSync(path.join(ROOT, dir))
  .filter((f) => f.endsWith('.ts')).flatMap((f) => [...fs.readFileSync(path.join(ROOT, dir, f), 'utf8').matchAll(/^export (?:interface|type) (\w+)/gm)].map((m) => m[1]))))];

const MODULES: Record<string, string> = {
  'cdk8s-mesh': 'index', 'cdk8s-mesh/pulumi': 'pulumi', 'cdk8s-mesh/sidecar': 'sidecar', 'cdk8s-mesh/charts': 'charts',
  '../constructs': 'index', '../model': 'index', '../charts': 'charts', '../pulumi': 'pulumi',
};

/** The block as a module: its imports pointed at this checkout, the fixtures it needs before it. */
function moduleOf(e: Example): string {
  const imported = new Set<string>();
  const code = e.code.replace(/from '([^']+)'/g, (all, spec: string) => {
    const target = MODULES[spec] ?? (spec.startsWith('../') ? spec.slice(3) : undefined);
    return target === undefined ? all : `from '${path.join(ROOT, target)}'`;
  });
  for (const m of code.matchAll(/import\s*\{([^}]*)\}/g)) for (const n of m[1].split(',')) imported.add(n.trim().split(/\s+as\s+/).pop()!);
  for (const m of code.matchAll(/import\s+\*\s+as\s+(\w+)/g)) imported.add(m[1]);
  const declared = (n: string) => imported.has(n) || new RegExp(`\\b(const|let|var|class|function)\\s+${n}\\b`).test(code);
  // Used: named in the code, not in a comment or a string.
  const bare = code.replace(/\/\/.*$/gm, '').replace(/'[^'\n]*'/g, "''").replace(/"[^"\n]*"/g, '""');
  const uses = (n: string) => new RegExp(`(^|[^.\\w])${n}\\b`).test(bare);
  const needed = new Set<string>();
  // A fixture's own text may use earlier fixtures (chart uses app): add them, last first.
  const textOf = new Map(FIXTURES);
  for (const [name] of [...FIXTURES].reverse()) {
    if (!declared(name) && (uses(name) || [...needed].some((n) => new RegExp(`\\b${name}\\b`).test(textOf.get(n)!)))) needed.add(name);
  }
  const fixtures = FIXTURES.filter(([n]) => needed.has(n)).map(([, t]) => t);
  const meshNames = Object.keys(mesh).filter((n) => /^[A-Za-z_]\w*$/.test(n) && !declared(n));
  const typeNames = TYPE_NAMES.filter((n) => !declared(n) && !meshNames.includes(n) && (uses(n) || fixtures.some((t) => t.includes(n))));
  const prelude = [
    ...(declared('App') ? [] : ["import { App } from 'cdk8s';"]),
    `import { ${meshNames.join(', ')} } from '${path.join(ROOT, 'index')}';`,
    ...(typeNames.length ? [`import type { ${typeNames.join(', ')} } from '${path.join(ROOT, 'index')}';`] : []),
    ...fixtures,
  ];
  const hasApp = declared('app') || needed.has('app');
  // The block's imports go first: the fixtures may use what it imports (CommonJS runs them in order).
  const lines = code.split('\n');
  const isImport = (l: string) => /^\s*import\b.*;\s*$/.test(l);
  const body = lines.map((l) => (isImport(l) ? '' : l)).join('\n');
  return `${lines.filter(isImport).join(' ')}\n${prelude.join('\n')}\n${body}\nexport const __app = ${hasApp ? 'app' : 'undefined'};\nvoid [${meshNames.join(', ')}];\n`;
}

const all = examples();
const files = all.map((e, i) => ({ e, file: path.join(OUT, `${path.basename(e.file, '.md')}-${e.line}-${i}.ts`) }));

beforeAll(() => {
  fs.rmSync(OUT, { recursive: true, force: true });
  fs.mkdirSync(OUT, { recursive: true });
  for (const { e, file } of files) fs.writeFileSync(file, moduleOf(e));
});

test('the guides have examples', () => {
  expect(all.length).toBeGreaterThanOrEqual(20);
});

test('every example type-checks', () => {
  const program = ts.createProgram(files.map((f) => f.file), {
    target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Node10,
    strict: true, esModuleInterop: true, skipLibCheck: true, noEmit: true, types: ['node'],
  });
  const problems = files.flatMap(({ e, file }) => ts.getPreEmitDiagnostics(program, program.getSourceFile(file)).map((d) => {
    const at = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : 0;
    const preludeLines = moduleOf(e).split('\n').length - e.code.split('\n').length - 4;
    return `${e.file}:${e.line + at - preludeLines}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
  }));
  expect(problems).toEqual([]);
}, 120_000);

describe.each(files.map(({ e, file }) => [`${e.file}:${e.line}`, file]))('%s', (_where, file) => {
  test('runs, and its App synthesizes with no refusal', () => {
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'docs-example-'));
    const saved = process.env.CDK8S_OUTDIR;
    process.env.CDK8S_OUTDIR = outdir;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const m = require(file) as { __app?: App };
      if (m.__app) {
        expect(validationErrorsOf(m.__app)).toEqual([]);
        expect(() => m.__app!.synthYaml()).not.toThrow();
      }
    } finally {
      if (saved === undefined) delete process.env.CDK8S_OUTDIR; else process.env.CDK8S_OUTDIR = saved;
      fs.rmSync(outdir, { recursive: true, force: true });
    }
  });
});
