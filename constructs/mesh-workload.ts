import { ApiObject, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import {
  CALLS_ANNOTATION, Check, checkDns1123Label, checkServiceRef, checkLabelValue, hasProtocolPrefix, hostFor, PORT_NAME_PROTOCOLS, PROXY_RESERVED_PORTS, PROXY_UID,
  ServiceRef,
} from '../model';
import { rendererOf } from './mesh';
import { MeshNamespace } from './mesh-namespace';
import { canonicalMemory, containerResources, omitServerDefaults, restrictedContainer } from './server-form';
import { refuseUnknownProps } from './known-props';

// Defined in model/conventions.ts (lint checks the same rules); re-exported for construct users.
export { PORT_NAME_PROTOCOLS, PROXY_RESERVED_PORTS, PROXY_UID } from '../model';

/** The pod's and containers' security context; the defaults are the secure ones. */
export interface WorkloadSecurity {
  /** UID the containers run as. @default 25000 */
  readonly user?: number;
  /** GID (also the pod's fsGroup, so mounted volumes are writable). @default 26000 */
  readonly group?: number;
  /** Mount the containers' root filesystem read-only (give writablePaths or emptyDirs for what the image writes). @default true */
  readonly readOnlyRootFilesystem?: boolean;
}

/** CPU and memory requests and limits of the app container. */
export interface WorkloadResources {
  /** CPU request and limit in millicores. @default { request: 50, limit: 500 } */
  readonly cpuMillis?: ResourceRange;
  /** Memory request and limit in MiB. @default { request: 64, limit: 256 } */
  readonly memoryMiB?: ResourceRange;
}

/** A container resource's request and limit, in the unit its prop names. */
export interface ResourceRange {
  readonly request: number;
  readonly limit: number;
}

/** A named emptyDir volume and where the app container mounts it. */
export interface EmptyDirMount {
  readonly name: string;
  readonly mountPath: string;
}

/**
 * A workload's pods, container and Service details: what every version of an app sets for
 * itself (CanaryRelease's versions take these).
 */
export interface WorkloadOptions {
  /** Container image. */
  readonly image: string;
  /** The container's command (replaces the image's entrypoint). @default - the image's entrypoint */
  readonly command?: string[];
  /** The container's arguments. @default - the image's arguments */
  readonly args?: string[];
  /** Environment variables of the app container. @default - none */
  readonly env?: { [key: string]: string };
  /** Service `appProtocol`, for port names that carry no protocol prefix. @default - none */
  readonly appProtocol?: string;
  /**
   * The Service's `targetPort` refers to the container port by name (instead of number).
   * @default false
   */
  readonly targetPortByName?: boolean;
  /** Labels the Service selects. @default { app } */
  readonly serviceSelector?: { [key: string]: string };
  /** The Deployment's name. @default - the `app` label */
  readonly deploymentName?: string;
  /** Pod replicas. @default 1 */
  readonly replicas?: number;
  /** Extra pod labels. @default - none */
  readonly podLabels?: { [key: string]: string };
  /** Extra pod annotations. @default - none */
  readonly podAnnotations?: { [key: string]: string };
  /** UID, GID and root filesystem of the pods. @default - non-root UID 25000, GID 26000, read-only root filesystem */
  readonly security?: WorkloadSecurity;
  /** CPU and memory requests and limits. @default - see WorkloadResources */
  readonly resources?: WorkloadResources;
  /** Paths that get a writable emptyDir (for images that write files). @default - none */
  readonly writablePaths?: string[];
  /** Named emptyDir volumes and where they are mounted (when the volume names matter). @default - none */
  readonly emptyDirs?: EmptyDirMount[];
  /** The pods' ServiceAccount. @default - the namespace's default account (no token mounted) */
  readonly serviceAccount?: kplus.IServiceAccount;
  /** Extra labels on the Service. @default - { app } only */
  readonly serviceLabels?: { [key: string]: string };
  /**
   * Services this workload calls. Recorded on the pods (annotation `mesh.cdk8s.io/calls`)
   * so that mesh lint can tell when a caller of routed hosts is outside the mesh.
   * @default - none recorded
   */
  readonly calls?: ServiceRef[];
  /** Seconds the app may take to start listening before the startup probe fails it. @default 30 */
  readonly startupSeconds?: number;
  /** When the kubelet pulls the image. @default IfNotPresent */
  readonly imagePullPolicy?: kplus.ImagePullPolicy;
}

/** A workload without its place: MeshWorkloadProps less `namespace`, `mesh` and `port` (WebTier's backends and client take these). */
export interface MeshWorkloadOptions extends WorkloadOptions {
  /** The `app` label: the service's identity in the mesh (telemetry, selectors). */
  readonly app: string;
  /** The `version` label (what DestinationRule subsets select). @default "v1" */
  readonly version?: string;
  /**
   * Name of the container port and of the Service port. Istio picks the protocol from
   * it: `http`, `http-<suffix>`, `grpc`, ... unless `appProtocol` is set.
   * @default "http"
   */
  readonly portName?: string;
  /** The Service port. @default - the container port */
  readonly servicePort?: number;
  /** Create the Service. @default true when `port` is set */
  readonly service?: boolean;
  /** The Service's name (metadata.name): the host routes and callers use. @default - the `app` label */
  readonly serviceName?: string;
}

/** A Deployment and (with a port) its Service, labelled app/version, in or out of the mesh. */
export interface MeshWorkloadProps extends MeshWorkloadOptions {
  /** Container port. Without it the workload is a client only and gets no Service. @default - none */
  readonly port?: number;
  /** A MeshNamespace the chart owns, or the name of one it does not. @default - the chart's namespace */
  readonly namespace?: MeshNamespace | string;
  /** In the mesh (gets a sidecar). @default true */
  readonly mesh?: boolean;
}

const DEFAULT_USER = 25000;
const DEFAULT_GROUP = 26000;

/** MeshWorkloadProps checked, with their defaults: what the constructor builds from. */
interface Settled {
  readonly version: string; readonly deploymentName: string; readonly replicas: number; readonly wantsService: boolean;
  readonly noService?: string; readonly portName: string; readonly serviceName: string; readonly user: number; readonly group: number;
  readonly cpu: ResourceRange; readonly mem: ResourceRange; readonly startupSeconds: number;
}

/** Check every prop (errors name `check.where`, the construct path) and settle the defaults. `exact`: refuse undeclared keys. */
function settle(check: Check, props: MeshWorkloadProps, exact: boolean): Settled {
  check.shape('', props, {
    app: 'string', version: 'string?', image: 'string', command: 'strings?', args: 'strings?', env: 'stringMap?',
    port: 'number?', portName: 'string?', servicePort: 'number?', appProtocol: 'string?', targetPortByName: 'boolean?',
    service: 'boolean?', serviceName: 'string?', serviceSelector: 'stringMap?', deploymentName: 'string?', replicas: 'number?',
    mesh: 'boolean?', podLabels: 'stringMap?', podAnnotations: 'stringMap?', security: 'object?', resources: 'object?',
    writablePaths: 'strings?', emptyDirs: 'array?', serviceLabels: 'stringMap?', calls: 'array?', startupSeconds: 'number?',
  });
  if (exact) refuseUnknownProps(check.where, 'MeshWorkloadProps', props);
  if (props.security) check.shape('security', props.security, { user: 'number?', group: 'number?', readOnlyRootFilesystem: 'boolean?' });
  if (props.resources) {
    check.shape('resources', props.resources, { cpuMillis: 'object?', memoryMiB: 'object?' });
    for (const k of ['cpuMillis', 'memoryMiB'] as const) if (props.resources[k]) check.shape(`resources.${k}`, props.resources[k], { request: 'number', limit: 'number' });
  }
  if (props.serviceSelector && Object.keys(props.serviceSelector).length === 0) check.fail('serviceSelector', props.serviceSelector, 'at least one label (an empty selector selects nothing)');
  (props.emptyDirs ?? []).forEach((v, i) => check.shape(`emptyDirs[${i}]`, v, { name: 'string', mountPath: 'string' }));
  (props.calls ?? []).forEach((c, i) => checkServiceRef(check, `calls[${i}]`, c));
  if (props.namespace !== undefined && !(props.namespace instanceof MeshNamespace) && typeof props.namespace !== 'string') {
    check.fail('namespace', props.namespace, 'a namespace name or a MeshNamespace');
  }
  if (props.imagePullPolicy !== undefined) check.oneOf('imagePullPolicy', props.imagePullPolicy, Object.values(kplus.ImagePullPolicy));
  if (props.serviceAccount !== undefined && (typeof props.serviceAccount !== 'object' || props.serviceAccount === null || typeof props.serviceAccount.name !== 'string')) {
    check.fail('serviceAccount', props.serviceAccount, 'a cdk8s-plus ServiceAccount (kplus.ServiceAccount or ServiceAccount.fromServiceAccountName)');
  }
  checkDns1123Label(check, 'app', props.app);
  const version = props.version ?? 'v1';
  checkLabelValue(check, 'version', version);
  check.nonEmptyString('image', props.image);
  if (/\s/.test(props.image)) check.fail('image', props.image, 'an image reference without spaces, e.g. "busybox:1.36"');
  const deploymentName = props.deploymentName ?? props.app;
  checkDns1123Label(check, 'deploymentName', deploymentName);
  const replicas = props.replicas ?? 1;
  check.integer('replicas', replicas, 0, 1000);
  if (props.port !== undefined) {
    check.port('port', props.port);
    if (props.port >= PROXY_RESERVED_PORTS.from && props.port <= PROXY_RESERVED_PORTS.to) {
      check.fail('port', props.port, `a port outside ${PROXY_RESERVED_PORTS.from}-${PROXY_RESERVED_PORTS.to} (reserved by the mesh proxy)`);
    }
  }
  const wantsService = props.service ?? props.port !== undefined;
  const noService = wantsService ? undefined : props.port === undefined
    ? `has no port, and without a port it has no Service (give ${props.app} its container port)`
    : 'has no Service (its service prop is false)';
  if (wantsService && props.port === undefined) check.fail('port', undefined, 'a container port when service is true');
  const portName = props.portName ?? 'http';
  // Container port names are IANA_SVC_NAMEs: at most 15 characters.
  if (typeof portName !== 'string' || portName.length > 15 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(portName) || !/[a-z]/.test(portName)) {
    check.fail('portName', portName, 'a port name of at most 15 lower-case letters, digits and "-" (IANA_SVC_NAME)');
  }
  if (props.appProtocol === undefined && !hasProtocolPrefix(portName)) {
    check.fail('portName', portName, `a name with a protocol prefix (${PORT_NAME_PROTOCOLS.map((p) => `"${p}"`).join(', ')}, optionally followed by "-suffix") or an appProtocol`);
  }
  if (props.servicePort !== undefined) check.port('servicePort', props.servicePort);
  const serviceName = props.serviceName ?? props.app;
  checkDns1123Label(check, 'serviceName', serviceName);
  const user = props.security?.user ?? DEFAULT_USER;
  const group = props.security?.group ?? DEFAULT_GROUP;
  check.integer('security.user', user, 1, 2147483647);
  if (user === PROXY_UID) check.fail('security.user', user, `a UID other than ${PROXY_UID} (the mesh proxy's UID: its traffic would bypass the proxy)`);
  check.integer('security.group', group, 0, 2147483647);
  const cpu = props.resources?.cpuMillis ?? { request: 50, limit: 500 };
  const mem = props.resources?.memoryMiB ?? { request: 64, limit: 256 };
  check.integer('resources.cpuMillis.request', cpu.request, 1, 1_000_000);
  check.integer('resources.cpuMillis.limit', cpu.limit, cpu.request, 1_000_000);
  check.integer('resources.memoryMiB.request', mem.request, 1, 10_000_000);
  check.integer('resources.memoryMiB.limit', mem.limit, mem.request, 10_000_000);
  const startupSeconds = props.startupSeconds ?? 30;
  check.integer('startupSeconds', startupSeconds, 1, 3600);
  for (const [field, map] of [['podLabels', props.podLabels], ['podAnnotations', props.podAnnotations]] as const) {
    for (const key of Object.keys(map ?? {})) {
      if (key.startsWith('sidecar.istio.io/inject') || key === 'sidecar.istio.io/status') {
        check.fail(`${field}.${key}`, map![key], 'no injection marker: set `mesh` and the data plane decides how to inject');
      }
    }
  }
  for (const [k, v] of Object.entries(props.podLabels ?? {})) checkLabelValue(check, `podLabels.${k}`, v);
  (props.writablePaths ?? []).forEach((p, i) => {
    if (typeof p !== 'string' || !p.startsWith('/')) check.fail(`writablePaths[${i}]`, p, 'an absolute path');
  });
  if (typeof props.namespace === 'string') checkDns1123Label(check, 'namespace', props.namespace);
  (props.emptyDirs ?? []).forEach((d, i) => {
    checkDns1123Label(check, `emptyDirs[${i}].name`, d.name);
    if (typeof d.mountPath !== 'string' || !d.mountPath.startsWith('/')) check.fail(`emptyDirs[${i}].mountPath`, d.mountPath, 'an absolute path');
  });
  return { version, deploymentName, replicas, wantsService, noService, portName, serviceName, user, group, cpu, mem, startupSeconds };
}

/**
 * A Deployment and its Service (cdk8s-plus-28) with `app`/`version` labels, an
 * Istio-conventional port name, explicit names and mesh membership. Secure by
 * default: non-root, no privilege escalation, all capabilities dropped,
 * RuntimeDefault seccomp, read-only root filesystem, requests and limits.
 */
export class MeshWorkload extends Construct implements ServiceRef {
  readonly app: string;
  readonly version: string;
  readonly inMesh: boolean;
  /** The owned namespace construct, if any (injection is then the namespace's). */
  readonly meshNamespace?: MeshNamespace;
  readonly namespace?: string;
  readonly deployment: kplus.Deployment;
  readonly container: kplus.Container;
  readonly service?: k8s.KubeService;
  readonly serviceName: string;
  readonly serviceNamespace?: string;
  readonly servicePorts?: number[];
  readonly noService?: string;
  readonly portName?: string;
  /** Labels on the pod template. */
  readonly podLabels: { [key: string]: string };
  private readonly called: ServiceRef[] = [];

  constructor(scope: Construct, id: string, props: MeshWorkloadProps) {
    super(scope, id);
    // Keys the props interface does not declare are refused (JavaScript has no compiler to); a subclass may add its own.
    const s = settle(new Check(this.node.path), props, new.target === MeshWorkload);
    this.noService = s.noService;
    this.app = props.app;
    this.version = s.version;
    this.inMesh = props.mesh ?? true;
    if (props.namespace instanceof MeshNamespace) this.meshNamespace = props.namespace;
    this.namespace = props.namespace instanceof MeshNamespace ? props.namespace.name : props.namespace;
    this.serviceNamespace = this.namespace;
    this.serviceName = s.serviceName;
    this.podLabels = { app: props.app, version: s.version, ...props.podLabels };

    this.deployment = new kplus.Deployment(this, 'Deployment', {
      metadata: { name: s.deploymentName, namespace: this.namespace, labels: { app: props.app, version: s.version } },
      replicas: s.replicas,
      select: false,
      podMetadata: {
        labels: { ...this.podLabels },
        annotations: {
          ...props.podAnnotations,
          ...(props.calls?.length ? { [CALLS_ANNOTATION]: props.calls.map((c) => hostFor(c, this.namespace)).join(',') } : {}),
        },
      },
      securityContext: { ensureNonRoot: true, user: s.user, group: s.group, fsGroup: s.group },
      serviceAccount: props.serviceAccount,
    });
    this.deployment.select(kplus.LabelSelector.of({ labels: { app: props.app, version: s.version } }));
    // cdk8s-plus tags pods with their construct address; we select by app/version, so drop it
    // (it would otherwise roll every pod whenever a construct id changes).
    ApiObject.of(this.deployment).addJsonPatch(JsonPatch.remove('/spec/template/metadata/labels/cdk8s.io~1metadata.addr'));
    this.container = this.addAppContainer(props, s);

    if (s.wantsService && props.port !== undefined) {
      this.portName = s.portName;
      this.servicePorts = [props.servicePort ?? props.port];
      this.service = this.addService(props, s, props.port);
    }

    this.called.push(...(props.calls ?? []));
    rendererOf(this).enrollWorkload(this);
  }

  /** The app container, secure by default, in the API server's form, with its volumes. */
  private addAppContainer(props: MeshWorkloadProps, s: Settled): kplus.Container {
    const port = props.port;
    const container = this.deployment.addContainer({
      name: props.app,
      image: props.image,
      imagePullPolicy: props.imagePullPolicy ?? kplus.ImagePullPolicy.IF_NOT_PRESENT,
      command: props.command ? [...props.command] : undefined,
      args: props.args ? [...props.args] : undefined,
      envVariables: Object.fromEntries(Object.entries(props.env ?? {}).map(([k, v]) => [k, kplus.EnvValue.fromValue(v)])),
      ports: port === undefined ? [] : [{ number: port, name: s.portName }],
      startup: port === undefined ? undefined : kplus.Probe.fromTcpSocket({ port, failureThreshold: Math.ceil(s.startupSeconds / 10) }),
      securityContext: restrictedContainer(s.user, s.group, props.security?.readOnlyRootFilesystem ?? true),
      resources: containerResources(s.cpu, s.mem),
    });
    canonicalMemory(ApiObject.of(this.deployment), 0, s.mem);
    omitServerDefaults(ApiObject.of(this.deployment));
    (props.writablePaths ?? []).forEach((p, i) => container.mount(p, kplus.Volume.fromEmptyDir(this, `Writable${i}`, `writable-${i}`)));
    (props.emptyDirs ?? []).forEach((v) => container.mount(v.mountPath, kplus.Volume.fromEmptyDir(this, `EmptyDir-${v.name}`, v.name)));
    return container;
  }

  /**
   * The low-level KubeService (cdk8s-plus-28's k8s export): cdk8s-plus's Service cannot name
   * its targetPort or set appProtocol.
   */
  private addService(props: MeshWorkloadProps, s: Settled, port: number): k8s.KubeService {
    return new k8s.KubeService(this, 'Service', {
      metadata: { name: s.serviceName, namespace: this.namespace, labels: { app: props.app, ...props.serviceLabels } },
      spec: {
        type: 'ClusterIP',
        selector: { ...(props.serviceSelector ?? { app: props.app }) },
        ports: [{
          name: s.portName,
          port: props.servicePort ?? port,
          targetPort: props.targetPortByName ? k8s.IntOrString.fromString(s.portName) : k8s.IntOrString.fromNumber(port),
          protocol: 'TCP',
          appProtocol: props.appProtocol,
        }],
      },
    });
  }

  /**
   * Record more Services this workload calls (the `calls` prop, from anywhere in the app):
   * mesh lint then tells when a caller of routed hosts is outside the mesh.
   *
   * ```ts
   * productpage.calls(reviews, ratings);
   * ```
   */
  calls(...services: ServiceRef[]): void {
    const check: Check = new Check(this.node.path);
    services.forEach((c, i) => checkServiceRef(check, `calls()[${i}]`, c));
    this.called.push(...services);
    this.addPodAnnotation(CALLS_ANNOTATION, this.called.map((c) => hostFor(c, this.namespace)).join(','));
  }

  /** Add a label to the pod template (used by renderers and patterns). */
  addPodLabel(key: string, value: string): void {
    this.deployment.podMetadata.addLabel(key, value);
  }

  addPodAnnotation(key: string, value: string): void {
    this.deployment.podMetadata.addAnnotation(key, value);
  }
}
