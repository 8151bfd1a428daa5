import * as kplus from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { Check, HttpRule, IServiceRef, ServiceRef } from '../model';
import { DestinationPolicy } from './destination-policy';
import { IngressGateway, IngressHttpsOptions } from './ingress-gateway';
import { MeshNamespace } from './mesh-namespace';
import { MeshWorkload, MeshWorkloadProps } from './mesh-workload';
import { TrafficRoute } from './traffic-route';
import { refuseUnknownProps } from './known-props';

/**
 * The traffic scenarios of Istio's Bookinfo tasks (samples/bookinfo/networking).
 * Each names the state after the task's steps: the fault-injection scenarios keep
 * the request-routing step they start from (jason to reviews v2, everyone else v1).
 */
export const BOOKINFO_SCENARIOS = {
  /** virtual-service-all-v1: every service to v1. */
  'all-v1': 'every service to its v1',
  /** virtual-service-reviews-80-20 */
  'reviews-80-20': 'reviews v1 80% / v2 20%',
  /** virtual-service-reviews-50-v3 */
  'reviews-50-v3': 'reviews v1 50% / v3 50%',
  /** virtual-service-reviews-v3 */
  'reviews-v3': 'reviews all to v3',
  /** virtual-service-reviews-test-v2 */
  'jason-v2': 'end-user: jason to reviews v2, everyone else v1',
  /** virtual-service-reviews-jason-v2-v3 */
  'jason-v2-else-v3': 'end-user: jason to reviews v2, everyone else v3',
  /** virtual-service-ratings-test-delay (after reviews-test-v2) */
  'ratings-delay-jason': 'ratings delayed 7s for jason (reviews: jason to v2)',
  /** virtual-service-ratings-test-abort (after reviews-test-v2) */
  'ratings-abort-jason': 'ratings aborted with HTTP 500 for jason (reviews: jason to v2)',
} as const;
export type BookinfoScenario = keyof typeof BOOKINFO_SCENARIOS;

/** Bookinfo's images: `<registry>/examples-bookinfo-<service>-<version>:<tag>`. */
export const BOOKINFO_IMAGES = { registry: 'docker.io/istio', tag: '1.20.3' } as const;
/** The five productpage paths of bookinfo-gateway.yaml. */
export const BOOKINFO_INGRESS_MATCHES: HttpRule['match'] = [
  { uri: { exact: '/productpage' } },
  { uri: { prefix: '/static' } },
  { uri: { exact: '/login' } },
  { uri: { exact: '/logout' } },
  { uri: { prefix: '/api/v1/products' } },
];
const PORT = 9080;

/** Where Bookinfo's images come from. */
export interface BookinfoImages {
  /** @default BOOKINFO_IMAGES.registry (upstream's) */
  readonly registry?: string;
  /** @default BOOKINFO_IMAGES.tag */
  readonly tag?: string;
}

/** Bookinfo's four services, as route hosts and destinations. */
export interface BookinfoServices {
  readonly productpage: IServiceRef;
  readonly details: IServiceRef;
  readonly ratings: IServiceRef;
  readonly reviews: IServiceRef;
}

/** Istio's Bookinfo sample: namespace, images, traffic scenario, rules and gateway. */
export interface BookinfoAppProps {
  /** A MeshNamespace the chart owns, or the name of one. @default - the chart's namespace */
  readonly namespace?: MeshNamespace | string;
  /** Image registry and tag. @default BOOKINFO_IMAGES (upstream's) */
  readonly images?: BookinfoImages;
  /** The routing rules in force. `none`: no VirtualServices (Kubernetes round robin). @default "all-v1" */
  readonly scenario?: BookinfoScenario | 'none';
  /** DestinationRules (destination-rule-all). Routes to subsets need them. @default true */
  readonly destinationRules?: boolean;
  /**
   * Every subset of upstream's destination-rule-all, also those of versions Bookinfo does
   * not deploy (details v2, ratings v2, v2-mysql, v2-mysql-vm). They select no pod, which
   * mesh lint reports (MESH005, istioctl IST0173). `false`: the deployed versions only.
   * @default false
   */
  readonly upstreamSubsets?: boolean;
  /** Mutual TLS to every service (destination-rule-all-mtls: ISTIO_MUTUAL). @default false */
  readonly mutualTls?: boolean;
  /**
   * The ingress: bookinfo-gateway with the five productpage matches. Upstream listens on
   * 8080 (current Istio gateways run unprivileged). `false`: none; `true`: the default.
   * @default { port: 8080, hosts: ["*"] }
   */
  readonly gateway?: BookinfoGatewayOptions | boolean;
}

