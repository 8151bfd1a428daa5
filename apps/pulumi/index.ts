// `pulumi up` entry point: the stack config picks charts, data plane and namespaces.
import * as pulumi from '@pulumi/pulumi';
import { deploy, outputs } from './program';

const config = new pulumi.Config('cdk8s-mesh');
const deployment = deploy({
  charts: config.getObject<string[]>('charts'),
  dataPlane: config.get('dataPlane'),
  namespaces: config.getObject<Record<string, string>>('namespaces'),
  renderYamlTo: config.get('renderYamlTo'),
  module: config.get('module'),
});

export const { services, virtualServices } = outputs(deployment);
