import { Construct } from 'constructs';
import { stringify } from 'yaml';
import { Check, checkDns1123Label, checkHost } from '../model';
import { JAEGER_PORTS, JaegerAddon } from './jaeger-addon';
import { renderAtSynth, rendererOf, TracingRendering } from './mesh';
import { refuseUnknownProps } from './known-props';

/** A tracing backend that is not a JaegerAddon of the chart: its Zipkin and OTLP addresses. */
export interface TracingCollector {
  /** The collector's Zipkin host, fully qualified. @default - none: protocol "opentelemetry" only */
  readonly zipkinHost?: string;
  /** The collector's Zipkin port. @default 9411 */
  readonly zipkinPort?: number;
  /** The collector's OTLP host, fully qualified. @default - none: protocol "zipkin" only */
  readonly otlpHost?: string;
  /** OTLP over gRPC, what Istio's Envoy sends. @default 4317 */
  readonly otlpGrpcPort?: number;
  /** OTLP over HTTP (JSON), what the node sidecar sends. @default 4318 */
  readonly otlpHttpPort?: number;
}

/** Which proxies report spans where, and how many. */
export interface MeshTracingProps {
  /** The backend: a JaegerAddon, or the addresses of another collector. */
  readonly collector: JaegerAddon | TracingCollector;
  /** How proxies report: Zipkin v2 (the port Istio's addon calls `zipkin`) or OpenTelemetry. @default "zipkin" */
  readonly protocol?: 'zipkin' | 'opentelemetry';
  /** Share of new traces recorded; a caller's x-b3-sampled decides for the traces it started. @default 1 (Istio's default) */
  readonly samplingPercentage?: number;
  /** The meshConfig extension provider's name, which the Telemetry refers to. @default "jaeger" */
  readonly providerName?: string;
  /** Istio's root namespace: a Telemetry there applies to the whole mesh. @default "istio-system" */
  readonly rootNamespace?: string;
}

/** Istio's meshConfig fields tracing needs (MeshTracing.meshConfig). */
export interface TracingMeshConfig {
  readonly enableTracing: boolean;
  /** The extension provider the Telemetry names: `{ name, zipkin: { service, port } }` or `{ name, opentelemetry: ... }`. */
  readonly extensionProviders: { [key: string]: any }[];
}

/**
 * Distributed tracing for the chart's mesh. On Istio: a Telemetry `mesh-default` in the
 * root namespace sends spans to an extension provider, which lives in meshConfig (not a
 * namespaced object): `meshConfigYaml()` (and `npx cdk8s-mesh mesh-config`) prints the
 * fragment for your IstioOperator or Helm values. On the node sidecar: every proxy of
 * the chart reports its spans to the collector itself (its route table names it).
 * The apps must still forward the tracing headers (x-request-id, x-b3-*, x-ot-span-context).
 *
 * ```ts
 * const jaeger = new JaegerAddon(chart, 'jaeger');
 * const tracing = new MeshTracing(chart, 'tracing', { collector: jaeger, samplingPercentage: 100 });
 * console.log(tracing.meshConfigYaml());
 * ```
 */
export class MeshTracing extends Construct {
  /** What the proxies are told, as the renderer got it. */
  readonly rendering: TracingRendering;

  constructor(scope: Construct, id: string, props: MeshTracingProps) {
    super(scope, id);
    const check: Check = new Check(this.node.path);
    check.shape('', props, { collector: 'object', protocol: 'string?', samplingPercentage: 'number?', providerName: 'string?', rootNamespace: 'string?' });
    // Keys the props interface does not declare are refused (JavaScript has no compiler to); a subclass may add its own.
    if (new.target === MeshTracing) refuseUnknownProps(this.node.path, 'MeshTracingProps', props);
    const protocol = props.protocol ?? 'zipkin';
    check.oneOf('protocol', protocol, ['zipkin', 'opentelemetry']);
    const samplingPercentage = props.samplingPercentage ?? 1;
    check.percentage('samplingPercentage', samplingPercentage);
    const providerName = props.providerName ?? 'jaeger';
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(providerName)) check.fail('providerName', providerName, 'a provider name of letters, digits, ".", "_" and "-"');
    const rootNamespace = props.rootNamespace ?? 'istio-system';
    checkDns1123Label(check, 'rootNamespace', rootNamespace);

    let zipkin: TracingRendering['zipkin'] | undefined;
    let otlp: TracingRendering['otlp'] | undefined;
    if (props.collector instanceof JaegerAddon) {
      zipkin = { host: props.collector.zipkinHost, port: JAEGER_PORTS.zipkin };
      otlp = { host: props.collector.collectorHost, grpcPort: JAEGER_PORTS.otlpGrpc, httpPort: JAEGER_PORTS.otlpHttp };
    } else {
      const c = props.collector;
      check.shape('collector', c, { zipkinHost: 'string?', zipkinPort: 'number?', otlpHost: 'string?', otlpGrpcPort: 'number?', otlpHttpPort: 'number?' });
      if (c.zipkinHost !== undefined) {
        checkHost(check, 'collector.zipkinHost', c.zipkinHost);
        zipkin = { host: c.zipkinHost, port: c.zipkinPort ?? JAEGER_PORTS.zipkin };
        check.port('collector.zipkinPort', zipkin.port);
      }
      if (c.otlpHost !== undefined) {
        checkHost(check, 'collector.otlpHost', c.otlpHost);
        otlp = { host: c.otlpHost, grpcPort: c.otlpGrpcPort ?? JAEGER_PORTS.otlpGrpc, httpPort: c.otlpHttpPort ?? JAEGER_PORTS.otlpHttp };
        check.port('collector.otlpGrpcPort', otlp.grpcPort);
        check.port('collector.otlpHttpPort', otlp.httpPort);
      }
    }
    if (protocol === 'zipkin' && !zipkin) check.fail('collector.zipkinHost', undefined, 'the collector\'s Zipkin host (protocol is "zipkin")');
    if (protocol === 'opentelemetry' && !otlp) check.fail('collector.otlpHost', undefined, 'the collector\'s OTLP host (protocol is "opentelemetry")');

    this.rendering = { providerName, protocol, samplingPercentage, rootNamespace, ...(protocol === 'zipkin' ? { zipkin } : { otlp }) };
    const renderer = rendererOf(this);
    if (!renderer.renderTracing) check.fail('dataPlane', renderer.dataPlane, 'a data plane whose renderer supports tracing (istio, node-sidecar)');
    renderAtSynth(this, () => renderer.renderTracing!(this, 'Resource', this.rendering));
  }

  /**
   * The meshConfig an Istio installation needs for the Telemetry to work: the extension
   * provider with the collector's address (Istio's tracing task). Put it under `meshConfig`
   * in the IstioOperator (`spec.meshConfig`) or in the istiod Helm values.
   */
  get meshConfig(): TracingMeshConfig {
    const r = this.rendering;
    const provider = r.zipkin
      ? { name: r.providerName, zipkin: { service: r.zipkin.host, port: r.zipkin.port } }
      : { name: r.providerName, opentelemetry: { service: r.otlp!.host, port: r.otlp!.grpcPort } };
    return { enableTracing: true, extensionProviders: [provider] };
  }

  /** `meshConfig:` and its fragment, as YAML, with a comment saying where it goes. */
  meshConfigYaml(): string {
    return `# ${this.node.path}: merge into the IstioOperator's spec.meshConfig or istiod's Helm values (meshConfig:)\n${stringify({ meshConfig: this.meshConfig })}`;
  }
}