/** BookinfoApp's ingress: bookinfo-gateway's server and hosts. */
export interface BookinfoGatewayOptions {
  /** Ingress gateway pod labels. @default { istio: "ingressgateway" } */
  readonly selector?: { [key: string]: string };
  /** Hosts the gateway accepts. @default ["*"] */
  readonly hosts?: string[];
  /** An HTTPS server as well. @default - none */
  readonly https?: IngressHttpsOptions;
  /** The plain HTTP server's port. @default 8080 */
  readonly port?: number;
  /** Answer plain HTTP with a 301 to https. @default false */
  readonly httpsRedirect?: boolean;
}

interface BookinfoService {
  readonly name: 'productpage' | 'details' | 'ratings' | 'reviews';
  readonly versions: readonly string[];
  readonly subsets: readonly string[];
}
const SERVICES: readonly BookinfoService[] = [
  { name: 'details', versions: ['v1'], subsets: ['v1', 'v2'] },
  { name: 'ratings', versions: ['v1'], subsets: ['v1', 'v2', 'v2-mysql', 'v2-mysql-vm'] },
  { name: 'reviews', versions: ['v1', 'v2', 'v3'], subsets: ['v1', 'v2', 'v3'] },
  { name: 'productpage', versions: ['v1'], subsets: ['v1'] },
];

/**
 * Istio's Bookinfo sample (samples/bookinfo/platform/kube/bookinfo.yaml): Services
 * `details`, `ratings`, `reviews`, `productpage` on 9080 (`http`), ServiceAccounts
 * `bookinfo-<service>`, Deployments `<service>-<version>`; with the sample's
 * DestinationRules, a traffic scenario and its ingress gateway.
 */
export class BookinfoApp extends Construct {
  /** Each service, as routes and policies refer to it (with its subsets). */
  readonly services: BookinfoServices;
  readonly workloads: Readonly<Record<string, MeshWorkload>>;
  readonly ingress?: IngressGateway;
  readonly scenario: BookinfoScenario | 'none';

  constructor(scope: Construct, id: string, props: BookinfoAppProps = {}) {
    super(scope, id);
    const check: Check = new Check(this.node.path);
    check.shape('', props, { images: 'object?', destinationRules: 'boolean?', upstreamSubsets: 'boolean?', mutualTls: 'boolean?' });
    // Keys the props interface does not declare are refused (JavaScript has no compiler to); a subclass may add its own.
    if (new.target === BookinfoApp) refuseUnknownProps(this.node.path, 'BookinfoAppProps', props);
    if (props.gateway !== undefined && typeof props.gateway !== 'boolean') {
      check.shape('gateway', props.gateway, { selector: 'stringMap?', hosts: 'strings?', https: 'object?', port: 'number?', httpsRedirect: 'boolean?' });
    }
    if (props.namespace !== undefined && !(props.namespace instanceof MeshNamespace) && typeof props.namespace !== 'string') {
      check.fail('namespace', props.namespace, 'a namespace name or a MeshNamespace');
    }
    const scenario = props.scenario ?? 'all-v1';
    check.oneOf<BookinfoScenario | 'none'>('scenario', scenario, [...(Object.keys(BOOKINFO_SCENARIOS) as BookinfoScenario[]), 'none']);
    this.scenario = scenario;
    const registry = props.images?.registry ?? BOOKINFO_IMAGES.registry;
    const tag = props.images?.tag ?? BOOKINFO_IMAGES.tag;
    check.nonEmptyString('images.registry', registry);
    check.nonEmptyString('images.tag', tag);
    const withRules = props.destinationRules ?? true;
    if (!withRules && scenario !== 'none') check.fail('destinationRules', false, `true for scenario "${scenario}" (its routes name subsets)`);
    const namespace = props.namespace instanceof MeshNamespace ? props.namespace.name : props.namespace;

    const workloads: Record<string, MeshWorkload> = {};
    const services = {} as Record<BookinfoService['name'], ServiceRef>;
    for (const svc of SERVICES) {
      const account = new kplus.ServiceAccount(this, `${svc.name}-account`, {
        metadata: { name: `bookinfo-${svc.name}`, namespace, labels: { account: svc.name } },
      });
      svc.versions.forEach((version, i) => {
        workloads[`${svc.name}-${version}`] = new MeshWorkload(this, `${svc.name}-${version}`, {
          app: svc.name,
          version,
          deploymentName: `${svc.name}-${version}`,
          image: `${registry}/examples-bookinfo-${svc.name}-${version}:${tag}`,
          port: PORT,
          service: i === 0,
          serviceLabels: { service: svc.name },
          namespace: props.namespace,
          serviceAccount: account,
          // The images run as UID 1000 (as upstream's manifests once said) and write only where upstream mounts emptyDirs.
          security: { user: 1000, group: 1000 },
          // Bookinfo's call graph (services are made callee first): productpage calls
          // details and reviews, reviews v2 and v3 call ratings.
          calls: svc.name === 'productpage' ? [services.details, services.reviews]
            : svc.name === 'reviews' && version !== 'v1' ? [services.ratings] : undefined,
          ...imageSpecifics(svc.name),
        });
      });
      const subsets = props.upstreamSubsets ? svc.subsets : svc.versions;
      services[svc.name] = {
        serviceName: svc.name,
        serviceNamespace: namespace,
        servicePorts: [PORT],
        subsetNames: withRules ? [...subsets] : [],
      };
      if (withRules) {
        new DestinationPolicy(this, `${svc.name}-rule`, {
          name: svc.name,
          service: services[svc.name],
          namespace,
          subsets: subsets.map((name) => ({ name })),
          trafficPolicy: props.mutualTls ? { tls: 'ISTIO_MUTUAL' } : undefined,
        });
      }
    }
    this.services = services;
    this.workloads = workloads;

    if (scenario !== 'none') {
      for (const [name, http] of Object.entries(scenarioRoutes(scenario, services))) {
        new TrafficRoute(this, `${name}-route`, { name, namespace, hosts: [services[name as BookinfoService['name']]], http });
      }
    }

    if (props.gateway !== false) {
      const g = typeof props.gateway === 'object' ? props.gateway : {};
      this.ingress = new IngressGateway(this, 'ingress', {
        name: 'bookinfo-gateway',
        routeName: 'bookinfo',
        namespace,
        selector: g.selector,
        hosts: g.hosts,
        http: { port: g.port ?? 8080, httpsRedirect: g.httpsRedirect },
        https: g.https,
        routes: [{ match: BOOKINFO_INGRESS_MATCHES, route: [{ to: services.productpage, port: PORT }] }],
      });
    }
  }
}

