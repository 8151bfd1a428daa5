// The cdk8s app (`cdk8s synth`, `npm run synth`): every scenario chart, one file each in dist/.
import { App } from 'cdk8s';
import { CHARTS } from '../charts';
import { runSynth } from './run';

process.exitCode = runSynth(() => {
  const app = new App();
  for (const chart of CHARTS) chart.create(app, chart.name);
  app.synth();
});
