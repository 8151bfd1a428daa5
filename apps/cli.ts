import { App } from 'cdk8s';
import { CHART_VARIANTS, createVariant } from '../charts';
import { analyze, formatText } from '../lint/analyze';
import { lintApp, manifestsFromFiles } from '../lint/sources';
import { lintBeforeWrite, runSynth } from './run';

const USAGE = `usage: cdk8s-mesh <command>

commands:
  charts              list the charts the app synthesizes
  synth [--out DIR] [CHART...]
                      synthesize charts (all by default) to DIR (default dist/)
  lint [--format text|json] [FILE...]
                      mesh lint over YAML files (default: every chart, synthesized in memory);
                      exit 1 when any error is found
  sidecar --config FILE [...]
                      run the mesh proxy (see: cdk8s-mesh sidecar --help)
  help                this text
`;

/** The `cdk8s-mesh` command line. Returns the exit status. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'charts':
      for (const v of CHART_VARIANTS) console.log(`${v.id.padEnd(40)} ${v.entry.description} (${v.dataPlane})`);
      return 0;
    case 'synth': {
      let outdir = 'dist';
      const names: string[] = [];
      for (let i = 0; i < rest.length; i++) {
        if (rest[i] === '--out') outdir = rest[++i];
        else names.push(rest[i]);
      }
      const unknown = names.filter((n) => !CHART_VARIANTS.some((v) => v.id === n));
      if (unknown.length) {
        console.error(`cdk8s-mesh synth: unknown chart(s) ${unknown.join(', ')}; expected one of ${CHART_VARIANTS.map((v) => v.id).join(', ')}`);
        return 2;
      }
      let written = 0;
      const status = runSynth(() => {
        const app = new App({ outdir });
        for (const v of CHART_VARIANTS) if (names.length === 0 || names.includes(v.id)) createVariant(app, v);
        lintBeforeWrite(app);
        app.synth();
        written = app.charts.length;
      });
      if (status !== 0) return status;
      console.log(`wrote ${written} chart(s) to ${outdir}/`);
      return 0;
    }
    case 'lint': {
      let format = 'text';
      const files: string[] = [];
      for (let i = 0; i < rest.length; i++) {
        if (rest[i] === '--format') format = rest[++i];
        else if (rest[i].startsWith('--format=')) format = rest[i].slice('--format='.length);
        else files.push(rest[i]);
      }
      if (format !== 'text' && format !== 'json') {
        console.error(`cdk8s-mesh lint: --format is "${format}"; expected text or json`);
        return 2;
      }
      let findings;
      try {
        if (files.length) {
          findings = analyze(manifestsFromFiles(files));
        } else {
          const app = new App({ outdir: 'dist' });
          for (const v of CHART_VARIANTS) createVariant(app, v);
          findings = lintApp(app);
        }
      } catch (e) {
        console.error(`cdk8s-mesh lint: ${(e as Error).message}`);
        return 2;
      }
      if (format === 'json') {
        console.log(JSON.stringify(findings.map((f) => ({ code: f.code, severity: f.severity, message: f.message, object: f.object, path: f.path ?? null })), null, 2));
      } else if (findings.length) {
        console.log(formatText(findings));
      }
      const errors = findings.filter((f) => f.severity === 'error').length;
      if (format === 'text') console.log(`mesh lint: ${errors} error(s), ${findings.filter((f) => f.severity === 'warning').length} warning(s), ${findings.filter((f) => f.severity === 'info').length} info`);
      return errors ? 1 : 0;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`cdk8s-mesh: unknown command ${JSON.stringify(command)}\n${USAGE}`);
      return 2;
  }
}
