// A user's cdk8s app, loaded in this process so that the CLI can lint it and synthesize
// it the way `npm run synth` does here: the entry of their cdk8s.yaml (a program that
// builds an App and calls app.synth()), or a module exporting charts.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { App, Chart } from 'cdk8s';
import { MeshValidationError } from '../model';

/** A chart a module offers: `export const charts = [{ name, create: (scope, id) => new MyChart(scope, id) }]`. */
export interface ChartModuleEntry {
  readonly name: string;
  readonly description?: string;
  create(scope: App, id: string): Chart;
}

/** The program file named by `app:` in a cdk8s.yaml (the last .ts/.js/.mjs word of the command). */
export function entryOfCdk8sYaml(dir: string): string | undefined {
  const file = join(dir, 'cdk8s.yaml');
  if (!existsSync(file)) return undefined;
  const line = readFileSync(file, 'utf8').split('\n').find((l) => /^app:/.test(l));
  const entry = line?.replace(/^app:\s*/, '').split(/\s+/).reverse().find((w) => /\.(ts|js|cjs)$/.test(w));
  if (!entry) throw new MeshValidationError(file, 'app', line ?? null, 'a command whose last file argument is the app\'s .ts or .js entry, e.g. "npx ts-node main.ts"');
  return resolve(dir, entry);
}

function requireFrom(dir: string, id: string): unknown {
  return require(require.resolve(id, { paths: [dir, process.cwd()] }));
}

/**
 * Load `file` and return the App it builds, without writing anything: either the
 * module exports `charts` (ChartModuleEntry[]) or a default `(app) => void`, or it is a
 * program whose `app.synth()` is intercepted. `outdir` becomes the App's output directory.
 */
export function loadUserApp(file: string, outdir?: string): App {
  const path = resolve(file);
  if (!existsSync(path)) throw new MeshValidationError('--app', 'file', file, 'an existing .ts or .js file');
  const dir = dirname(path);
  if (/\.ts$/.test(path) && !require.extensions['.ts']) {
    let tsNode: { register(o: object): void };
    try {
      tsNode = requireFrom(dir, 'ts-node') as typeof tsNode;
    } catch {
      throw new MeshValidationError(path, 'app', file, 'JavaScript, or ts-node installed in the project (npm install --save-dev ts-node) to run TypeScript');
    }
    tsNode.register({ transpileOnly: true, project: existsSync(join(dir, 'tsconfig.json')) ? join(dir, 'tsconfig.json') : undefined });
  }
  if (outdir) process.env.CDK8S_OUTDIR = outdir;
  // The user's cdk8s (a peer dependency: the same copy the constructs use).
  const cdk8s = requireFrom(dir, 'cdk8s') as typeof import('cdk8s');
  const captured: App[] = [];
  const original = cdk8s.App.prototype.synth;
  cdk8s.App.prototype.synth = function capture(this: App) { captured.push(this); };
  let mod: { charts?: ChartModuleEntry[]; CHARTS?: ChartModuleEntry[]; default?: unknown };
  try {
    mod = require(path);
  } finally {
    cdk8s.App.prototype.synth = original;
  }
  const entries = mod.charts ?? mod.CHARTS;
  if (Array.isArray(entries) || typeof mod.default === 'function') {
    const app = new cdk8s.App(outdir ? { outdir } : {});
    if (Array.isArray(entries)) for (const e of entries) e.create(app, e.name);
    else (mod.default as (a: App) => void)(app);
    return app;
  }
  if (!captured.length) {
    throw new MeshValidationError(path, 'app', file, 'a program that builds a cdk8s App and calls app.synth(), or a module exporting `charts` ([{ name, create(scope, id) }]) or a default function (app) => void');
  }
  return captured[captured.length - 1];
}
