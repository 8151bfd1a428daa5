/**
 * Egress and protocols through the node sidecar, as pods (issue 30's cluster half): under
 * REGISTRY_ONLY a pod's HTTPS call to a ServiceEntry host goes through its proxy's CONNECT
 * tunnel and another host is refused; a WebSocket chat whose members come in through the
 * ingress gateway and through a sidecar; a gRPC client and two gRPC server versions with
 * the 80/20 split and a header match observed call by call.
 *
 * The chart is made here, like policy.e2e.ts's. The "external" HTTPS API is the stand-in
 * image in HTTPS mode with a certificate from a CA made for this run, deployed beside the
 * chart but not by it, so the mesh knows it only through the ServiceEntry. The clients are
 * test/e2e/support/pod-client.js, run with node in the pods' app containers (the stand-in
 * image has node), which take the proxy from HTTPS_PROXY / HTTP_PROXY as the renderer sets them.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Testing } from 'cdk8s';
import { stringify } from 'yaml';
import { CanaryRelease, DataPlane, MeshChart, MeshGateway, MeshNamespace, MeshWorkload, ServiceEntry, TrafficRoute } from '../../constructs';
import { removeManifest } from './support/chart';
import { clusterReachable, execIn, K8sObject, kubectlOk, Pod, podsOf, proxyStats, sample, waitAvailable } from './support/kube';

const NS = 'protocols';
const NODE_IMAGE = 'docker.io/library/springbootapp:v1'; // the stand-in: node and busybox
const PARTNER = 'api.partner.test';
const SECURE = `secure.${NS}.svc.cluster.local`;

function chart(): K8sObject[] {
  const c = new MeshChart(Testing.app(), 'protocols', { dataPlane: DataPlane.NODE_SIDECAR, sidecar: { outboundTrafficPolicy: 'REGISTRY_ONLY' } });
  const namespace = new MeshNamespace(c, 'ns', { name: NS });
  // The partner's API as Istio's egress tasks declare an external host: its name, port 443
  // (TLS: the proxy only tunnels it), found by DNS at the stand-in's Service.
  new ServiceEntry(c, 'partner', {
    name: 'partner-api', namespace: NS, hosts: [PARTNER], location: 'MESH_EXTERNAL', resolution: 'DNS',
    ports: [{ number: 443, name: 'tls', protocol: 'TLS' }],
    endpoints: [{ address: SECURE, ports: { tls: 8443 } }],
  });

  const chat = new MeshWorkload(c, 'chat', { app: 'chat', image: NODE_IMAGE, port: 8080, namespace, env: { STANDIN_APP: 'chat' } });
  const gateway = new MeshGateway(c, 'gateway', { name: 'chat-gateway', namespace: NS, servers: [{ port: 80, protocol: 'HTTP', name: 'http', hosts: ['chat.example.test'] }] });
  // Each way in marks the handshake, so the chat's welcome shows which rules applied.
  new TrafficRoute(c, 'chat-edge', {
    name: 'chat-edge', namespace: NS, hosts: ['chat.example.test'], gateways: [gateway.refFrom(NS)],
    http: [{ route: [{ to: chat, port: 8080 }], headers: { request: { set: { 'x-chat-route': 'gateway' } } } }],
  });
  new TrafficRoute(c, 'chat-mesh', {
    name: 'chat', namespace: NS, hosts: [chat],
    http: [{ route: [{ to: chat, port: 8080 }], headers: { request: { set: { 'x-chat-route': 'sidecar' } } } }],
  });

  const grpcVersion = (version: string) => ({ version, image: NODE_IMAGE, env: { STANDIN_APP: 'greeter', STANDIN_VERSION: version, STANDIN_GRPC: '1', PORT: '9090' } });
  new CanaryRelease(c, 'greeter', {
    app: 'greeter', port: 9090, portName: 'grpc', namespace,
    stable: grpcVersion('v1'), canary: grpcVersion('v2'), canaryWeight: 20,
    canaryHeader: { name: 'x-canary', match: { exact: 'yes' } },
  });
  new MeshWorkload(c, 'client', { app: 'client', image: NODE_IMAGE, command: ['sh', '-c', 'sleep 3600'], service: false, namespace });
  return Testing.synth(c) as K8sObject[];
}

/** The external HTTPS API: the stand-in in HTTPS mode, outside the chart and the mesh. */
function external(): K8sObject[] {
  const labels = { app: 'secure' };
  return [{
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'secure', namespace: NS, labels },
    spec: {
      replicas: 1, selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          automountServiceAccountToken: false, terminationGracePeriodSeconds: 2,
          securityContext: { runAsNonRoot: true, runAsUser: 65534, runAsGroup: 65534, seccompProfile: { type: 'RuntimeDefault' } },
          volumes: [{ name: 'tls', secret: { secretName: 'secure-tls' } }],
          containers: [{
            name: 'secure', image: NODE_IMAGE, ports: [{ containerPort: 8443, name: 'https' }],
            env: [{ name: 'STANDIN_APP', value: 'secure' }, { name: 'PORT', value: '8443' }, { name: 'STANDIN_TLS_DIR', value: '/tls' }],
            volumeMounts: [{ name: 'tls', mountPath: '/tls', readOnly: true }],
            readinessProbe: { tcpSocket: { port: 8443 }, periodSeconds: 2 },
            securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
            resources: { requests: { cpu: '10m', memory: '32Mi' }, limits: { cpu: '200m', memory: '128Mi' } },
          }],
        },
      },
    },
  }, {
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'secure', namespace: NS },
    spec: { selector: labels, ports: [{ name: 'https', port: 8443, targetPort: 8443 }] },
  } as K8sObject];
}

