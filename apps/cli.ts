import { existsSync } from 'node:fs';
import { App } from 'cdk8s';
import { CHART_VARIANTS, ChartVariant, createVariant } from '../charts';
import { analyze, Finding, formatText } from '../lint/analyze';
import { lintApp, manifestsFromFiles } from '../lint/sources';
import { lintBeforeWrite, runSynth } from './run';

const USAGE: Record<string, string> = {
  charts: `usage: cdk8s-mesh charts

List the charts the app synthesizes (each on both data planes), one per line.
`,
  synth: `usage: cdk8s-mesh synth [--out DIR] [CHART...]

Synthesize the charts (all by default) to DIR (default dist/), one file per chart:
DIR/<chart>.k8s.yaml. Mesh lint runs first: errors stop the synth with nothing written.
Bad input prints the construct path, the value and what was expected, and exits 1.
`,
  lint: `usage: cdk8s-mesh lint [--format text|json] [--one-cluster] [CHART|FILE...]

Mesh lint (istioctl-analyze-style checks). With no argument: every chart, synthesized
in memory. A CHART (see \`cdk8s-mesh charts\`) is synthesized in memory; a FILE is YAML.
Each chart and each file is linted on its own, as one deployable unit; --one-cluster
lints all the files together, as objects of one cluster.
Exit status 1 when any finding is an error, 2 on bad arguments.
`,
  sidecar: `usage: cdk8s-mesh sidecar --config FILE [...]

Run the mesh proxy; \`cdk8s-mesh sidecar --help\` lists its options.
`,
};

const OVERVIEW = `usage: cdk8s-mesh <command> [--help]

commands:
  charts              list the charts the app synthesizes
  synth [--out DIR] [CHART...]
                      synthesize charts (all by default) to DIR (default dist/)
  lint [--format text|json] [--one-cluster] [CHART|FILE...]
                      mesh lint over charts or YAML files (default: every chart);
                      exit 1 when any error is found
  sidecar --config FILE [...]
                      run the mesh proxy (see: cdk8s-mesh sidecar --help)
  help [COMMAND]      this text, or a command's
`;

const isHelp = (a: string) => a === '--help' || a === '-h';
const chartIds = () => CHART_VARIANTS.map((v) => v.id).join(', ');
const variant = (id: string): ChartVariant | undefined => CHART_VARIANTS.find((v) => v.id === id);

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
  const { flags, positional } = parse('synth', args, ['--out']);
  const outdir = (flags['--out'] as string | undefined) ?? 'dist';
  const unknown = positional.filter((n) => !variant(n));
  if (unknown.length) throw new UsageError('synth', `unknown chart(s) ${unknown.join(', ')}; the charts are: ${chartIds()}`);
  let written = 0;
  const status = runSynth(() => {
    const app = new App({ outdir });
    for (const v of CHART_VARIANTS) if (positional.length === 0 || positional.includes(v.id)) createVariant(app, v);
    lintBeforeWrite(app);
    app.synth();
    written = app.charts.length;
  });
  if (status === 0) console.log(`wrote ${written} chart(s) to ${outdir}/`);
  return status;
}

function lint(args: string[]): number {
  const { flags, positional } = parse('lint', args, ['--format'], ['--one-cluster']);
  const format = (flags['--format'] as string | undefined) ?? 'text';
  if (format !== 'text' && format !== 'json') throw new UsageError('lint', `--format is "${format}"; expected text or json`);
  // Each argument is a file when one exists by that name, else a chart id.
  const files = positional.filter((a) => existsSync(a));
  const charts = positional.filter((a) => !existsSync(a));
  const unknown = charts.filter((c) => !variant(c));
  if (unknown.length) throw new UsageError('lint', `${unknown.join(', ')}: no such file or chart; the charts are: ${chartIds()}`);
  if (flags['--one-cluster'] && charts.length) throw new UsageError('lint', '--one-cluster applies to files only; lint charts on their own');

  let findings: Finding[] = [];
  try {
    if (charts.length || !files.length) {
      const app = new App({ outdir: 'dist' });
      for (const v of CHART_VARIANTS) if (!positional.length || charts.includes(v.id)) createVariant(app, v);
      findings = lintApp(app);
    }
    if (flags['--one-cluster']) findings.push(...analyze(manifestsFromFiles(files)));
    else for (const f of files) findings.push(...analyze(manifestsFromFiles([f])));
  } catch (e) {
    console.error(`cdk8s-mesh lint: ${(e as Error).message}`);
    return 2;
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

/** The `cdk8s-mesh` command line. Returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command in USAGE && command !== 'sidecar' && rest.some(isHelp)) {
    process.stdout.write(USAGE[command]);
    return 0;
  }
  try {
    switch (command) {
      case 'charts':
        parse('charts', rest, []);
        for (const v of CHART_VARIANTS) console.log(`${v.id.padEnd(40)} ${v.entry.description} (${v.dataPlane})`);
        return 0;
      case 'synth':
        return synth(rest);
      case 'lint':
        return lint(rest);
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
