import { Construct } from 'constructs';
import { MeshChart, MeshChartProps, MeshGateway, MeshWorkload, TrafficRoute } from '../constructs';
import { IMAGES } from './images';

export interface DemoGatewayChartProps extends MeshChartProps {
  readonly images?: { readonly nginx?: string };
  /** @default { istio: "ingressgateway" } */
  readonly gatewaySelector?: Readonly<Record<string, string>>;
}

/**
 * nginx behind `demo-svc:80` (targetPort by the container port's name `http-web-svc`),
 * let in through Gateway `demo-gateway` on port 80 for any host, with an exact `/` match.
 */
export class DemoGatewayChart extends MeshChart {
  readonly web: MeshWorkload;
  readonly gateway: MeshGateway;
  readonly route: TrafficRoute;

  constructor(scope: Construct, id: string, props: DemoGatewayChartProps = {}) {
    super(scope, id, props);
    this.web = new MeshWorkload(this, 'nginx', {
      app: 'demo',
      deploymentName: 'nginx',
      serviceName: 'demo-svc',
      image: props.images?.nginx ?? IMAGES.nginx,
      port: 8080,
      portName: 'http-web-svc',
      servicePort: 80,
      targetPortByName: true,
      // The unprivileged nginx image runs as UID 101 and keeps its pid and temp files in /tmp.
      security: { user: 101, group: 101 },
      writablePaths: ['/tmp'],
    });
    this.gateway = new MeshGateway(this, 'gateway', {
      name: 'demo-gateway',
      selector: props.gatewaySelector,
      servers: [{ port: 80, protocol: 'HTTP', name: 'http', hosts: ['*'] }],
    });
    this.route = new TrafficRoute(this, 'route', {
      name: 'demoinfo',
      hosts: ['*'],
      gateways: [this.gateway.refFrom(undefined)],
      http: [{ match: [{ uri: { exact: '/' } }], route: [{ to: this.web, port: 80 }] }],
    });
  }
}
