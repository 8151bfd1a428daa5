import { Construct } from 'constructs';
import { MeshChart, MeshChartProps, WebBackendProps, WebTier } from '../constructs';
import { IMAGES, SLEEP_COMMAND } from './images';

export interface WebChartProps extends MeshChartProps {
  readonly images?: { readonly busybox?: string; readonly tomcat?: string };
}

/** The seeds' two web backends: busybox httpd and the kubeguide tomcat app, both on 8080. */
function backends(images: WebChartProps['images'], weights?: { httpd: number; tomcat: number }): WebBackendProps[] {
  return [
    {
      app: 'httpd',
      serviceName: 'httpd-svc',
      image: images?.busybox ?? IMAGES.busybox,
      // busybox httpd serves /var/www; that path is an emptyDir since the root filesystem is read-only.
      command: ['/bin/sh', '-c', "echo 'hello httpd' > /var/www/index.html; httpd -f -p 8080 -h /var/www"],
      port: 8080,
      writablePaths: ['/var/www'],
      weight: weights?.httpd,
    },
    {
      app: 'tomcat',
      serviceName: 'tomcat-svc',
      image: images?.tomcat ?? IMAGES.tomcat,
      port: 8080,
      // Tomcat writes logs, compiled JSPs, temp files and per-host config under CATALINA_HOME; the JVM writes /tmp.
      writablePaths: ['/usr/local/tomcat/logs', '/usr/local/tomcat/work', '/usr/local/tomcat/temp', '/usr/local/tomcat/conf/Catalina', '/tmp'],
      resources: { cpuMillis: { request: 100, limit: 1000 }, memoryMiB: { request: 256, limit: 768 } },
      startupSeconds: 120,
      weight: weights?.tomcat,
    },
  ];
}

function client(images: WebChartProps['images']) {
  return { app: 'client', image: images?.busybox ?? IMAGES.busybox, command: SLEEP_COMMAND };
}

/** Scenario 1: a client and two backends, each with its own Service; no mesh. */
export class WebBasicChart extends MeshChart {
  readonly tier: WebTier;
  constructor(scope: Construct, id: string, props: WebChartProps = {}) {
    super(scope, id, props);
    this.tier = new WebTier(this, 'web', { backends: backends(props.images), client: client(props.images), mesh: false });
  }
}

/** Scenario 2: plus `web-svc` selecting both backends (Kubernetes round robin); no mesh. */
export class WebRoundRobinChart extends MeshChart {
  readonly tier: WebTier;
  constructor(scope: Construct, id: string, props: WebChartProps = {}) {
    super(scope, id, props);
    this.tier = new WebTier(this, 'web', {
      backends: backends(props.images), client: client(props.images), front: { serviceName: 'web-svc' }, mesh: false,
    });
  }
}

/**
 * Scenario 3: `web-svc` split 20/80 between tomcat-svc and httpd-svc. The client is in
 * the mesh too: the split is applied by the caller's proxy.
 */
export class WebWeightedChart extends MeshChart {
  readonly tier: WebTier;
  constructor(scope: Construct, id: string, props: WebChartProps = {}) {
    super(scope, id, props);
    this.tier = new WebTier(this, 'web', {
      backends: backends(props.images, { httpd: 80, tomcat: 20 }),
      client: client(props.images),
      front: { serviceName: 'web-svc', routeName: 'web-svc-vs' },
      mesh: true,
    });
  }
}
