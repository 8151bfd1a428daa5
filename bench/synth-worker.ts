// One measurement, in its own process so peak RSS belongs to it alone:
//   node -r ts-node/register/transpile-only bench/synth-worker.ts <constructs|plus|raw> <services>
// Prints one JSON line: { mode, services, objects, seconds, rssMB, bytes }.
import { ApiObject, App, Chart, JsonPatch } from 'cdk8s';
import * as kplus from 'cdk8s-plus-28';
import { k8s } from 'cdk8s-plus-28';
import { DestinationPolicy, MeshWorkload, TrafficRoute } from '../constructs';
import { canonicalMemory, containerResources, omitServerDefaults, restrictedContainer } from '../constructs/server-form';

const [mode, countText] = process.argv.slice(2);
const count = Number(countText);
const NS = 'bench';

function withConstructs(chart: Chart, i: number) {
  const w = new MeshWorkload(chart, `svc${i}`, { app: `svc-${i}`, image: 'busybox:1.36', port: 8080, namespace: NS });
  const policy = new DestinationPolicy(chart, `dr${i}`, { name: `svc-${i}`, service: w, subsets: [{ name: 'v1' }] });
  const ref = { serviceName: w.serviceName, serviceNamespace: NS, servicePorts: w.servicePorts, subsetNames: policy.subsets.map((s) => s.name) };
  new TrafficRoute(chart, `vs${i}`, { name: `svc-${i}`, namespace: NS, hosts: [ref], http: [{ route: [{ to: ref, subset: 'v1' }], timeout: '5s' }] });
}

/** The DestinationRule and VirtualService both baselines write as raw ApiObjects. */
function istioObjects(chart: Chart, i: number, name: string) {
  new ApiObject(chart, `dr${i}`, {
    apiVersion: 'networking.istio.io/v1beta1', kind: 'DestinationRule', metadata: { name, namespace: NS },
    spec: { host: name, subsets: [{ name: 'v1', labels: { version: 'v1' } }] },
  });
  new ApiObject(chart, `vs${i}`, {
    apiVersion: 'networking.istio.io/v1beta1', kind: 'VirtualService', metadata: { name, namespace: NS },
    spec: { hosts: [name], http: [{ route: [{ destination: { host: name, subset: 'v1' } }], timeout: '5s' }] },
  });
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
  istioObjects(chart, i, name);
}

/**
 * The same four objects with cdk8s-plus, as MeshWorkload uses it (a kplus.Deployment and the
 * k8s.KubeService L1), and the Istio objects as ApiObjects: the floor for constructs built on
 * cdk8s-plus, so that the bench tells the constructs' own cost from cdk8s-plus's.
 */
function plus(chart: Chart, i: number) {
  const name = `svc-${i}`;
  const labels = { app: name, version: 'v1' };
  const d = new kplus.Deployment(chart, `d${i}`, {
    metadata: { name, namespace: NS, labels },
    replicas: 1,
    select: false,
    podMetadata: { labels: { ...labels, 'sidecar.istio.io/inject': 'true' }, annotations: { 'sidecar.istio.io/inject': 'true' } },
    securityContext: { ensureNonRoot: true, user: 25000, group: 26000, fsGroup: 26000 },
  });
  d.select(kplus.LabelSelector.of({ labels }));
  ApiObject.of(d).addJsonPatch(JsonPatch.remove('/spec/template/metadata/labels/cdk8s.io~1metadata.addr'));
  const mem = { request: 64, limit: 256 };
  d.addContainer({
    name, image: 'busybox:1.36', imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT, envVariables: {},
    ports: [{ number: 8080, name: 'http' }], startup: kplus.Probe.fromTcpSocket({ port: 8080, failureThreshold: 3 }),
    securityContext: restrictedContainer(25000, 26000, true), resources: containerResources({ request: 50, limit: 500 }, mem),
  });
  canonicalMemory(ApiObject.of(d), 0, mem);
  omitServerDefaults(ApiObject.of(d));
  new k8s.KubeService(chart, `s${i}`, {
    metadata: { name, namespace: NS, labels: { app: name } },
    spec: { type: 'ClusterIP', selector: { app: name }, ports: [{ name: 'http', port: 8080, targetPort: k8s.IntOrString.fromNumber(8080), protocol: 'TCP' }] },
  });
  istioObjects(chart, i, name);
}

if (mode === "diff") {
  // Show where a baseline differs from the constructs for one service (both must write the same objects).
  const yamlOf = (f: (c: Chart, i: number) => void) => { const a = new App(); f(new Chart(a, 'bench'), 0); return a.synthYaml(); };
  const c = yamlOf(withConstructs);
  const others = { raw: yamlOf(raw), plus: yamlOf(plus) };
  const differ = Object.entries(others).filter(([, y]) => y !== c);
  console.log(differ.length === 0 ? 'identical' : differ.map(([m, y]) => `constructs:\n${c}\n===== ${m}:\n${y}`).join('\n'));
  process.exit(0);
}

const start = process.hrtime.bigint();
const app = new App({ outdir: '/dev/null' });
const chart = new Chart(app, 'bench');
const build = mode === 'raw' ? raw : mode === 'plus' ? plus : withConstructs;
for (let i = 0; i < count; i++) build(chart, i);
const yaml = app.synthYaml();
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const objects = chart.node.findAll().filter((c) => c instanceof ApiObject).length;
console.log(JSON.stringify({ mode, services: count, objects, seconds, rssMB: process.resourceUsage().maxRSS / 1024, bytes: yaml.length }));
