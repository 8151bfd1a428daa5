// Each chart against the facts of the seed scenario it reproduces.
import { CHART_VARIANTS } from '../charts';
import { find, ofKind, synthEntry, chartEntry, K8sObject, synthVariant, variant } from './support/synth';

const chart = (name: string) => synthEntry(chartEntry(name));
const container = (d: K8sObject) => d.spec.template.spec.containers.find((c: { name: string }) => c.name !== 'mesh-proxy');
const podLabels = (d: K8sObject) => d.spec.template.metadata.labels;
const selects = (svc: K8sObject, d: K8sObject) =>
  Object.entries(svc.spec.selector).every(([k, v]) => podLabels(d)[k] === v);

describe('web-basic', () => {
  const objs = chart('web-basic');

  test('a busybox client that sleeps', () => {
    const client = find(objs, 'Deployment', 'client');
    expect(container(client).image).toMatch(/busybox/);
    expect(container(client).command).toEqual(['/bin/sh', '-c', 'sleep 3600']);
  });

  test('busybox httpd serves "hello httpd" on 8080 as non-root from a writable path', () => {
    const httpd = find(objs, 'Deployment', 'httpd');
    const c = container(httpd);
    expect(c.image).toMatch(/busybox/);
    expect(c.command.join(' ')).toContain("echo 'hello httpd' > /var/www/index.html; httpd -f -p 8080 -h /var/www");
    expect(c.ports).toEqual([{ containerPort: 8080, name: 'http' }]);
    expect(c.securityContext.runAsNonRoot).toBe(true);
    expect(c.securityContext.runAsUser).toBeGreaterThan(0);
    expect(c.volumeMounts).toEqual([expect.objectContaining({ mountPath: '/var/www' })]);
  });

  test('tomcat runs kubeguide/tomcat-app:v1 with its writable directories', () => {
    const c = container(find(objs, 'Deployment', 'tomcat'));
    expect(c.image).toBe('docker.io/kubeguide/tomcat-app:v1');
    expect(c.volumeMounts.map((m: any) => m.mountPath)).toEqual(expect.arrayContaining(['/usr/local/tomcat/logs', '/usr/local/tomcat/work', '/usr/local/tomcat/temp']));
  });

  test('tomcat-svc and httpd-svc on 8080, named http, each selecting its own pods', () => {
    for (const [svc, dep] of [['tomcat-svc', 'tomcat'], ['httpd-svc', 'httpd']]) {
      const s = find(objs, 'Service', svc);
      expect(s.spec.ports).toEqual([{ name: 'http', port: 8080, targetPort: 8080, protocol: 'TCP' }]);
      expect(selects(s, find(objs, 'Deployment', dep))).toBe(true);
      const other = dep === 'httpd' ? 'tomcat' : 'httpd';
      expect(selects(s, find(objs, 'Deployment', other))).toBe(false);
    }
  });

  test('outside the mesh: no injection marker, no Istio objects', () => {
    for (const d of ofKind(objs, 'Deployment')) expect(podLabels(d)['sidecar.istio.io/inject']).toBeUndefined();
    expect(objs.filter((o) => o.apiVersion.includes('istio'))).toEqual([]);
  });
});

describe('web-round-robin', () => {
  const objs = chart('web-round-robin');
  test('web-svc selects both backends and not the client', () => {
    const web = find(objs, 'Service', 'web-svc');
    expect(web.spec.ports).toEqual([{ name: 'http', port: 8080, targetPort: 8080, protocol: 'TCP' }]);
    expect(selects(web, find(objs, 'Deployment', 'httpd'))).toBe(true);
    expect(selects(web, find(objs, 'Deployment', 'tomcat'))).toBe(true);
    expect(selects(web, find(objs, 'Deployment', 'client'))).toBe(false);
  });
});

describe('web-weighted', () => {
  const objs = chart('web-weighted');
  test('VirtualService web-svc-vs on host web-svc: tomcat-svc 20, httpd-svc 80', () => {
    const vs = find(objs, 'VirtualService', 'web-svc-vs');
    expect(vs.spec.hosts).toEqual(['web-svc']);
    const weights = Object.fromEntries(vs.spec.http[0].route.map((r: any) => [r.destination.host, r.weight]));
    expect(weights).toEqual({ 'tomcat-svc': 20, 'httpd-svc': 80 });
  });
  test('client and backends are all in the mesh (the split happens at the client\'s proxy)', () => {
    for (const name of ['client', 'httpd', 'tomcat']) {
      expect(podLabels(find(objs, 'Deployment', name))['sidecar.istio.io/inject']).toBe('true');
    }
  });
  test('every route destination is a Service of the chart', () => {
    const vs = find(objs, 'VirtualService', 'web-svc-vs');
    for (const r of vs.spec.http[0].route) find(objs, 'Service', r.destination.host);
  });
});

