import { Construct } from 'constructs';
import { BookinfoApp, BookinfoAppProps, BookinfoScenario, JaegerAddon, MeshChart, MeshChartProps, MeshNamespace, MeshTracing } from '../constructs';

export interface BookinfoChartProps extends MeshChartProps {
  /** @default "all-v1" */
  readonly scenario?: BookinfoScenario;
  /** The namespace the chart owns (injection by its label, as Istio's tasks label theirs). @default "bookinfo" */
  readonly bookinfoNamespace?: string;
  readonly images?: BookinfoAppProps['images'];
  readonly gateway?: BookinfoAppProps['gateway'];
  /** @default false */
  readonly mutualTls?: boolean;
  /**
   * Jaeger (Istio's addon, UI on NodePort 30686 under /jaeger) and every request traced
   * (the demo profile's 100%), reported by Istio's proxies or the node sidecar.
   * @default false
   */
  readonly tracing?: boolean;
}

/** Istio's Bookinfo with its gateway, DestinationRules and one traffic scenario. */
export class BookinfoChart extends MeshChart {
  readonly app: BookinfoApp;

  constructor(scope: Construct, id: string, props: BookinfoChartProps = {}) {
    super(scope, id, props);
    const ns = new MeshNamespace(this, 'namespace', { name: props.bookinfoNamespace ?? 'bookinfo' });
    this.app = new BookinfoApp(this, 'bookinfo', {
      namespace: ns, scenario: props.scenario ?? 'all-v1', images: props.images, gateway: props.gateway, mutualTls: props.mutualTls,
    });
    if (props.tracing) {
      // Without Istio nobody else creates istio-system: JaegerAddon writes it there by default.
      const jaeger = new JaegerAddon(this, 'jaeger', { ui: { serviceType: 'NodePort', nodePort: 30686 } });
      new MeshTracing(this, 'tracing', { collector: jaeger, samplingPercentage: 100 });
    }
  }
}
