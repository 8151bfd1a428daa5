import { Construct } from 'constructs';
import { CanaryRelease, IngressGateway, MeshChart, MeshChartProps, MeshNamespace, MeshWorkload } from 'cdk8s-mesh';

/**
 * {{name}}: a web front end calling an API released as a canary (90/10, testers pinned
 * to the canary by a header), both behind an ingress gateway that applies the same split.
 */
export class AppChart extends MeshChart {
  // Fields, so that other files of the app can add to them (rules, hosts, callees) before synth.
  readonly api: CanaryRelease;
  readonly web: MeshWorkload;
  readonly edge: IngressGateway;

  constructor(scope: Construct, id: string, props: MeshChartProps = {}) {
    super(scope, id, props);
    const ns = new MeshNamespace(this, 'ns', { name: '{{name}}' });
    this.api = new CanaryRelease(this, 'api', {
      app: 'api', port: 8080, namespace: ns,
      stable: { version: 'v1', image: 'ghcr.io/example/api:1.0.0' },
      canary: { version: 'v2', image: 'ghcr.io/example/api:1.1.0' },
      canaryWeight: 10,
      canaryHeader: { name: 'x-canary', match: { exact: 'always' } },
      timeout: '3s',
      {{RETRIES}}
    });
    this.web = new MeshWorkload(this, 'web', { app: 'web', image: 'ghcr.io/example/web:1.0.0', port: 8080, namespace: ns, calls: [this.api] });
    this.edge = new IngressGateway(this, 'edge', {
      name: '{{name}}-gateway', namespace: '{{name}}', hosts: ['{{name}}.example.com'],
      routes: [
        ...this.api.rulesFor({ match: [{ uri: { prefix: '/api' } }] }),
        { route: [{ to: this.web }] },
      ],
    });
  }
}
