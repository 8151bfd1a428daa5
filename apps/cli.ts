import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { App } from 'cdk8s';
import { DataPlane, MeshChart, MeshTracing } from '../constructs';
import { CHART_VARIANTS, ChartVariant, createVariant } from '../charts';
import { analyze, Finding, formatText } from '../lint/analyze';
import { lintApp, manifestsFromFiles, manifestsOf } from '../lint/sources';
import { Base, istioFormOf, ChartChange, chartFiles, commentBody, diffMarkdown, diffPlans, objectNames, planOf, PlanBaseError, chartPlan, ChartPlan, planMarkdown, trafficSvg, postStickyComment, resolveBase, short } from '../plan';
import { prometheusDurationMs } from '../model';
import { fromPrometheus, fromProxies, GateOptions, Observed, ObserveSourceError, observeJson, observeMarkdown, observeReport, observeText } from '../observe';
import { isRefusal, lintBeforeWrite, refuseInvalid, runSynth } from './run';
import { entryOfCdk8sYaml, loadUserApp } from './user-app';

const USAGE: Record<string, string> = {
  charts: `usage: cdk8s-mesh charts [--app FILE]

List the charts the app synthesizes, one per line.
`,
  synth: `usage: cdk8s-mesh synth [--app FILE] [--out DIR] [CHART...]

Synthesize the charts (all by default) to DIR (default dist/), one file per chart:
DIR/<chart>.k8s.yaml. Mesh lint runs first: errors stop the synth with nothing written.
Bad input prints the construct path, the value and what was expected, and exits 1.
`,
  lint: `usage: cdk8s-mesh lint [--app FILE] [--format text|json] [--one-cluster] [CHART|FILE...]

Mesh lint (istioctl-analyze-style checks). With no argument: every chart, synthesized
in memory. A CHART (see \`cdk8s-mesh charts\`) is synthesized in memory; a FILE is YAML.
Each chart and each file is linted on its own, as one deployable unit; --one-cluster
lints all the files together, as objects of one cluster.
Exit status 1 when any finding is an error or the input is refused (where synth refuses,
lint fails too), 2 on bad arguments only.
`,
  init: `usage: cdk8s-mesh init [DIR] [--data-plane istio|node-sidecar|gateway-api] [--pulumi] [--name NAME]

Scaffold a project of your own in DIR (default: the current directory, which must have
no package.json): package.json depending on cdk8s-mesh, cdk8s.yaml, tsconfig.json,
main.ts with one chart, a jest snapshot test and a README. Then:
  npm install && npm run synth && npm test
--pulumi adds a Pulumi program (Pulumi.yaml, pulumi.ts) deploying the same chart.
--mesh-spec SPEC is the cdk8s-mesh dependency written into package.json (default
^<this version>); for a package not on the registry, the tarball: file:/path/cdk8s-mesh-<version>.tgz
`,
  plan: `usage: cdk8s-mesh plan [--app FILE] [--out DIR] [--print] [--no-svg] [CHART...]
       cdk8s-mesh plan --diff BASE [--app FILE] [--max-weight-shift N] [--fail-on-route-removal]
                       [--allow HOST]... [--comment FILE] [CHART...]

The traffic plan of each chart (all by default), written to DIR/<chart>.plan.md
(default dist/): per host, its rules in order with their matches in words,
destinations with weights as percentages, timeouts, retries, faults, mirrors, rewrites,
redirects and header changes; the DestinationRules' subsets with the workloads they
select and their policies; gateways; who calls whom and whether the caller is in the
mesh; the chart's lint findings; a Mermaid graph. --print also writes them to stdout.
The same graph as a picture in DIR/<chart>.traffic.svg (Graphviz layout, made offline;
--no-svg skips it).
A node-sidecar chart's plan reads its rules as the Istio objects of the same model:
what its proxies load from ConfigMap mesh-routes.

--diff BASE compares with BASE, a directory of an earlier synth or a git ref (checked
out in a temporary worktree and synthesized there): per host, rules added, removed or
changed, weight shifts as "v1 90% -> 70% (-20)", timeouts, retries and faults added or
removed, hosts and objects that appear or disappear, and one summary line per chart, as
Markdown on stdout. Charts on every data plane are compared (node-sidecar route tables
and Gateway API HTTPRoutes read as the VirtualServices they stand for; this package's own
-node-sidecar and -gateway-api variants are skipped: they carry their Istio chart's
rules). Exit 1 when --max-weight-shift N is exceeded or, with
--fail-on-route-removal, a rule or host is removed, except on hosts given with --allow.
--comment FILE also writes a pull-request comment: the changes, a Mermaid graph of the
hosts that changed, their charts' lint findings and the gates' verdict.
`,
  'github-comment': `usage: cdk8s-mesh github-comment FILE [--pr N] [--repo OWNER/NAME]

Post FILE (from plan --diff --comment) as the pull request's one sticky comment:
the earlier comment of cdk8s-mesh is updated, or one is created. Token from
GITHUB_TOKEN; repository from --repo or GITHUB_REPOSITORY; pull request from --pr or
the event in GITHUB_EVENT_PATH; API from GITHUB_API_URL (default https://api.github.com).
`,
  'mesh-config': `usage: cdk8s-mesh mesh-config [--app FILE] [CHART...]

The meshConfig fragment each chart's MeshTracing needs on Istio: the extension provider
its Telemetry names, with the collector's address. meshConfig is not a namespaced object:
merge the fragment into your IstioOperator (spec.meshConfig) or istiod's Helm values.
One YAML document per MeshTracing, on stdout.
`,
  observe: `usage: cdk8s-mesh observe [CHART] (--prometheus URL | --proxy URL...) [--window DURATION]
                       [--max-deviation P] [--max-error-rate P] [--min-requests N] [--host HOST]...
                       [--format text|markdown|json] [--app FILE]

What the mesh did next to what the chart plans: for each host of CHART (needed when the
app has several), every destination its rules name, with the share the plan gives it,
the share of requests it got, the deviation in points, its error rate (5xx or no
answer), response codes, Envoy's response flags (UT upstream timeout, UF connection
failure, FI fault abort, ...), p50 and p99. Read from Istio's standard metrics
(istio_requests_total, istio_request_duration_milliseconds, reporter="source"), which
Istio's proxies and the node sidecar both export, so it works on every data plane:
  --prometheus URL    Prometheus's HTTP API (e.g. the PrometheusAddon's service), over
                      --window (a Prometheus duration, default 5m)
  --proxy URL         a proxy's stats port (http://POD:15020), repeatable, when there is
                      no Prometheus: totals since the proxies started, or with --window,
                      the difference of two reads that far apart (observe waits)
A host whose rules split traffic by match (a header rule, then a default) has no single
planned split: Istio's metrics carry no rule, so its shares are shown, not compared.
Gates, for a canary step in CI/CD (exit 1 when one fails):
  --max-deviation P   a destination's share is off the plan by more than P points
  --max-error-rate P  a destination fails more than P% of its requests
  --min-requests N    a host with traffic, or named with --host, has fewer than N requests (default 1)
  --host HOST         judge and show only HOST (as the plan names it; repeatable)
Exit status: 0, 1 when a gate fails, 2 on bad arguments, 3 when the metrics could not be read.
`,
  sidecar: `usage: cdk8s-mesh sidecar --config FILE [...]

Run the mesh proxy; \`cdk8s-mesh sidecar --help\` lists its options.
`,
};

