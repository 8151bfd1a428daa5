import { ApiObject, Chart, ChartProps, JsonPatch } from 'cdk8s';
import { Construct, IConstruct } from 'constructs';
import {
  Check, DataPlaneName, FeatureUse, gatewayFeatures, GatewayServerModel, HeaderMatchModel, MeshValidationError, policyFeatures, policyWithout,
  refusalMessages, routeFeatures, routeWithout, serviceEntryFeatures, ServiceEntryModel, ServiceRef, SubsetModel, TrafficPolicyModel,
  TrafficRouteModel,
} from '../model';
import { checkDropUnsupported, DroppedFeature, gate } from './capability-gate';
import { refuseUnknownProps } from './known-props';
import { describeObject, duplicateObjects } from '../lint/analyze';
import type { MeshNamespace } from './mesh-namespace';
import type { MeshWorkload } from './mesh-workload';
import type { ProgressiveDeliveryModel } from './progressive-delivery';

/** Which data plane carries the mesh's rules. */
export enum DataPlane {
  /** Istio: sidecars injected by Istio, rules as VirtualService/DestinationRule/Gateway. */
  ISTIO = 'istio',
  /** The project's own Node.js sidecar proxy, for clusters without Istio. */
  NODE_SIDECAR = 'node-sidecar',
  /** Kubernetes Gateway API: HTTPRoute (GAMMA for mesh routes), Gateway, per-version Services. */
  GATEWAY_API = 'gateway-api',
}

/** A route as a renderer receives it: its validated model and where it goes. */
export interface RouteRendering {
  readonly name: string;
  readonly namespace?: string;
  readonly model: TrafficRouteModel;
}
/** A destination policy as a renderer receives it: the Service, validated subsets and policy. */
export interface DestinationPolicyRendering {
  readonly name: string;
  readonly namespace?: string;
  readonly service: ServiceRef;
  readonly subsets: readonly SubsetModel[];
  readonly trafficPolicy?: TrafficPolicyModel;
}
/** A gateway as it is built: who it is and which pods serve it (its servers come at synth). */
export interface GatewayEnrollment {
  readonly name: string;
  readonly namespace?: string;
  readonly selector: Readonly<Record<string, string>>;
}
/** A gateway as a renderer receives it: selector and validated servers. */
export interface GatewayRendering {
  readonly name: string;
  readonly namespace?: string;
  readonly selector: Readonly<Record<string, string>>;
  readonly servers: readonly GatewayServerModel[];
}

/** A ServiceEntry as a renderer receives it: the validated entry and where it goes. */
export interface ServiceEntryRendering {
  readonly name: string;
  readonly namespace?: string;
  readonly model: ServiceEntryModel;
}

/**
 * An Argo Rollouts release as a renderer receives it (CanaryRelease with
 * ProgressiveDelivery.argoRollouts): the Rollout adopts `deploymentName`; with `traffic`,
 * the data plane's traffic router moves the weights of route `primary` of `traffic.routeName`
 * between subsets `stable` and `canary` of `traffic.policyName`; without, replica counts do.
 */
export interface RolloutRendering {
  readonly name: string;
  readonly namespace?: string;
  readonly deploymentName: string;
  readonly replicas: number;
  readonly selector: Readonly<Record<string, string>>;
  readonly weights: readonly number[];
  readonly header?: { readonly name: string; readonly match: HeaderMatchModel };
  readonly serviceName: string;
  readonly canaryVersion: string;
  readonly traffic?: { readonly routeName: string; readonly policyName: string };
  readonly pd: ProgressiveDeliveryModel;
}

/**
 * What a data plane does with the mesh model. A new data plane is a new renderer;
 * constructs call these and never branch on the data plane themselves.
 */
