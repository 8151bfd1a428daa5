import { ApiObject, Chart } from 'cdk8s';
import { k8s } from 'cdk8s-plus-28';
import { Construct } from 'constructs';
import { Check, checkDns1123Label } from '../model';
import type { DestinationPolicyRendering } from './mesh';

/** The chart's Service `name` in `namespace` (objects without a namespace are in the chart's, else "default"). */
export function findChartService(chart: Chart, name: string, namespace: string | undefined): ApiObject | undefined {
  const ns = (n: string | undefined) => n ?? chart.namespace ?? 'default';
  return chart.node.findAll().find((c): c is ApiObject => c instanceof ApiObject && c.kind === 'Service' && c.name === name && ns(c.metadata.namespace) === ns(namespace));
}

/** The name of the Service that stands for `subset` of `service`. */
export function subsetServiceName(service: string, subset: string): string {
  return `${service}-${subset}`;
}

/**
 * Subsets as Services: `<service>-<subset>`, selecting the base Service's pods that carry
 * the subset's labels, on the same ports. For data planes that route to Services, not to
 * labelled endpoints (the node sidecar; Gateway API, whose backendRefs are Services).
 * `dataPlane` names the data plane in the messages.
 */
export function renderSubsetServices(scope: Construct, chart: Chart, p: DestinationPolicyRendering, dataPlane: string): void {
  const check: Check = new Check(scope.node.path);
  if (p.subsets.length === 0) return;
  const svcNs = p.service.serviceNamespace ?? p.namespace;
  if (p.service.serviceName.includes('.')) {
    check.fail('service', p.service.serviceName, `a Service of this chart for subsets on the ${dataPlane} data plane (subsets become per-subset Services)`);
  }
  const base = findChartService(chart, p.service.serviceName, svcNs);
  if (!base) {
    check.fail('service', p.service.serviceName, `a Service named "${p.service.serviceName}" defined in this chart before the policy (${dataPlane} subsets are Services built from it)`);
  }
  const baseSpec = base.toJson().spec as { selector?: Record<string, string>; ports?: Array<Record<string, unknown>> };
  for (const s of p.subsets) {
    const name = subsetServiceName(p.service.serviceName, s.name);
    checkDns1123Label(check, `subsets.${s.name} service name`, name);
    new k8s.KubeService(scope, `Subset-${s.name}`, {
      metadata: { name, namespace: svcNs, labels: { 'mesh.cdk8s.io/subset-of': p.service.serviceName, 'mesh.cdk8s.io/subset': s.name } },
      spec: {
        type: 'ClusterIP',
        selector: { ...baseSpec.selector, ...s.labels },
        ports: (baseSpec.ports ?? []).map((port) => ({
          name: port.name as string | undefined,
          port: port.port as number,
          targetPort: typeof port.targetPort === 'string' ? k8s.IntOrString.fromString(port.targetPort) : k8s.IntOrString.fromNumber(port.targetPort as number),
          protocol: 'TCP',
          appProtocol: port.appProtocol as string | undefined,
        })),
      },
    });
  }
}
