// One measurement, in its own process so peak RSS belongs to it alone:
//   node -r ts-node/register/transpile-only bench/synth-worker.ts <constructs|raw> <services>
// Prints one JSON line: { mode, services, objects, seconds, rssMB, bytes }.
import { ApiObject, App, Chart } from 'cdk8s';
import { DestinationPolicy, MeshWorkload, TrafficRoute } from '../constructs';

const [mode, countText] = process.argv.slice(2);
const count = Number(countText);
const NS = 'bench';

function withConstructs(chart: Chart, i: number) {
  const w = new MeshWorkload(chart, `svc${i}`, { app: `svc-${i}`, image: 'busybox:1.36', port: 8080, namespace: NS });
  const policy = new DestinationPolicy(chart, `dr${i}`, { name: `svc-${i}`, service: w, subsets: [{ name: 'v1' }] });
  const ref = { serviceName: w.serviceName, serviceNamespace: NS, servicePorts: w.servicePorts, subsetNames: policy.subsets.map((s) => s.name) };
  new TrafficRoute(chart, `vs${i}`, { name: `svc-${i}`, namespace: NS, hosts: [ref], http: [{ route: [{ to: ref, subset: 'v1' }], timeout: '5s' }] });
}

/** The same four objects, written by hand as raw ApiObjects (the baseline). */
function raw(chart: Chart, i: number) {
  const name = `svc-${i}`;
  const labels = { app: name, version: 'v1' };
  const sc = {
    allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, privileged: false, readOnlyRootFilesystem: true,
    runAsGroup: 26000, runAsNonRoot: true, runAsUser: 25000, seccompProfile: { type: 'RuntimeDefault' },
  };
  new ApiObject(chart, `d${i}`, {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: NS, labels },
    spec: {
      progressDeadlineSeconds: 600, replicas: 1, selector: { matchLabels: labels },
      strategy: { rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' }, type: 'RollingUpdate' },
      template: {
        metadata: { labels: { ...labels, 'sidecar.istio.io/inject': 'true' }, annotations: { 'sidecar.istio.io/inject': 'true' } },
        spec: {
          automountServiceAccountToken: false, dnsPolicy: 'ClusterFirst', restartPolicy: 'Always',
          setHostnameAsFQDN: false, terminationGracePeriodSeconds: 30,
          securityContext: { fsGroup: 26000, fsGroupChangePolicy: 'Always', runAsGroup: 26000, runAsNonRoot: true, runAsUser: 25000 },
          containers: [{
            name, image: 'busybox:1.36', imagePullPolicy: 'IfNotPresent', ports: [{ containerPort: 8080, name: 'http' }],
            resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { cpu: '500m', memory: '256Mi' } },
            securityContext: sc, startupProbe: { tcpSocket: { port: 8080 }, failureThreshold: 3 },
          }],
        },
      },
    },
  });
  new ApiObject(chart, `s${i}`, {
    apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: NS, labels: { app: name } },
    spec: { type: 'ClusterIP', selector: { app: name }, ports: [{ name: 'http', port: 8080, targetPort: 8080, protocol: 'TCP' }] },
  });
  new ApiObject(chart, `dr${i}`, {
    apiVersion: 'networking.istio.io/v1beta1', kind: 'DestinationRule', metadata: { name, namespace: NS },
    spec: { host: name, subsets: [{ name: 'v1', labels: { version: 'v1' } }] },
  });
  new ApiObject(chart, `vs${i}`, {
    apiVersion: 'networking.istio.io/v1beta1', kind: 'VirtualService', metadata: { name, namespace: NS },
    spec: { hosts: [name], http: [{ route: [{ destination: { host: name, subset: 'v1' } }], timeout: '5s' }] },
  });
}

if (mode === "diff") {
  // Show where the two builds differ for one service (the raw baseline must write the same objects).
  const a = new App(); const ca = new Chart(a, "bench"); withConstructs(ca, 0);
  const b = new App(); const cb = new Chart(b, "bench"); raw(cb, 0);
  console.log(a.synthYaml() === b.synthYaml() ? "identical" : a.synthYaml() + "\n=====\n" + b.synthYaml());
  process.exit(0);
}

const start = process.hrtime.bigint();
const app = new App({ outdir: '/dev/null' });
const chart = new Chart(app, 'bench');
const build = mode === 'raw' ? raw : withConstructs;
for (let i = 0; i < count; i++) build(chart, i);
const yaml = app.synthYaml();
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const objects = chart.node.findAll().filter((c) => c instanceof ApiObject).length;
console.log(JSON.stringify({ mode, services: count, objects, seconds, rssMB: process.resourceUsage().maxRSS / 1024, bytes: yaml.length }));