const APP_HELP = `
The app: --app FILE (a program that builds a cdk8s App and calls app.synth(), or a
module exporting \`charts\`), else the entry of ./cdk8s.yaml, else this package's own
scenario charts.
`;
for (const c of ['charts', 'synth', 'lint', 'plan', 'mesh-config', 'observe']) USAGE[c] += APP_HELP;

const OVERVIEW = `usage: cdk8s-mesh <command> [--help]

commands:
  init [DIR]          scaffold a project of your own (see: cdk8s-mesh init --help)
  charts              list the charts the app synthesizes
  synth [--out DIR] [CHART...]
                      synthesize charts (all by default) to DIR (default dist/)
  lint [--format text|json] [--one-cluster] [CHART|FILE...]
                      mesh lint over charts or YAML files (default: every chart);
                      exit 1 when any error is found
  plan [--print] [CHART...]
                      traffic plan per chart (Markdown + Mermaid) to dist/<chart>.plan.md,
                      its graph as dist/<chart>.traffic.svg
  plan --diff BASE    what changes traffic against a directory or git ref
  github-comment FILE post a plan comment on the pull request (GitHub Actions)
  observe [CHART] --prometheus URL | --proxy URL...
                      planned split next to the observed one, errors, flags, latency;
                      --max-deviation P gates a canary step
  mesh-config [CHART...]
                      the meshConfig fragment (tracing provider) for Istio's installation
  sidecar --config FILE [...]
                      run the mesh proxy (see: cdk8s-mesh sidecar --help)
  help [COMMAND]      this text, or a command's
`;

