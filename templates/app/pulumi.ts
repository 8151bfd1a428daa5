// `pulumi up`: the same chart through @pulumi/kubernetes (the cluster from your kubeconfig).
import { DataPlane } from 'cdk8s-mesh';
import { MeshChartResource } from 'cdk8s-mesh/pulumi';
import { AppChart } from './chart';

export const chart = new MeshChartResource('{{name}}', {
  chart: (app) => new AppChart(app, '{{name}}', { dataPlane: DataPlane.{{DATA_PLANE}} }),
});
export const services = chart.services;
