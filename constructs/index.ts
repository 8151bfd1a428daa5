import { DataPlane, registerRenderer } from './mesh';
import { IstioRenderer } from './istio/renderer';

registerRenderer(DataPlane.ISTIO, () => new IstioRenderer());

export * from './mesh';
export * from './mesh-namespace';
export * from './mesh-workload';
export * from './traffic-route';
export * from './destination-policy';
export * from './mesh-gateway';
export * from './web-tier';
export * from './canary-release';
export * from './istio/resources';
export { IstioRenderer, ISTIO_INJECTION_LABEL, ISTIO_INJECT_POD_KEY } from './istio/renderer';