const CLIENT_JS = readFileSync(join(__dirname, 'support', 'pod-client.js'), 'utf8');
/** pod-client.js in a container: its one JSON line. */
async function run(pod: Pod, container: string, mode: 'https' | 'ws' | 'grpc', opts: object): Promise<any> {
  const r = await execIn(pod, container, ['node', '-e', CLIENT_JS, JSON.stringify([mode, opts])], 90_000);
  if (r.code !== 0) throw new Error(`pod-client ${mode} in ${pod.name}/${container}: exit ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

describe('egress, WebSocket and gRPC through the node sidecar, in pods', () => {
  const dir = mkdtempSync(join(tmpdir(), 'e2e-protocols-'));
  const file = join(dir, 'protocols.k8s.yaml');
  const objects = [...chart(), ...external()];
  const deployments = objects.filter((o) => o.kind === 'Deployment');
  let client: Pod;
  let secure: Pod;
  // A CA of this run's own and the partner's certificate, for its name only.
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=e2e partner CA', '-keyout', 'ca.key', '-out', 'ca.crt');
  ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', `/CN=${PARTNER}`, '-keyout', 'tls.key', '-out', 'tls.csr');
  writeFileSync(join(dir, 'ext'), `subjectAltName=DNS:${PARTNER}\n`);
  ssl('x509', '-req', '-in', 'tls.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-extfile', 'ext', '-out', 'tls.crt');
  const ca = readFileSync(join(dir, 'ca.crt'), 'utf8');

  beforeAll(async () => {
    const unreachable = await clusterReachable();
    if (unreachable) throw new Error(unreachable);
    writeFileSync(file, objects.map((o) => stringify(o)).join('---\n'));
    // The namespace first (the Secret lives in it), then the Secret, then the rest.
    await kubectlOk(['apply', '-f', '-'], { input: stringify(objects.find((o) => o.kind === 'Namespace')) });
    await kubectlOk(['create', 'secret', 'tls', 'secure-tls', '-n', NS, '--cert', join(dir, 'tls.crt'), '--key', join(dir, 'tls.key')]);
    await kubectlOk(['apply', '-f', file], { timeoutMs: 60_000 });
    await waitAvailable(deployments, 180_000);
    const pods = await podsOf(deployments);
    client = pods.find((p) => p.deployment === 'client')!;
    secure = pods.find((p) => p.deployment === 'secure')!;
  }, 300_000);
  afterAll(() => removeManifest(file, objects), 300_000);

  test(`HTTPS to the ServiceEntry host ${PARTNER}: tunnelled by the client's proxy to the entry's endpoint, certificate checked`, async () => {
    const r = await run(client, 'client', 'https', { authority: `${PARTNER}:443`, servername: PARTNER, ca });
    expect(r).toMatchObject({ connect: 200, status: 200, authorized: true });
    expect(r.body).toMatch(/^secure v1: stand-in for \S+ \(pod secure-/);
    const stats = await proxyStats(client);
    expect(sample(stats, 'istio_tcp_connections_opened_total', [`destination_service="${PARTNER}"`])).toBeGreaterThanOrEqual(1);
  });

  test('HTTPS to a host the mesh does not know is refused under REGISTRY_ONLY (403 with the reason), though the host answers', async () => {
    const refused = await run(client, 'client', 'https', { authority: `${SECURE}:8443`, servername: PARTNER, ca });
    expect(refused.connect).toBe(403);
    expect(refused.body).toContain(`${SECURE} is not a service of this mesh (nor a ServiceEntry host) and outboundTrafficPolicy is REGISTRY_ONLY`);
    // The same host and port answer a pod without a proxy: the refusal is the policy's.
    const direct = await execIn(secure, 'secure', ['node', '-e', `require('https').get({ host: '${SECURE}', port: 8443, servername: '${PARTNER}', ca: ${JSON.stringify(ca)} }, (r) => { console.log(r.statusCode); process.exit(0); }).on('error', (e) => console.log(e.message))`]);
    expect(direct.stdout.trim()).toBe('200');
  });

  test('a WebSocket chat: one member through the ingress gateway, one through its sidecar, each reads the other', async () => {
    const [edge, meshed] = await Promise.all([
      // From outside the mesh (the external pod has node and no proxy) to the gateway's Service.
      run(secure, 'secure', 'ws', { url: `http://chat-gateway.${NS}.svc.cluster.local/chat`, host: 'chat.example.test', name: 'edge', send: 'hello from outside', peer: 'meshed', members: 2 }),
      run(client, 'client', 'ws', { url: `http://chat.${NS}.svc.cluster.local:8080/chat`, proxy: 'env:HTTP_PROXY', name: 'meshed', send: 'hello from the mesh', peer: 'edge', members: 2 }),
    ]);
    expect(edge).toMatchObject({ status: 101, acceptOk: true });
    expect(meshed).toMatchObject({ status: 101, acceptOk: true });
    // The routes' header rules applied to each handshake.
    expect(edge.messages[0]).toMatch(/^welcome to chat v1: chat \(pod chat-.*\) route=gateway$/);
    expect(meshed.messages[0]).toMatch(/^welcome to chat v1: chat \(pod chat-.*\) route=sidecar$/);
    expect(edge.messages).toContain('meshed: hello from the mesh');
    expect(meshed.messages).toContain('edge: hello from outside');
  });

  test('gRPC, two versions: 100 calls split 80/20 by the route, x-canary: yes always v2, statuses in the proxy\'s metrics', async () => {
    const authority = `greeter.${NS}.svc.cluster.local:9090`;
    const split = await run(client, 'client', 'grpc', { authority, path: '/standin.Greeter/Hello', n: 100 });
    process.stdout.write(`e2e: gRPC split ${JSON.stringify(split)}\n`);
    expect(split).toMatchObject({ connect: 200, statuses: { 0: 100 }, byVersion: { 'greeter v1': 80, 'greeter v2': 20 } });
    const canary = await run(client, 'client', 'grpc', { authority, path: '/standin.Greeter/Hello', n: 10, metadata: { 'x-canary': 'yes' } });
    expect(canary).toMatchObject({ connect: 200, byVersion: { 'greeter v2': 10 } });
    const stats = await proxyStats(client);
    const calls = (version: string) => sample(stats, 'istio_requests_total', [`destination_service="greeter.${NS}.svc.cluster.local"`, `destination_version="${version}"`, 'grpc_response_status="0"', 'request_protocol="grpc"']);
    expect({ v1: calls('v1'), v2: calls('v2') }).toEqual({ v1: 80, v2: 30 });
  });
});