const isHelp = (a: string) => a === '--help' || a === '-h';
const variant = (id: string): ChartVariant | undefined => CHART_VARIANTS.find((v) => v.id === id);

/** This package's root: its own cdk8s.yaml runs apps/main.ts, i.e. the built-in charts. */
const PACKAGE_ROOT = resolve(__dirname, '..', existsSync(join(__dirname, '..', 'package.json')) ? '' : '..');

/**
 * The app to work on, with every chart in it: the user's (--app, or ./cdk8s.yaml's
 * entry) or this package's scenario charts on both data planes.
 */
function loadApp(appFlag: string | undefined, outdir: string): App {
  const entry = appFlag ?? (resolve(process.cwd()) === PACKAGE_ROOT ? undefined : entryOfCdk8sYaml(process.cwd()));
  if (entry) return loadUserApp(entry, outdir);
  const app = new App({ outdir });
  for (const v of CHART_VARIANTS) createVariant(app, v);
  return app;
}

/** Keep only the charts named (all when none); unknown names are a usage error listing the charts. */
function select(command: string, app: App, names: readonly string[]): void {
  const ids = app.charts.map((c) => c.node.id);
  const unknown = names.filter((n) => !ids.includes(n));
  if (unknown.length) throw new UsageError(command, `${unknown.join(', ')}: no such ${command === 'lint' ? 'file or chart' : 'chart'}; the charts are: ${ids.join(', ')}`);
  if (names.length) for (const id of ids) if (!names.includes(id)) app.node.tryRemoveChild(id);
}

/** A command-line mistake: printed with the command's usage, exit status 2. */
class UsageError extends Error {
  constructor(readonly command: string, message: string) { super(message); }
}

/** Split argv into flags (with their values) and positionals; refuses unknown flags. */
function parse(command: string, args: string[], valued: readonly string[], bools: readonly string[] = []) {
  const flags: Record<string, string | true> = {};
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('-') || a === '-') { positional.push(a); continue; }
    const [name, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    if (valued.includes(name)) {
      const value = inline ?? args[++i];
      if (value === undefined || value === '') throw new UsageError(command, `${name} needs a value`);
      flags[name] = value;
    } else if (bools.includes(name) && inline === undefined) {
      flags[name] = true;
    } else {
      throw new UsageError(command, `unknown option ${a}`);
    }
  }
  return { flags, positional };
}

function synth(args: string[]): number {
  const { flags, positional } = parse('synth', args, ['--out', '--app']);
  const outdir = (flags['--out'] as string | undefined) ?? 'dist';
  let written = 0;
  const status = runSynth(() => {
    const app = loadApp(flags['--app'] as string | undefined, outdir);
    select('synth', app, positional);
    lintBeforeWrite(app);
    app.synth();
    written = app.charts.length;
  });
  if (status === 0) console.log(`wrote ${written} chart(s) to ${outdir}/`);
  return status;
}

