// The chart's YAML as a snapshot (review it in pull requests) and mesh lint on it.
import { App, Testing } from 'cdk8s';
import { DataPlane, lintApp } from 'cdk8s-mesh';
import { AppChart } from './chart';

test('the chart synthesizes the reviewed YAML', () => {
  expect(Testing.synth(new AppChart(Testing.app(), '{{name}}', { dataPlane: DataPlane.{{DATA_PLANE}} }))).toMatchSnapshot();
});

test('mesh lint finds no errors or warnings', () => {
  const app = new App({ outdir: 'dist' });
  new AppChart(app, '{{name}}', { dataPlane: DataPlane.{{DATA_PLANE}} });
  expect(lintApp(app).filter((f) => f.severity !== 'info')).toEqual([]);
});
