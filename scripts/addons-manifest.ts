// The observability addons (Jaeger, Prometheus, Kiali) as YAML, for `npm run test:cluster`,
// which sends every object through the API server: no scenario chart carries Prometheus or
// Kiali. Usage: node -r ts-node/register/transpile-only scripts/addons-manifest.ts istio|node-sidecar
import { App, Yaml } from 'cdk8s';
import { DataPlane, JaegerAddon, KialiAddon, MeshChart, PrometheusAddon } from '../constructs';

const plane = process.argv[2] === 'node-sidecar' ? DataPlane.NODE_SIDECAR : DataPlane.ISTIO;
const chart = new MeshChart(new App(), 'addons', { dataPlane: plane });
const jaeger = new JaegerAddon(chart, 'jaeger');
const prometheus = new PrometheusAddon(chart, 'prometheus', { ui: { serviceType: 'NodePort', nodePort: 30090 } });
new KialiAddon(chart, 'kiali', { prometheus, jaeger, ui: { serviceType: 'NodePort', nodePort: 30201 } });
process.stdout.write(Yaml.stringify(...chart.toJson()));