function lint(args: string[]): number {
  const { flags, positional } = parse('lint', args, ['--format', '--app'], ['--one-cluster']);
  const format = (flags['--format'] as string | undefined) ?? 'text';
  if (format !== 'text' && format !== 'json') throw new UsageError('lint', `--format is "${format}"; expected text or json`);
  // Each argument is a file when one exists by that name, else a chart id.
  const files = positional.filter((a) => existsSync(a));
  const charts = positional.filter((a) => !existsSync(a));
  if (flags['--one-cluster'] && charts.length) throw new UsageError('lint', '--one-cluster applies to files only; lint charts on their own');

  let findings: Finding[] = [];
  try {
    if (charts.length || !files.length) {
      const app = loadApp(flags['--app'] as string | undefined, 'dist');
      select('lint', app, charts);
      refuseInvalid(app);
      findings = lintApp(app);
    }
    if (flags['--one-cluster']) findings.push(...analyze(manifestsFromFiles(files)));
    else for (const f of files) findings.push(...analyze(manifestsFromFiles([f])));
  } catch (e) {
    // Where synth refuses, lint fails the same way (exit 1); 2 is for bad arguments only.
    if (!isRefusal(e)) throw e;
    console.error(`cdk8s-mesh lint: ${e.message}`);
    return 1;
  }
  if (format === 'json') {
    console.log(JSON.stringify(findings.map((f) => ({ code: f.code, severity: f.severity, message: f.message, object: f.object, path: f.path ?? null })), null, 2));
  } else {
    if (findings.length) console.log(formatText(findings));
    const count = (s: string) => findings.filter((f) => f.severity === s).length;
    console.log(`mesh lint: ${count('error')} error(s), ${count('warning')} warning(s), ${count('info')} info`);
  }
  return findings.some((f) => f.severity === 'error') ? 1 : 0;
}

async function plan(args: string[]): Promise<number> {
  // --allow may be given more than once.
  const allow: string[] = [];
  args = args.filter((a, i) => {
    if (a === '--allow') { if (args[i + 1] === undefined) throw new UsageError('plan', '--allow needs a host'); allow.push(args[i + 1]); return false; }
    if (i > 0 && args[i - 1] === '--allow') return false;
    if (a.startsWith('--allow=')) { allow.push(a.slice('--allow='.length)); return false; }
    return true;
  });
  if (args.includes('--diff') || args.some((a) => a.startsWith('--diff='))) return planDiff(args, allow);
  const { flags, positional } = parse('plan', args, ['--out', '--app'], ['--print', '--no-svg']);
  const outdir = (flags['--out'] as string | undefined) ?? 'dist';
  const plans: ChartPlan[] = [];
  const status = runSynth(() => {
    const app = loadApp(flags['--app'] as string | undefined, outdir);
    select('plan', app, positional);
    for (const chart of app.charts) plans.push(chartPlan(chart));
  });
  if (status !== 0) return status;
  // Every plan is made before anything is written: a chart that fails leaves no half set.
  mkdirSync(outdir, { recursive: true });
  for (const p of plans) {
    const text = planMarkdown(p.plan, p.header);
    writeFileSync(join(outdir, `${p.header.chart}.plan.md`), text);
    if (!flags['--no-svg']) writeFileSync(join(outdir, `${p.header.chart}.traffic.svg`), await trafficSvg(p.plan, p.title));
    if (flags['--print']) process.stdout.write(`${text}\n`);
  }
  console.error(`wrote ${plans.length} plan(s) to ${outdir}/${flags['--no-svg'] ? '' : ' (<chart>.plan.md, <chart>.traffic.svg)'}`);
  return 0;
}

function meshConfig(args: string[]): number {
  const { flags, positional } = parse('mesh-config', args, ['--app']);
  const docs: string[] = [];
  const status = runSynth(() => {
    const app = loadApp(flags['--app'] as string | undefined, 'dist');
    select('mesh-config', app, positional);
    for (const chart of app.charts) {
      for (const t of chart.node.findAll().filter((c): c is MeshTracing => c instanceof MeshTracing)) {
        if (MeshChart.isMeshChart(chart) && chart.dataPlane !== DataPlane.ISTIO) continue; // the node sidecar needs no meshConfig
        docs.push(t.meshConfigYaml());
      }
    }
  });
  if (status !== 0) return status;
  if (docs.length === 0) console.error('cdk8s-mesh mesh-config: no chart on the Istio data plane has a MeshTracing: nothing to add to meshConfig');
  process.stdout.write(docs.join('---\n'));
  return 0;
}

