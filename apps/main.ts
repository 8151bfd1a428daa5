// The cdk8s app (`cdk8s synth`, `npm run synth`): every scenario chart on both data planes,
// one file each in dist/ (`<chart>.k8s.yaml`, `<chart>-node-sidecar.k8s.yaml`, `<chart>-gateway-api.k8s.yaml`).
import { App } from 'cdk8s';
import { CHART_VARIANTS, createVariant } from '../charts';
import { lintBeforeWrite, runSynth } from './run';

process.exitCode = runSynth(() => {
  const app = new App();
  for (const v of CHART_VARIANTS) createVariant(app, v);
  lintBeforeWrite(app);
  app.synth();
});