export interface MeshRenderer {
  readonly dataPlane: DataPlane;
  /** Mark a namespace the chart owns as injecting (or not) every pod in it. */
  enrollNamespace(ns: MeshNamespace): void;
  /** Put a workload in the mesh (or keep it out), never injecting twice. */
  enrollWorkload(workload: MeshWorkload): void;
  /** Make the pods that serve a gateway, when the data plane runs them itself (called at construction; servers come with renderGateway). */
  enrollGateway?(scope: Construct, gateway: GatewayEnrollment): void;
  renderRoute(scope: Construct, id: string, route: RouteRendering): void;
  renderDestinationPolicy(scope: Construct, id: string, policy: DestinationPolicyRendering): void;
  renderGateway(scope: Construct, id: string, gateway: GatewayRendering): void;
  /** Add hosts outside the cluster to the mesh's registry (Istio: a ServiceEntry). */
  renderServiceEntry(scope: Construct, id: string, entry: ServiceEntryRendering): void;
  /** Report spans to a collector (MeshTracing). A data plane without it refuses MeshTracing at synth. */
  renderTracing?(scope: Construct, id: string, tracing: TracingRendering): void;
  /** Whether Argo Rollouts can move this data plane's weights (else it steps replica counts). */
  readonly rolloutTrafficRouter: boolean;
  /** An Argo Rollouts Rollout and its AnalysisTemplate, routed as this data plane allows. */
  renderRollout(scope: Construct, id: string, rollout: RolloutRendering): void;
}

/** What MeshTracing hands the renderer: the collector and how much to sample. */
export interface TracingRendering {
  /** The name of Istio's meshConfig extension provider the Telemetry refers to. */
  readonly providerName: string;
  /** How Istio's proxies report: Zipkin (v2 JSON) or OpenTelemetry (OTLP gRPC). */
  readonly protocol: 'zipkin' | 'opentelemetry';
  /** Share of requests traced, 0 to 100. */
  readonly samplingPercentage: number;
  /** Istio's root namespace, where a Telemetry applies to the whole mesh. */
  readonly rootNamespace: string;
  /** The collector's Zipkin endpoint (host, port); present when `protocol` is "zipkin". */
  readonly zipkin?: ZipkinEndpoint;
  /** The collector's OTLP endpoints (gRPC for Istio's Envoy, HTTP/JSON for the node sidecar); present when `protocol` is "opentelemetry". */
  readonly otlp?: OtlpEndpoint;
}
/** A collector's Zipkin endpoint. */
export interface ZipkinEndpoint { readonly host: string; readonly port: number }
/** A collector's OTLP endpoints: gRPC and HTTP/JSON. */
export interface OtlpEndpoint { readonly host: string; readonly grpcPort: number; readonly httpPort: number }

/** Makes a chart's renderer; `chart` is absent for constructs outside any MeshChart. */
export type RendererFactory = (chart?: MeshChart) => MeshRenderer;
const factories = new Map<DataPlane, RendererFactory>();

/** Data planes register themselves here (see constructs/index.ts). */
export function registerRenderer(dataPlane: DataPlane, factory: RendererFactory): void {
  factories.set(dataPlane, factory);
}

/** Settings of the node-sidecar data plane (ignored by Istio). */
export interface NodeSidecarOptions {
  /** The proxy image. @default DEFAULT_SIDECAR_IMAGE */
  readonly image?: string;
  /** Hosts without rules: pass through (ALLOW_ANY) or refuse (REGISTRY_ONLY). @default "ALLOW_ANY" (Istio's default) */
  readonly outboundTrafficPolicy?: 'ALLOW_ANY' | 'REGISTRY_ONLY';
  /** How weighted splits pick: exact smooth round robin, or random. @default "round-robin" */
  readonly pick?: 'round-robin' | 'random';
  /** The type of each gateway's Service. @default "LoadBalancer" */
  readonly gatewayServiceType?: 'LoadBalancer' | 'NodePort' | 'ClusterIP';
  /** The cluster's DNS domain, for fully qualified hosts in the route table. @default "cluster.local" */
  readonly clusterDomain?: string;
}

/** Settings of the Gateway API data plane (ignored by the others). */
export interface GatewayApiOptions {
  /** The GatewayClass every Gateway names: istio, cilium, eg (Envoy Gateway), ... @default "istio" */
  readonly gatewayClassName?: string;
  /**
   * The release channel of the cluster's Gateway API CRDs. Only "experimental" has the
   * HTTPRoute `retry` field; on "standard" a rule with retries is refused at synth.
   * @default "standard"
   */
  readonly channel?: 'standard' | 'experimental';
  /**
   * Which mesh puts the workloads' proxies in: Istio sidecars (labels as on DataPlane.ISTIO),
   * Istio ambient (label istio.io/dataplane-mode=ambient), Linkerd (annotation
   * linkerd.io/inject=enabled), or none (the cluster's mesh decides by itself).
   * @default "istio"
   */
  readonly mesh?: 'istio' | 'istio-ambient' | 'linkerd' | 'none';
  /**
   * DestinationRule traffic policies (load balancer, connection pool, outlier detection, TLS)
   * have no Gateway API form. "error" refuses them at synth; "istio" emits them as Istio
   * DestinationRules for the Service hosts, which Istio applies to Gateway API traffic too.
   * @default "error"
   */
  readonly trafficPolicies?: 'error' | 'istio';
}

