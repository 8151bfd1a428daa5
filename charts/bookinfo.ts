import { Construct } from 'constructs';
import { BookinfoApp, BookinfoAppProps, BookinfoScenario, MeshChart, MeshChartProps, MeshNamespace } from '../constructs';

export interface BookinfoChartProps extends MeshChartProps {
  /** @default "all-v1" */
  readonly scenario?: BookinfoScenario;
  /** The namespace the chart owns (injection by its label, as Istio's tasks label theirs). @default "bookinfo" */
  readonly bookinfoNamespace?: string;
  readonly images?: BookinfoAppProps['images'];
  readonly gateway?: BookinfoAppProps['gateway'];
  /** @default false */
  readonly mutualTls?: boolean;
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
  }
}