function imageSpecifics(service: BookinfoService['name']): Partial<MeshWorkloadProps> {
  switch (service) {
    case 'reviews':
      // WebSphere Liberty: logs under /tmp/logs, its output dir writable, and a JVM's memory.
      return {
        env: { LOG_DIR: '/tmp/logs' },
        emptyDirs: [{ name: 'tmp', mountPath: '/tmp' }, { name: 'wlp-output', mountPath: '/opt/ibm/wlp/output' }],
        resources: { cpuMillis: { request: 100, limit: 1000 }, memoryMiB: { request: 256, limit: 1024 } },
        startupSeconds: 120,
      };
    case 'productpage':
      return {
        emptyDirs: [{ name: 'tmp', mountPath: '/tmp' }],
        podAnnotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(PORT), 'prometheus.io/path': '/metrics' },
      };
    default:
      return {};
  }
}

function scenarioRoutes(scenario: BookinfoScenario, s: Record<BookinfoService['name'], ServiceRef>): Record<BookinfoService['name'], HttpRule[]> {
  const to = (svc: ServiceRef, subset: string, weight?: number) => ({ to: svc, subset, weight });
  const only = (svc: ServiceRef, subset: string): HttpRule[] => [{ route: [to(svc, subset)] }];
  const jason = [{ headers: { 'end-user': { exact: 'jason' } } }];
  const routes: Record<BookinfoService['name'], HttpRule[]> = {
    productpage: only(s.productpage, 'v1'),
    reviews: only(s.reviews, 'v1'),
    ratings: only(s.ratings, 'v1'),
    details: only(s.details, 'v1'),
  };
  switch (scenario) {
    case 'all-v1': break;
    case 'reviews-80-20': routes.reviews = [{ route: [to(s.reviews, 'v1', 80), to(s.reviews, 'v2', 20)] }]; break;
    case 'reviews-50-v3': routes.reviews = [{ route: [to(s.reviews, 'v1', 50), to(s.reviews, 'v3', 50)] }]; break;
    case 'reviews-v3': routes.reviews = only(s.reviews, 'v3'); break;
    case 'jason-v2': routes.reviews = [{ match: jason, route: [to(s.reviews, 'v2')] }, { route: [to(s.reviews, 'v1')] }]; break;
    case 'jason-v2-else-v3': routes.reviews = [{ match: jason, route: [to(s.reviews, 'v2')] }, { route: [to(s.reviews, 'v3')] }]; break;
    case 'ratings-delay-jason':
    case 'ratings-abort-jason':
      routes.reviews = [{ match: jason, route: [to(s.reviews, 'v2')] }, { route: [to(s.reviews, 'v1')] }];
      routes.ratings = [
        {
          match: jason,
          fault: scenario === 'ratings-delay-jason'
            ? { delay: { fixedDelay: '7s', percentage: 100 } }
            : { abort: { httpStatus: 500, percentage: 100 } },
          route: [to(s.ratings, 'v1')],
        },
        { route: [to(s.ratings, 'v1')] },
      ];
      break;
  }
  return routes;
}