/** A chart's props: cdk8s's ChartProps and the data plane its mesh constructs render for. */
export interface MeshChartProps extends ChartProps {
  /** Istio (VirtualService, DestinationRule, Gateway) or the project's Node.js sidecar. @default DataPlane.ISTIO */
  readonly dataPlane?: DataPlane;
  /** Used when `dataPlane` is NODE_SIDECAR. @default - see NodeSidecarOptions */
  readonly sidecar?: NodeSidecarOptions;
  /** Used when `dataPlane` is GATEWAY_API. @default - see GatewayApiOptions */
  readonly gatewayApi?: GatewayApiOptions;
  /**
   * Features of the capability table this chart accepts losing on a data plane that cannot
   * carry them (ids such as "policy.outlierDetection" or "route.fault", or "*" for every
   * droppable one). Each dropped item is a lint warning (MESH034) and is listed in the plan
   * under "Not applied on this data plane". Match conditions and gateway servers are never
   * dropped (requests would go elsewhere).
   * @default - none: what the data plane cannot carry is refused at synth
   */
  readonly dropUnsupported?: string[];
}

const MESH_CHART = Symbol.for('cdk8s-mesh.MeshChart');

/**
 * One call a construct made to its chart's renderer, kept so that the same model can be
 * drawn on another data plane (the traffic plan reads a node-sidecar chart's rules as
 * the Istio objects they would be).
 * @internal
 */
export type MeshRenderingCall =
  | { readonly method: 'renderRoute'; readonly scopePath: readonly string[]; readonly id: string; readonly rendering: RouteRendering }
  | { readonly method: 'renderDestinationPolicy'; readonly scopePath: readonly string[]; readonly id: string; readonly rendering: DestinationPolicyRendering }
  | { readonly method: 'renderGateway'; readonly scopePath: readonly string[]; readonly id: string; readonly rendering: GatewayRendering }
  | { readonly method: 'renderServiceEntry'; readonly scopePath: readonly string[]; readonly id: string; readonly rendering: ServiceEntryRendering }
  | { readonly method: 'renderTracing'; readonly scopePath: readonly string[]; readonly id: string; readonly rendering: TracingRendering }
  | { readonly method: 'renderRollout'; readonly scopePath: readonly string[]; readonly id: string; readonly rendering: RolloutRendering };
const RENDERINGS = new WeakMap<MeshChart, MeshRenderingCall[]>();

/**
 * The rendering calls made in a chart, in order, each with its scope's path below the chart.
 * @internal
 */
export function renderingCallsOf(chart: MeshChart): readonly MeshRenderingCall[] {
  renderPending(chart);
  return RENDERINGS.get(chart) ?? [];
}

const REFUSALS = new WeakMap<MeshChart, string[]>();
const DROPS = new WeakMap<MeshChart, DroppedFeature[]>();

/** What the chart let its data plane drop (MeshChartProps.dropUnsupported), in construct order. */
export function droppedIn(chart: MeshChart): readonly DroppedFeature[] {
  renderPending(chart);
  return DROPS.get(chart) ?? [];
}

/**
 * The renderer behind the capability gate, with every call recorded for renderingCallsOf.
 * Each route, policy and gateway is checked against the capability table first; features
 * the chart accepts losing are taken out of the model before the renderer (and the
 * recording, so the plan's Istio twin) sees it. Refusals, the gate's and the renderer's,
 * are collected rather than thrown, and the chart's validation reports them all at once.
 */