function planDiff(args: string[], allow: readonly string[]): number {
  const { flags, positional } = parse('plan', args, ['--diff', '--app', '--max-weight-shift', '--comment'], ['--fail-on-route-removal']);
  const maxShiftFlag = flags['--max-weight-shift'] as string | undefined;
  const maxShift = maxShiftFlag === undefined ? undefined : Number(maxShiftFlag);
  if (maxShift !== undefined && !(Number.isInteger(maxShift) && maxShift >= 0 && maxShift <= 100)) {
    throw new UsageError('plan', `--max-weight-shift is "${maxShiftFlag}"; expected an integer from 0 to 100 (points)`);
  }
  let base: Base;
  try {
    base = resolveBase(flags['--diff'] as string, process.cwd(), resolve(__dirname, '..', existsSync(join(__dirname, '..', 'bin')) ? '' : '..', 'bin', 'cdk8s-mesh.js'));
  } catch (e) {
    if (!(e instanceof PlanBaseError)) throw e;
    console.error(`cdk8s-mesh plan --diff: ${e.message}`);
    return 1;
  }
  try {
    let diffs: ChartChange[] = [];
    try {
      const status = runSynth(() => {
        const app = loadApp(flags['--app'] as string | undefined, 'dist');
        select('plan', app, positional);
        diffs = diffCharts(app, base.dir, positional);
      });
      if (status !== 0) throw new Error('');
    } catch (e) {
      if (e instanceof UsageError) throw e;
      if ((e as Error).message) console.error((e as Error).message);
      console.error('cdk8s-mesh plan --diff: head (this checkout) failed to synthesize (its error is above)');
      return 1;
    }
    const gates = new Set<string>(); // one line per host, rule and destination
    for (const { id, diff } of diffs) {
      for (const x of diff.hosts) {
        const host = x.host.split(' ')[0];
        if (allow.some((a) => host === a || host === short(a))) continue;
        for (const sh of x.shifts) {
          if (maxShift !== undefined && Math.abs(sh.to - sh.from) > maxShift) gates.add(`${id}: ${host} ${sh.rule}: ${sh.destination} moved ${Math.abs(sh.to - sh.from)} points, ${sh.from}% -> ${sh.to}% (more than ${maxShift})`);
        }
        if (flags['--fail-on-route-removal'] && x.rulesRemoved > 0) gates.add(`${id}: ${host}: ${x.rulesRemoved} rule(s) removed`);
      }
    }
    const text = `## Traffic changes against ${base.description}\n\n${diffs.map(({ id, diff }) => diffMarkdown(id, diff)).join('\n') || 'No traffic change.\n'}`;
    process.stdout.write(text);
    if (flags['--comment']) writeFileSync(flags['--comment'] as string, commentBody(base.description, diffs, text, [...gates]));
    if (gates.size) {
      process.stdout.write(`\n**Refused by the plan gates:**\n${[...gates].map((g) => `- ${g}`).join('\n')}\n`);
      return 1;
    }
    return 0;
  } finally {
    base.cleanup();
  }
}

/**
 * Each chart of the app against its file in the base directory, for the charts that
 * changed, on whatever data plane: both sides are read from their YAML, a node-sidecar
 * route table or Gateway API HTTPRoutes as the VirtualServices they stand for. This
 * package's own -node-sidecar and -gateway-api variants are skipped: each carries its
 * Istio chart's rules, whose diff is shown once.
 */
function diffCharts(app: App, baseDir: string, names: readonly string[]): ChartChange[] {
  const isTwin = (id: string) => (id.endsWith(`-${DataPlane.NODE_SIDECAR}`) || id.endsWith(`-${DataPlane.GATEWAY_API}`)) && variant(id) !== undefined;
  const baseFiles = chartFiles(baseDir);
  const heads = new Map(app.charts.filter((c) => !isTwin(c.node.id)).map((c) => [c.node.id, istioFormOf(manifestsOf(c))]));
  const ids = [...new Set([...heads.keys(), ...[...baseFiles.keys()].filter((k) => !names.length || names.includes(k))])]
    .filter((id) => !isTwin(id)).sort();
  const out: ChartChange[] = [];
  for (const id of ids) {
    const h = heads.get(id);
    const file = baseFiles.get(id);
    const b = file ? istioFormOf(manifestsFromFiles([file])) : undefined;
    const head = h && planOf(h);
    const diff = diffPlans(b && planOf(b), head, { base: objectNames((b ?? []).map((m) => m.obj)), head: objectNames((h ?? []).map((m) => m.obj)) });
    if (diff.summary !== 'no traffic change') out.push({ id: `${id}${!b ? ' (new chart)' : !h ? ' (chart removed)' : ''}`, diff, head });
  }
  return out;
}

