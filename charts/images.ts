/**
 * Images the seed scenarios run. Pinned tags instead of `latest`, so a synth today
 * and a synth next year deploy the same thing; every chart takes overrides.
 */
export const IMAGES = {
  busybox: 'docker.io/library/busybox:1.36',
  tomcat: 'docker.io/kubeguide/tomcat-app:v1',
  // nginx's unprivileged build: listens on 8080 and runs as UID 101, so it needs no root.
  nginx: 'docker.io/nginxinc/nginx-unprivileged:1.27-alpine',
  springbootV1: 'springbootapp:v1',
  springbootV2: 'springbootapp:v2',
};

/** The seeds' busybox client: idles so that one can `kubectl exec` into it and call services. */
export const SLEEP_COMMAND = ['/bin/sh', '-c', 'sleep 3600'];
