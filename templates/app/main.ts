// The cdk8s app: `npm run synth` (cdk8s-mesh synth) writes dist/{{name}}.k8s.yaml; plain `cdk8s synth` works too, without mesh lint.
import { App } from 'cdk8s';
import { DataPlane } from 'cdk8s-mesh';
import { AppChart } from './chart';

const app = new App();
new AppChart(app, '{{name}}', { dataPlane: DataPlane.{{DATA_PLANE}} });
app.synth();