async function githubComment(args: string[]): Promise<number> {
  const { flags, positional } = parse('github-comment', args, ['--pr', '--repo']);
  if (positional.length !== 1) throw new UsageError('github-comment', 'give one FILE, the comment written by plan --diff --comment');
  const token = process.env.GITHUB_TOKEN;
  const repository = (flags['--repo'] as string | undefined) ?? process.env.GITHUB_REPOSITORY;
  let pr = flags['--pr'] === undefined ? undefined : Number(flags['--pr']);
  if (pr === undefined && process.env.GITHUB_EVENT_PATH && existsSync(process.env.GITHUB_EVENT_PATH)) {
    pr = JSON.parse(readFileSync(process.env.GITHUB_EVENT_PATH, 'utf8')).pull_request?.number;
  }
  const missing = [!token && 'GITHUB_TOKEN', !repository && '--repo or GITHUB_REPOSITORY', !(Number.isInteger(pr) && pr! > 0) && '--pr or a pull_request event in GITHUB_EVENT_PATH'].filter(Boolean);
  if (missing.length) throw new UsageError('github-comment', `missing ${missing.join(', ')}`);
  const r = await postStickyComment({
    apiUrl: process.env.GITHUB_API_URL ?? 'https://api.github.com', repository: repository!, pullRequest: pr!, token: token!, body: readFileSync(positional[0], 'utf8'),
  });
  console.log(`github-comment: ${r.action} comment ${r.id} on ${repository}#${pr}`);
  return 0;
}

/** Repeatable flags taken out of argv (parse() keeps the last value of a flag). */
function takeRepeated(command: string, args: string[], names: readonly string[]): { rest: string[]; values: Record<string, string[]> } {
  const values: Record<string, string[]> = Object.fromEntries(names.map((n) => [n, []]));
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const name = names.find((n) => a === n || a.startsWith(`${n}=`));
    if (!name) { rest.push(a); continue; }
    const v = a === name ? args[++i] : a.slice(name.length + 1);
    if (v === undefined || v === '') throw new UsageError(command, `${name} needs a value`);
    values[name].push(v);
  }
  return { rest, values };
}

function percentFlag(command: string, flags: Record<string, string | true>, name: string): number | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (typeof v !== 'string' || !Number.isFinite(n) || n < 0 || n > 100) throw new UsageError(command, `${name} is ${JSON.stringify(v)}; expected a number of percent (points) from 0 to 100`);
  return n;
}

