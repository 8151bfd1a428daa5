import { DataPlane, registerRenderer } from './mesh';
import { IstioRenderer } from './istio/renderer';
import { nodeSidecarRenderer } from './sidecar/renderer';
import { gatewayApiRenderer } from './gateway-api/renderer';

registerRenderer(DataPlane.ISTIO, () => new IstioRenderer());
registerRenderer(DataPlane.NODE_SIDECAR, nodeSidecarRenderer);
registerRenderer(DataPlane.GATEWAY_API, gatewayApiRenderer);

export * from './mesh';
export type { DroppedFeature } from './capability-gate';
export { DROPPABLE_FEATURES } from './capability-gate';
export * from './mesh-namespace';
export * from './mesh-workload';
export * from './traffic-route';
export * from './destination-policy';
export * from './mesh-gateway';
export * from './service-entry';
export * from './web-tier';
export * from './canary-release';
export * from './progressive-delivery';
export { ArgoRollout, ArgoAnalysisTemplate, ARGO_ROLLOUTS_API_VERSION } from './progressive/argo-rollouts';
export { FlaggerCanary, FLAGGER_API_VERSION } from './progressive/flagger';
export * from './istio/resources';
export { IstioRenderer, ISTIO_INJECTION_LABEL, ISTIO_INJECT_POD_KEY, renderServiceEntry as renderIstioServiceEntry } from './istio/renderer';
export {
  NodeSidecarRenderer, DEFAULT_SIDECAR_IMAGE, ROUTE_TABLE_CONFIGMAP, SIDECAR_CONTAINER, SIDECAR_UID, NO_PROXY, listenPort,
} from './sidecar/renderer';
export * from './gateway-api/resources';
export { GatewayApiRenderer, gatewayApiDuration, ISTIO_AMBIENT_LABEL, LINKERD_INJECT_ANNOTATION } from './gateway-api/renderer';
export * from './ingress-gateway';
export * from './bookinfo-app';
export * from './jaeger-addon';
export * from './prometheus-addon';
export * from './kiali-addon';
export type { AddonUi } from './addon-common';
export * from './mesh-tracing';