describe.each(['springboot-canary', 'springboot-canary-timeout'])('%s', (name) => {
  const objs = chart(name);
  test('namespaces springistiodemo and istioclient, both labelled for injection', () => {
    for (const ns of ['springistiodemo', 'istioclient']) {
      expect(find(objs, 'Namespace', ns).metadata.labels).toEqual({ 'istio-injection': 'enabled' });
    }
  });
  test('springbootapp v1 and v2 behind springbootapp-svc:8080', () => {
    const svc = find(objs, 'Service', 'springbootapp-svc', 'springistiodemo');
    expect(svc.spec.ports[0]).toMatchObject({ name: 'http', port: 8080 });
    for (const v of ['v1', 'v2']) {
      const d = find(objs, 'Deployment', `springbootapp-${v}`, 'springistiodemo');
      expect(podLabels(d)).toMatchObject({ app: 'springbootapp', version: v });
      expect(selects(svc, d)).toBe(true);
      // Injected by the namespace label alone: a pod marker too could only confuse.
      expect(podLabels(d)['sidecar.istio.io/inject']).toBeUndefined();
    }
  });
  test('subsets v1 and v2 by version label, and a 70/30 split', () => {
    const dr = find(objs, 'DestinationRule', 'springbootapp-svc-dr');
    expect(dr.spec.host).toBe('springbootapp-svc');
    expect(dr.spec.subsets).toEqual([{ name: 'v1', labels: { version: 'v1' } }, { name: 'v2', labels: { version: 'v2' } }]);
    const vs = find(objs, 'VirtualService', 'springbootapp-svc-vs');
    expect(vs.spec.http[0].route).toEqual([
      { destination: { host: 'springbootapp-svc', subset: 'v1' }, weight: 70 },
      { destination: { host: 'springbootapp-svc', subset: 'v2' }, weight: 30 },
    ]);
    expect(vs.spec.http[0].timeout).toBe(name.endsWith('timeout') ? '0.002s' : undefined);
  });
  test('a busybox client in istioclient', () => {
    const c = find(objs, 'Deployment', 'busyclient', 'istioclient');
    expect(container(c).command).toEqual(['/bin/sh', '-c', 'sleep 3600']);
    expect(podLabels(c)).toMatchObject({ app: 'busyclient', version: 'v1' });
  });
});

describe('demo-gateway', () => {
  const objs = chart('demo-gateway');
  test('nginx with a container port named http-web-svc; demo-svc port 80 targets it by name', () => {
    const d = find(objs, 'Deployment', 'nginx');
    expect(container(d).ports).toEqual([{ containerPort: 8080, name: 'http-web-svc' }]);
    const svc = find(objs, 'Service', 'demo-svc');
    expect(svc.spec.ports).toEqual([{ name: 'http-web-svc', port: 80, targetPort: 'http-web-svc', protocol: 'TCP' }]);
    expect(selects(svc, d)).toBe(true);
  });
  test('Gateway demo-gateway on port 80 HTTP for any host at the default ingress gateway', () => {
    const gw = find(objs, 'Gateway', 'demo-gateway');
    expect(gw.spec).toEqual({
      selector: { istio: 'ingressgateway' },
      servers: [{ port: { number: 80, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }],
    });
  });
  test('a VirtualService bound to it routes exact "/" to demo-svc:80 (a host that exists)', () => {
    const vs = ofKind(objs, 'VirtualService');
    expect(vs).toHaveLength(1);
    expect(vs[0].spec).toEqual({
      hosts: ['*'],
      gateways: ['demo-gateway'],
      http: [{ match: [{ uri: { exact: '/' } }], route: [{ destination: { host: 'demo-svc', port: { number: 80 } } }] }],
    });
  });
});

describe('every chart', () => {
  // Every chart the app synthesizes, on both data planes, so a new chart is held to
  // these rules without editing this file.
  const all = CHART_VARIANTS.map((v) => v.id);
  const chart = (id: string) => synthVariant(variant(id));
  test.each(all)('%s: every Service selects some pod template and every Deployment selects its own pods', (name) => {
    const objs = chart(name);
    // Per-subset Services (node sidecar) mirror DestinationRule subsets, which may name
    // versions that are not deployed (Bookinfo's ratings v2-mysql): those are exempt.
    for (const s of ofKind(objs, 'Service').filter((x) => !x.metadata.labels?.['mesh.cdk8s.io/subset-of'])) {
      expect(ofKind(objs, 'Deployment').some((d) => selects(s, d) && (d.metadata.namespace === s.metadata.namespace))).toBe(true);
    }
    for (const d of ofKind(objs, 'Deployment')) {
      for (const [k, v] of Object.entries(d.spec.selector.matchLabels)) expect(podLabels(d)[k]).toBe(v);
    }
  });
  test.each(all)('%s: pods are secure by default', (name) => {
    for (const d of ofKind(chart(name), 'Deployment')) {
      const pod = d.spec.template.spec;
      expect(pod.securityContext.runAsNonRoot).toBe(true);
      for (const c of pod.containers) {
        expect(c.securityContext).toMatchObject({
          runAsNonRoot: true, allowPrivilegeEscalation: false, privileged: false,
          capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
        });
        expect(c.securityContext.runAsUser).not.toBe(1337);
        expect(c.resources.requests).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
        expect(c.resources.limits).toEqual({ cpu: expect.any(String), memory: expect.any(String) });
      }
    }
  });
  test.each(all)('%s: Service ports follow Istio\'s protocol naming', (name) => {
    for (const s of ofKind(chart(name), 'Service')) {
      // A port's appProtocol tells Istio its protocol when the name does not (Istio's own addons keep such names).
      for (const p of s.spec.ports) expect(p.appProtocol ?? p.name).toMatch(/^(http|http2|https|grpc|grpc-web|tcp|tls|mongo|mysql|redis)(-.*)?$/);
    }
  });
});
