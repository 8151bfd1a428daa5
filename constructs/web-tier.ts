import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { Check, checkDns1123Label, checkLabelValue, ServiceRef } from '../model';
import { MeshNamespace } from './mesh-namespace';
import { MeshWorkload, MeshWorkloadOptions } from './mesh-workload';
import { TrafficRoute } from './traffic-route';
import { refuseUnknownProps } from './known-props';

/** One backend of a WebTier: a workload with its own Service, and its traffic share. */
export interface WebBackendProps extends MeshWorkloadOptions {
  /** Container port the backend serves on. */
  readonly port: number;
  /** Percent of the front host's traffic (all backends or none must have one). @default - no weighted split */
  readonly weight?: number;
}

/** WebTier's client: a workload in the tier's namespace, with or without a port. */
export interface WebClientProps extends MeshWorkloadOptions {
  /** Container port. @default - none: a client only */
  readonly port?: number;
}

/** WebTier's front Service, and the route that splits its host. */
export interface WebFrontOptions {
  /** The front Service's name: the host clients call. */
  readonly serviceName: string;
  /** The front Service's port. @default - the first backend's Service port */
  readonly port?: number;
  /** Name of the route (Istio: VirtualService). @default `${serviceName}-vs` */
  readonly routeName?: string;
}

/** One label, as a key and a value. */
export interface LabelPair {
  readonly key: string;
  readonly value: string;
}

/** Web backends behind one front Service, with an optional client and weighted split. */
export interface WebTierProps {
  /** The backends, each a Deployment with its own Service. At least one. */
  readonly backends: WebBackendProps[];
  /**
   * One Service in front of all backends (plain Kubernetes round robin), and, when
   * the backends carry weights, the route that splits its host by weight.
   * @default - no front Service
   */
  readonly front?: WebFrontOptions;
  /** A client workload (e.g. busybox) that calls the tier. @default - none */
  readonly client?: WebClientProps;
  /** The label every backend pod carries and the front Service selects. @default { tier: "web" } */
  readonly tierLabel?: LabelPair;
  /** The namespace of every workload of the tier: a MeshNamespace the chart owns, or a name. @default - the chart's namespace */
  readonly namespace?: MeshNamespace | string;
  /**
   * Backends and client in the mesh. A weighted split only acts at the client's
   * proxy, so weights require it.
   * @default true
   */
  readonly mesh?: boolean;
}

/**
 * Several web backends behind one front Service, with an optional client and an
 * optional weighted split of the front host across the backends' Services.
 */
export class WebTier extends Construct {
  readonly backends: MeshWorkload[];
  readonly client?: MeshWorkload;
  readonly frontService?: k8s.KubeService;
  /** The front Service as a route destination or host. */
  readonly front?: ServiceRef;
  readonly route?: TrafficRoute;

  constructor(scope: Construct, id: string, props: WebTierProps) {
    super(scope, id);
    const check: Check = new Check(this.node.path);
    check.shape('', props, { backends: 'array', front: 'object?', client: 'object?', tierLabel: 'object?', mesh: 'boolean?' });
    // Keys the props interface does not declare are refused (JavaScript has no compiler to); a subclass may add its own.
    if (new.target === WebTier) refuseUnknownProps(this.node.path, 'WebTierProps', props);
    check.array('backends', props.backends, 1);
    props.backends.forEach((b, i) => check.shape(`backends[${i}]`, b, { app: 'string', weight: 'number?', podLabels: 'stringMap?' }));
    if (props.client) check.shape('client', props.client, { calls: 'array?' });
    if (props.front) check.shape('front', props.front, { serviceName: 'string', port: 'number?', routeName: 'string?' });
    const mesh = props.mesh ?? true;
    const tier = props.tierLabel ?? { key: 'tier', value: 'web' };
    check.shape('tierLabel', tier, { key: 'string', value: 'string' });
    checkLabelValue(check, 'tierLabel.value', tier.value);
    const weighted = props.backends.filter((b) => b.weight !== undefined).length;
    if (weighted > 0 && weighted < props.backends.length) {
      const missing = props.backends.findIndex((b) => b.weight === undefined);
      check.fail(`backends[${missing}].weight`, undefined, 'a weight on every backend (or on none)');
    }
    if (weighted > 0 && !props.front) check.fail('front', undefined, 'a front Service whose host the weights split');
    if (weighted > 0 && !mesh) check.fail('mesh', mesh, 'true when backends have weights (the split happens at the client\'s proxy; outside the mesh it is silently ignored)');
    const apps = new Set<string>();
    props.backends.forEach((b, i) => {
      if (apps.has(b.app)) check.fail(`backends[${i}].app`, b.app, 'an app name not used by another backend');
      apps.add(b.app);
    });

    this.backends = props.backends.map((b) => {
      const { weight: _weight, ...workload } = b;
      return new MeshWorkload(this, b.app, {
        ...workload,
        namespace: props.namespace,
        mesh,
        podLabels: { ...b.podLabels, [tier.key]: tier.value },
      });
    });

    if (props.client) {
      this.client = new MeshWorkload(this, 'client', { ...props.client, namespace: props.namespace, mesh, calls: [
        ...(props.client.calls ?? []),
        ...(props.front ? [{ serviceName: props.front.serviceName, serviceNamespace: this.backends[0].namespace }] : []),
        ...this.backends.filter((b) => b.service),
      ],
      });
    }

    if (props.front) {
      checkDns1123Label(check, 'front.serviceName', props.front.serviceName);
      const portNames = new Set(this.backends.map((b) => b.portName));
      const containerPorts = new Set(props.backends.map((b) => b.port));
      if (containerPorts.size > 1 && portNames.size > 1) {
        check.fail('backends[].portName', [...portNames], 'one port name shared by all backends when their container ports differ (the front Service targets it by name)');
      }
      const port = props.front.port ?? this.backends[0].servicePorts![0];
      check.port('front.port', port);
      const namespace = this.backends[0].namespace;
      const portName = this.backends[0].portName!;
      // Selects the tier label every backend pod carries: plain round robin without a mesh.
      this.frontService = new k8s.KubeService(this, 'front', {
        metadata: { name: props.front.serviceName, namespace },
        spec: {
          type: 'ClusterIP',
          selector: { [tier.key]: tier.value },
          ports: [{
            name: portName,
            port,
            // Backends on different container ports are reached through their shared port name.
            targetPort: containerPorts.size > 1 ? k8s.IntOrString.fromString(portName) : k8s.IntOrString.fromNumber(props.backends[0].port),
            protocol: 'TCP',
          }],
        },
      });
      this.front = { serviceName: props.front.serviceName, serviceNamespace: namespace, servicePorts: [port] };

      if (weighted > 0) {
        this.route = new TrafficRoute(this, 'route', {
          name: props.front.routeName ?? `${props.front.serviceName}-vs`,
          namespace,
          hosts: [this.front],
          http: [{ route: this.backends.map((b, i) => ({ to: b, weight: props.backends[i].weight })) }],
        });
      }
    }
  }
}
