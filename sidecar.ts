// cdk8s-mesh/sidecar: the route table the node-sidecar renderer writes and the proxy reads.
export * from './model/route-table';
