import { Construct } from 'constructs';
import { Check, GatewayServer, HttpRule } from '../model';
import { MeshGateway } from './mesh-gateway';
import { TrafficRoute } from './traffic-route';
import { refuseUnknownProps } from './known-props';

/** The plain HTTP server of an IngressGateway. */
export interface IngressHttpOptions {
  /** The port the gateway listens on. @default 80 */
  readonly port?: number;
  /** Answer every request with a 301 to https. @default false */
  readonly httpsRedirect?: boolean;
}

/** The HTTPS server of an IngressGateway: TLS terminated at the gateway (mode SIMPLE). */
export interface IngressHttpsOptions {
  /** The port the gateway listens on. @default 443 */
  readonly port?: number;
  /** The TLS Secret (in the gateway's namespace) holding the certificate and key. */
  readonly credentialName: string;
}

/** A gateway and the route bound to it, in one construct. */
export interface IngressGatewayProps {
  /** The Gateway's name. */
  readonly name: string;
  /** The VirtualService's name. @default `${name}-vs` */
  readonly routeName?: string;
  /** The namespace of the Gateway and its route. @default - the chart's namespace */
  readonly namespace?: string;
  /** Ingress gateway pod labels. @default { istio: "ingressgateway" } (Helm installs: { istio: "ingress" }) */
  readonly selector?: Readonly<Record<string, string>>;
  /** Hosts the gateway accepts and the routes apply to. @default ["*"] */
  readonly hosts?: string[];
  /**
   * The plain HTTP server; `httpsRedirect` answers it with a 301 to https.
   * `false` for an HTTPS-only gateway (`true`: the default server).
   * @default { port: 80 }
   */
  readonly http?: IngressHttpOptions | boolean;
  /** An HTTPS server terminating TLS (mode SIMPLE) with the TLS Secret `credentialName`. @default - none */
  readonly https?: IngressHttpsOptions;
  /** The routes, in order, as the traffic model writes them (matches, destinations, timeouts, ...). */
  readonly routes: HttpRule[];
}

/**
 * An ingress: a Gateway and the VirtualService bound to it, written once.
 * (Istio: Gateway + VirtualService with `gateways: [name]`.)
 */
export class IngressGateway extends Construct {
  readonly gateway: MeshGateway;
  readonly route: TrafficRoute;

  constructor(scope: Construct, id: string, props: IngressGatewayProps) {
    super(scope, id);
    const check: Check = new Check(this.node.path);
    check.shape('', props, { name: 'string', routeName: 'string?', namespace: 'string?', selector: 'stringMap?', hosts: 'strings?', https: 'object?', routes: 'array' });
    // Keys the props interface does not declare are refused (JavaScript has no compiler to); a subclass may add its own.
    if (new.target === IngressGateway) refuseUnknownProps(this.node.path, 'IngressGatewayProps', props);
    if (props.http !== undefined && typeof props.http !== 'boolean') check.shape('http', props.http, { port: 'number?', httpsRedirect: 'boolean?' });
    const hosts = props.hosts ?? ['*'];
    const servers: GatewayServer[] = [];
    if (props.http !== false) {
      const http = typeof props.http === 'object' ? props.http : {};
      servers.push({ port: http.port ?? 80, protocol: 'HTTP', name: 'http', hosts, httpsRedirect: http.httpsRedirect });
    }
    if (props.https) {
      check.object('https', props.https);
      servers.push({ port: props.https.port ?? 443, protocol: 'HTTPS', name: 'https', hosts, tls: { mode: 'SIMPLE', credentialName: props.https.credentialName } });
    }
    if (servers.length === 0) check.fail('http', props.http, 'an HTTP server, an HTTPS server or both (a gateway needs a listener)');
    this.gateway = new MeshGateway(this, 'gateway', { name: props.name, namespace: props.namespace, selector: props.selector, servers });
    this.route = new TrafficRoute(this, 'route', {
      name: props.routeName ?? `${props.name}-vs`,
      namespace: props.namespace,
      hosts,
      gateways: [this.gateway.refFrom(props.namespace)],
      http: props.routes,
    });
  }
}