function gated(chart: MeshChart, inner: MeshRenderer, accept: readonly string[]): MeshRenderer {
  const calls: MeshRenderingCall[] = [];
  const refusals: string[] = [];
  const drops: DroppedFeature[] = [];
  RENDERINGS.set(chart, calls);
  REFUSALS.set(chart, refusals);
  DROPS.set(chart, drops);
  const plane = inner.dataPlane as DataPlaneName;
  const options = { 'gatewayApi.trafficPolicies': chart.gatewayApi.trafficPolicies };
  const below = (scope: Construct) => scope.node.scopes.slice(chart.node.scopes.length).map((c) => c.node.id);
  const run = (scope: Construct, uses: readonly FeatureUse[], render: (dropped: readonly DroppedFeature[]) => void) => {
    const { dropped, problems } = gate(scope.node.path, plane, options, accept, uses);
    refusals.push(...problems.map((p) => p.message));
    drops.push(...dropped);
    try {
      render(dropped);
    } catch (e) {
      const messages = refusalMessages(e);
      if (!messages) throw e;
      refusals.push(...messages);
    }
  };
  const fields = (d: readonly DroppedFeature[]) => new Set(d.map((x) => x.field));
  return {
    dataPlane: inner.dataPlane,
    enrollNamespace: (ns) => inner.enrollNamespace(ns),
    enrollWorkload: (w) => inner.enrollWorkload(w),
    ...(inner.enrollGateway ? { enrollGateway: (scope: Construct, g: GatewayEnrollment) => inner.enrollGateway!(scope, g) } : {}),
    renderRoute: (scope, id, r) => run(scope, routeFeatures(r.model), (dropped) => {
      const rendering = dropped.length ? { ...r, model: routeWithout(r.model, fields(dropped)) } : r;
      calls.push({ method: 'renderRoute', scopePath: below(scope), id, rendering });
      inner.renderRoute(scope, id, rendering);
    }),
    renderDestinationPolicy: (scope, id, p) => run(scope, policyFeatures(p.trafficPolicy, p.subsets), (dropped) => {
      const rendering = dropped.length ? { ...p, ...policyWithout(p.trafficPolicy, p.subsets, fields(dropped)) } : p;
      calls.push({ method: 'renderDestinationPolicy', scopePath: below(scope), id, rendering });
      inner.renderDestinationPolicy(scope, id, rendering);
    }),
    renderGateway: (scope, id, g) => run(scope, gatewayFeatures(g.servers), () => {
      calls.push({ method: 'renderGateway', scopePath: below(scope), id, rendering: g });
      inner.renderGateway(scope, id, g);
    }),
    renderServiceEntry: (scope, id, e) => run(scope, serviceEntryFeatures(e.model), () => {
      calls.push({ method: 'renderServiceEntry', scopePath: below(scope), id, rendering: e });
      inner.renderServiceEntry(scope, id, e);
    }),
    rolloutTrafficRouter: inner.rolloutTrafficRouter,
    renderRollout: (scope, id, r) => run(scope, [], () => {
      calls.push({ method: 'renderRollout', scopePath: below(scope), id, rendering: r });
      inner.renderRollout(scope, id, r);
    }),
    ...(inner.renderTracing ? {
      renderTracing: (scope: Construct, id: string, rendering: TracingRendering) => run(scope, [], () => {
        calls.push({ method: 'renderTracing', scopePath: below(scope), id, rendering });
        inner.renderTracing!(scope, id, rendering);
      }),
    } : {}),
  };
}

/**
 * Every validation error of the constructs in `scope`, as cdk8s would collect them before
 * writing: a MeshChart's own (its refusals and duplicate objects) name their construct
 * paths; other constructs' messages get theirs in brackets, as cdk8s writes them.
 */
export function validationErrorsOf(scope: IConstruct): string[] {
  return scope.node.findAll().flatMap((c) => c.node.validate().map((e) => (MeshChart.isMeshChart(c) ? e : `[${c.node.path}] ${e}`)));
}

/** A cdk8s Chart that knows which data plane its mesh constructs render for. */
export class MeshChart extends Chart {
  /**
   * Chart overrides `instanceof` (any Chart would pass `x instanceof MeshChart`),
   * so MeshCharts carry their own marker.
   */
  static isMeshChart(x: unknown): x is MeshChart {
    return typeof x === 'object' && x !== null && (x as Record<symbol, unknown>)[MESH_CHART] === true;
  }

