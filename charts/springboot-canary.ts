import { Construct } from 'constructs';
import { CanaryRelease, MeshChart, MeshChartProps, MeshNamespace, MeshWorkload, ProgressiveDelivery } from '../constructs';
import { Duration } from '../model';
import { IMAGES, SLEEP_COMMAND } from './images';

export interface SpringbootCanaryChartProps extends MeshChartProps {
  /** The route's timeout (the seed's second step uses 0.002s). @default - none */
  readonly timeout?: Duration | string;
  readonly images?: { readonly v1?: string; readonly v2?: string; readonly busybox?: string };
  /**
   * Hand the canary to a controller, which steps v2 through 10, 25 and 50 % and promotes it.
   * @default - the chart writes the 70/30 split
   */
  readonly progressiveDelivery?: ProgressiveDelivery;
}

/**
 * `springbootapp` v1 70% / v2 30% behind `springbootapp-svc:8080` in `springistiodemo`,
 * and a busybox client in `istioclient` (injected by its namespace label) that calls
 * `springbootapp-svc.springistiodemo:8080/hello`.
 */
export class SpringbootCanaryChart extends MeshChart {
  readonly release: CanaryRelease;
  readonly client: MeshWorkload;

  constructor(scope: Construct, id: string, props: SpringbootCanaryChartProps = {}) {
    super(scope, id, props);
    const appNs = new MeshNamespace(this, 'springistiodemo', { name: 'springistiodemo' });
    const clientNs = new MeshNamespace(this, 'istioclient', { name: 'istioclient' });
    // Spring Boot's embedded Tomcat writes under /tmp; the JVM needs more than the default limits.
    const jvm = {
      writablePaths: ['/tmp'],
      resources: { cpuMillis: { request: 100, limit: 1000 }, memoryMiB: { request: 256, limit: 512 } },
      startupSeconds: 90,
    };
    this.release = new CanaryRelease(this, 'springbootapp', {
      app: 'springbootapp',
      serviceName: 'springbootapp-svc',
      port: 8080,
      namespace: appNs,
      // With a controller, v1 is what it runs already: the chart writes v2's template only.
      stable: props.progressiveDelivery ? undefined : { version: 'v1', image: props.images?.v1 ?? IMAGES.springbootV1, ...jvm },
      canary: { version: 'v2', image: props.images?.v2 ?? IMAGES.springbootV2, ...jvm },
      ...(props.progressiveDelivery
        ? { steps: [10, 25, 50], progressiveDelivery: props.progressiveDelivery }
        : { canaryWeight: 30 }),
      timeout: props.timeout,
    });
    this.client = new MeshWorkload(this, 'busyclient', {
      app: 'busyclient',
      image: props.images?.busybox ?? IMAGES.busybox,
      command: SLEEP_COMMAND,
      namespace: clientNs,
      calls: [this.release],
    });
  }
}
