import { App } from 'cdk8s';
import { CHART_VARIANTS, createVariant } from '../charts';
import { runSynth } from './run';

const USAGE = `usage: cdk8s-mesh <command>

commands:
  charts              list the charts the app synthesizes
  synth [--out DIR] [CHART...]
                      synthesize charts (all by default) to DIR (default dist/)
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
        app.synth();
        written = app.charts.length;
      });
      if (status !== 0) return status;
      console.log(`wrote ${written} chart(s) to ${outdir}/`);
      return 0;
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