  readonly dataPlane: DataPlane;
  /** The data plane's renderer (TypeScript: `rendererOf(chart)`). @internal */
  readonly _renderer: MeshRenderer;
  readonly sidecar: NodeSidecarOptions;
  readonly gatewayApi: GatewayApiOptions;

  constructor(scope: Construct, id: string, props: MeshChartProps = {}) {
    // Checked before Chart reads them: the chart's path is not known to `this` yet.
    const check = new Check([scope.node.path, id].filter(Boolean).join('/'));
    check.shape('', props, { namespace: 'string?', labels: 'stringMap?', disableResourceNameHashes: 'boolean?', sidecar: 'object?', gatewayApi: 'object?' });
    // Keys the props interface does not declare are refused (JavaScript has no compiler to); a subclass may add its own.
    if (new.target === MeshChart) refuseUnknownProps(check.where, 'MeshChartProps', props);
    const accept = checkDropUnsupported(check, props.dropUnsupported);
    if (props.sidecar) check.shape('sidecar', props.sidecar, { image: 'string?', outboundTrafficPolicy: 'string?', pick: 'string?', gatewayServiceType: 'string?', clusterDomain: 'string?' });
    if (props.gatewayApi) check.shape('gatewayApi', props.gatewayApi, { gatewayClassName: 'string?', channel: 'string?', mesh: 'string?', trafficPolicies: 'string?' });
    super(scope, id, props);
    this.dataPlane = props.dataPlane ?? DataPlane.ISTIO;
    this.sidecar = props.sidecar ?? {};
    this.gatewayApi = props.gatewayApi ?? {};
    const factory = factories.get(this.dataPlane);
    if (!factory) {
      throw new MeshValidationError(this.node.path, 'dataPlane', props.dataPlane, `one of the registered data planes (${[...factories.keys()].join(', ')})`);
    }
    Object.defineProperty(this, MESH_CHART, { value: true });
    this._renderer = gated(this, factory(this), accept);
    // Refusals collected while rendering, then two objects with one identity (written to
    // one file, the second would silently replace the first on apply): all refused at synth.
    // The renders the chart's constructs asked for run first (renderAtSynth).
    this.node.addValidation({ validate: () => [...renderPending(this), ...(REFUSALS.get(this) ?? []), ...duplicatesIn(this).map((d) => d.message)] });
  }
}

const PENDING = new WeakMap<IConstruct, Array<() => void>>();
const LATE_REFUSALS = new WeakMap<IConstruct, string[]>();

/** The chart whose synthesis renders `c`: its MeshChart, else its cdk8s Chart, else the tree's root. */
function renderingChartOf(c: IConstruct): IConstruct {
  let chart: IConstruct | undefined;
  for (let s: IConstruct | undefined = c; s; s = s.node.scope) {
    if (MeshChart.isMeshChart(s)) return s;
    if (!chart && Chart.isChart(s)) chart = s;
  }
  return chart ?? c.node.root;
}

/**
 * Render `c` when its chart synthesizes, not now: the construct records its model and can
 * still be changed (addRule, addSubset, ...) until then. Renders run in the order they were
 * asked for, which is construction order, so the YAML is what rendering in the constructor
 * wrote. A MeshChart renders first thing in its validation (cdk8s validates a chart before
 * the constructs in it); a plain Chart gets the same hook on first use.
 * @internal
 */
export function renderAtSynth(c: IConstruct, render: () => void): void {
  const chart = renderingChartOf(c);
  let queue = PENDING.get(chart);
  if (!queue) {
    queue = [];
    PENDING.set(chart, queue);
    if (!MeshChart.isMeshChart(chart)) chart.node.addValidation({ validate: () => renderPending(chart) });
  }
  queue.push(render);
}

/** A JSON patch as the user wrote it, for error messages. */
const patchJson = (op: JsonPatch): unknown => (op as unknown as { _toJson(): unknown })._toJson();

/**
 * Check the escape-hatch patches given to `c.addJsonPatch()`: each must be a cdk8s JsonPatch.
 * @internal
 */
export function checkJsonPatches(c: IConstruct, ops: readonly unknown[]): JsonPatch[] {
  ops.forEach((op, i) => {
    if (!(op instanceof JsonPatch)) throw new MeshValidationError(c.node.path, `addJsonPatch()[${i}]`, op, 'a cdk8s JsonPatch (JsonPatch.add(path, value), JsonPatch.replace(...), JsonPatch.remove(path), ...)');
  });
  return ops as JsonPatch[];
}

