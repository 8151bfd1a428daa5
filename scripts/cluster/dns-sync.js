#!/usr/bin/env node
// Cluster DNS for the local cluster. Debian has no CoreDNS, so dnsmasq answers on the
// bridge address and this process keeps its hosts file equal to the cluster's
// Services: it lists them, then follows a watch on the API server, and rewrites
// `<svc>.<ns>.svc.<domain>` lines whenever a ClusterIP appears or goes. dnsmasq reads
// the file through --hostsdir (inotify), so no signal is needed.
//
// usage: dns-sync.js KUBECONFIG HOSTS_FILE [CLUSTER_DOMAIN]
// Only Node's standard library: it runs before (and without) the project's npm install.
'use strict';
const fs = require('fs');
const https = require('https');
const path = require('path');

const [kubeconfigPath, hostsFile, domain = 'cluster.local'] = process.argv.slice(2);
if (!kubeconfigPath || !hostsFile) {
  console.error('usage: dns-sync.js KUBECONFIG HOSTS_FILE [CLUSTER_DOMAIN]');
  process.exit(2);
}

// The harness writes this kubeconfig itself: one cluster (server, CA data) and a token.
function readKubeconfig(file) {
  const text = fs.readFileSync(file, 'utf8');
  const field = (name) => {
    const m = text.match(new RegExp(`^\\s*${name}:\\s*(\\S+)\\s*$`, 'm'));
    if (!m) throw new Error(`${file}: no ${name}`);
    return m[1];
  };
  return {
    server: new URL(field('server')),
    ca: Buffer.from(field('certificate-authority-data'), 'base64'),
    token: field('token'),
  };
}

const kc = readKubeconfig(kubeconfigPath);
const services = new Map(); // "ns/name" -> clusterIP
let written = null;

function render() {
  const lines = [...services.entries()]
    .filter(([, ip]) => ip && ip !== 'None')
    .map(([key, ip]) => {
      const [ns, name] = key.split('/');
      return `${ip} ${name}.${ns}.svc.${domain}`;
    })
    .sort();
  const text = `# written by dns-sync.js from the cluster's Services\n${lines.join('\n')}\n`;
  if (text === written) return;
  const tmp = path.join(path.dirname(hostsFile), `.${path.basename(hostsFile)}.tmp`);
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, hostsFile);
  written = text;
}

function request(pathAndQuery, onResponse) {
  const req = https.request(
    {
      host: kc.server.hostname,
      port: kc.server.port,
      path: pathAndQuery,
      ca: kc.ca,
      headers: { Authorization: `Bearer ${kc.token}`, Accept: 'application/json' },
    },
    onResponse,
  );
  req.on('error', () => setTimeout(sync, 1000));
  req.end();
}

function sync() {
  request('/api/v1/services', (res) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c) => (body += c));
    res.on('end', () => {
      if (res.statusCode !== 200) return setTimeout(sync, 1000);
      const list = JSON.parse(body);
      services.clear();
      for (const s of list.items) services.set(`${s.metadata.namespace}/${s.metadata.name}`, s.spec.clusterIP);
      render();
      watch(list.metadata.resourceVersion);
    });
  });
}

function watch(resourceVersion) {
  request(`/api/v1/services?watch=1&allowWatchBookmarks=true&resourceVersion=${resourceVersion}&timeoutSeconds=300`, (res) => {
    if (res.statusCode !== 200) {
      res.resume();
      return setTimeout(sync, 1000);
    }
    let buffer = '';
    res.setEncoding('utf8');
    res.on('data', (chunk) => {
      buffer += chunk;
      let nl;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (!line.trim()) continue;
        const event = JSON.parse(line);
        if (event.type === 'ERROR') return res.destroy(); // e.g. 410 Gone: list again
        if (event.type === 'BOOKMARK') continue;
        const s = event.object;
        const key = `${s.metadata.namespace}/${s.metadata.name}`;
        if (event.type === 'DELETED') services.delete(key);
        else services.set(key, s.spec.clusterIP);
        render();
      }
    });
    // A watch ends after timeoutSeconds or on error; a full list after it keeps no stale entry.
    res.on('close', () => setTimeout(sync, 200));
  });
}

process.on('SIGTERM', () => process.exit(0));
sync();
