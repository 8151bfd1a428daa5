// cdk8s-mesh/pulumi: deploy any cdk8s(-mesh) chart with `pulumi up` (needs the optional
// peers @pulumi/pulumi and @pulumi/kubernetes).
export * from './apps/pulumi/mesh-chart-resource';
export { checkConfig, deploy, outputs } from './apps/pulumi/program';
export type { DeployConfig, Deployment } from './apps/pulumi/program';