/**
 * renderAtSynth for a construct with escape-hatch patches (addJsonPatch): after its render,
 * the patches go to the object the data plane rendered for it (its `Resource` child, the
 * construct's `ApiObject.of()`). A plane that renders no object of its own for it refuses
 * them, unless the render was refused already (that refusal is the one to read).
 * @internal
 */
export function renderAtSynthPatched(c: Construct, what: string, patches: readonly JsonPatch[], render: () => void): void {
  renderAtSynth(c, () => {
    const chart = renderingChartOf(c);
    const refused = () => REFUSALS.get(chart as MeshChart)?.length ?? 0;
    const before = refused();
    render();
    if (!patches.length || refused() > before) return;
    const rendered = c.node.tryFindChild('Resource');
    if (rendered instanceof ApiObject) {
      rendered.addJsonPatch(...patches);
      return;
    }
    throw new MeshValidationError(c.node.path, 'addJsonPatch()', patches.map(patchJson),
      `an object to patch: the ${rendererOf(c).dataPlane} data plane renders no object of its own for a ${what} (patch the objects it renders for other constructs, or leave the patches out)`);
  });
}

/**
 * Run the renders `chart`'s constructs asked for (renderAtSynth), once each; returns the
 * validation errors of the constructs they created. cdk8s collects the constructs to
 * validate before it validates any, so those made here would go unchecked otherwise.
 * Idempotent: synth, lint and plan may all call it.
 */
export function renderPending(chart: IConstruct): string[] {
  const queue = PENDING.get(chart);
  // Kept and reported on every validation: lint may have run the renders before synth did.
  let errors = LATE_REFUSALS.get(chart);
  if (!errors) { errors = []; LATE_REFUSALS.set(chart, errors); }
  if (!queue?.length) return [...errors];
  const before = new Set(chart.node.findAll());
  while (queue.length) {
    try {
      queue.shift()!();
    } catch (e) {
      // A refusal found only now (a subset named before it was added, ...) is reported with the rest.
      const messages = refusalMessages(e);
      if (!messages) throw e;
      errors.push(...messages);
    }
  }
  return [...errors, ...chart.node.findAll().filter((c) => !before.has(c)).flatMap((c) => c.node.validate().map((e) => `[${c.node.path}] ${e}`))];
}

/**
 * Run the pending renders of every chart in `scope` (renderPending), for readers of a chart's
 * objects that do not synthesize it (lint, plans). Refusals are left to the charts' validation.
 * @internal
 */
export function renderPendingIn(scope: IConstruct): void {
  for (const c of [...scope.node.scopes.slice(0, -1), ...scope.node.findAll()]) if (PENDING.get(c)?.length) renderPending(c);
}

/** Objects of `chart` (not of charts nested in it) that share kind, namespace and name with an earlier one. */
export function duplicatesIn(chart: Chart): Array<{ first: ApiObject; again: ApiObject; message: string }> {
  const objects = chart.node.findAll().filter((c): c is ApiObject => c instanceof ApiObject && Chart.of(c) === chart)
    .map((o) => ({ o, obj: { apiVersion: o.apiVersion, kind: o.kind, metadata: { name: o.name, namespace: o.metadata.namespace ?? chart.namespace } } }));
  return duplicateObjects(objects).map(({ first, again }) => ({
    first: first.o,
    again: again.o,
    message: `${describeObject(again.obj)} is defined twice: by ${first.o.node.path} and by ${again.o.node.path}; rename one (or put it in another namespace)`,
  }));
}

/** Find the renderer for a construct: its MeshChart's, or Istio's in a plain Chart. */
export function rendererOf(c: IConstruct): MeshRenderer {
  for (let s: IConstruct | undefined = c; s; s = s.node.scope) {
    if (MeshChart.isMeshChart(s)) return s._renderer;
  }
  const istio = factories.get(DataPlane.ISTIO);
  if (!istio) throw new Error('cdk8s-mesh: the Istio renderer is not registered (import cdk8s-mesh constructs via constructs/index.ts)');
  return istio();
}
