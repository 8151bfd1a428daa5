// The cdk8s app: `npx cdk8s synth` writes dist/{{name}}.k8s.yaml.
import { App } from 'cdk8s';
import { DataPlane } from 'cdk8s-mesh';
import { AppChart } from './chart';

const app = new App();
new AppChart(app, '{{name}}', { dataPlane: DataPlane.{{DATA_PLANE}} });
app.synth();