async function observe(args: string[]): Promise<number> {
  const { rest, values } = takeRepeated('observe', args, ['--proxy', '--host']);
  const { flags, positional } = parse('observe', rest, ['--prometheus', '--window', '--max-deviation', '--max-error-rate', '--min-requests', '--format', '--app']);
  const format = (flags['--format'] as string | undefined) ?? 'text';
  if (!['text', 'markdown', 'json'].includes(format)) throw new UsageError('observe', `--format is ${JSON.stringify(format)}; expected text, markdown or json`);
  const prometheus = flags['--prometheus'] as string | undefined;
  const proxies = values['--proxy'];
  if ((prometheus === undefined) === (proxies.length === 0)) throw new UsageError('observe', 'give --prometheus URL or --proxy URL (one or more), not both');
  for (const u of [prometheus, ...proxies].filter((x): x is string => x !== undefined)) {
    if (!URL.canParse(u) || !/^https?:$/.test(new URL(u).protocol)) throw new UsageError('observe', `${JSON.stringify(u)} is not an http(s) URL`);
  }
  const windowFlag = flags['--window'] as string | undefined;
  const windowMs = windowFlag === undefined ? undefined : prometheusDurationMs(windowFlag);
  if (windowFlag !== undefined && windowMs === undefined) throw new UsageError('observe', `--window is ${JSON.stringify(windowFlag)}; expected a duration such as 30s, 5m or 1h`);
  const minFlag = flags['--min-requests'] as string | undefined;
  if (minFlag !== undefined && !/^\d+$/.test(minFlag)) throw new UsageError('observe', `--min-requests is ${JSON.stringify(minFlag)}; expected a whole number`);
  const gate: GateOptions = {
    maxDeviation: percentFlag('observe', flags, '--max-deviation'), maxErrorRate: percentFlag('observe', flags, '--max-error-rate'),
    ...(minFlag !== undefined ? { minRequests: Number(minFlag) } : {}), hosts: values['--host'],
  };
  if (positional.length > 1) throw new UsageError('observe', `one chart at a time; got ${positional.join(', ')}`);
  let planned: ChartPlan | undefined;
  let dataPlane = '';
  const status = runSynth(() => {
    const app = loadApp(flags['--app'] as string | undefined, 'dist');
    const ids = app.charts.map((c) => c.node.id);
    if (!positional.length && ids.length !== 1) throw new UsageError('observe', `name the chart to observe; the charts are: ${ids.join(', ')}`);
    select('observe', app, positional);
    const chart = app.charts[0];
    dataPlane = String(MeshChart.isMeshChart(chart) ? chart.dataPlane : DataPlane.ISTIO);
    planned = chartPlan(chart);
  });
  if (status !== 0 || !planned) return status;
  const plan = planned.plan;
  const unknownHosts = values['--host'].filter((h) => !plan.hosts.some((x) => x.host === h));
  if (unknownHosts.length) throw new UsageError('observe', `${unknownHosts.join(', ')}: not a host of chart ${planned.header.chart}; its hosts are: ${plan.hosts.map((h) => h.host).join(', ')}`);
  const services = [...new Set(plan.hosts.flatMap((h) => h.rules.flatMap((r) => r.destinations.map((d) => d.host))))];
  let observed: Observed;
  try {
    observed = prometheus !== undefined ? await fromPrometheus(prometheus, services, windowFlag ?? '5m') : await fromProxies(proxies, windowMs);
  } catch (e) {
    if (!(e instanceof ObserveSourceError)) throw e;
    process.stderr.write(`cdk8s-mesh observe: ${e.message}\n`);
    return 3;
  }
  const report = observeReport(planned.header.chart, dataPlane, plan, observed, gate);
  process.stdout.write(format === 'json' ? observeJson(report) : format === 'markdown' ? observeMarkdown(report) : observeText(report));
  return report.gate && !report.gate.passed ? 1 : 0;
}

/** The `cdk8s-mesh` command line. Returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command in USAGE && command !== 'sidecar' && command !== 'init' && rest.some(isHelp)) {
    process.stdout.write(USAGE[command]);
    return 0;
  }
  try {
    switch (command) {
      case 'charts': {
        const { flags } = parse('charts', rest, ['--app']);
        for (const c of loadApp(flags['--app'] as string | undefined, 'dist').charts) {
          const v = variant(c.node.id);
          const dataPlane = MeshChart.isMeshChart(c) ? c.dataPlane : DataPlane.ISTIO;
          console.log(`${c.node.id.padEnd(40)} ${v ? `${v.entry.description} ` : ''}(${dataPlane})`);
        }
        return 0;
      }
      case 'init': {
        const status = (await import('./init')).init(rest);
        if (status < 0) process.stdout.write(USAGE.init);
        return Math.max(status, 0);
      }
      case 'synth':
        return synth(rest);
      case 'lint':
        return lint(rest);
      case 'plan':
        return await plan(rest);
      case 'github-comment':
        return await githubComment(rest);
      case 'mesh-config':
        return meshConfig(rest);
      case 'observe':
        return await observe(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        if (command === 'help' && rest[0] && rest[0] in USAGE) process.stdout.write(USAGE[rest[0]]);
        else process.stdout.write(OVERVIEW);
        return command === undefined ? 2 : 0;
      default:
        process.stderr.write(`cdk8s-mesh: unknown command ${JSON.stringify(command)}\n${OVERVIEW}`);
        return 2;
    }
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`cdk8s-mesh ${e.command}: ${e.message}\n${USAGE[e.command]}`);
    return 2;
  }
}
