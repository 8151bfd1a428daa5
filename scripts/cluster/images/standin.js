#!/usr/bin/env node
// A stand-in for the scenario apps whose images cannot be pulled here (tomcat-app,
// springbootapp, ...). It answers every request with its name and version, so a test
// can tell which backend served it, e.g. "springbootapp v2: hello".
//
// Configuration (environment, set in each stand-in image and overridable by a pod):
//   STANDIN_APP      name in the answer (required)
//   STANDIN_VERSION  version in the answer (default v1)
//   STANDIN_IMAGE    the image this stands in for (shown on /, for people reading it)
//   PORT             listening port (default 8080)
//   STANDIN_DELAY_MS wait this long before answering (default 0)
//   STANDIN_STATUS   the status it answers with (default 200): a failing pod for outlier tests
// Only Node's standard library, so the image needs nothing but node.
'use strict';
const http = require('http');
const os = require('os');

const app = process.env.STANDIN_APP;
if (!app) {
  console.error('standin: STANDIN_APP is not set');
  process.exit(2);
}
const version = process.env.STANDIN_VERSION || 'v1';
const image = process.env.STANDIN_IMAGE || '';
const port = Number(process.env.PORT || 8080);
const delayMs = Number(process.env.STANDIN_DELAY_MS || 0);
const status = Number(process.env.STANDIN_STATUS || 200);

let closing = false;
const server = http.createServer((req, res) => {
  // Shutting down: this answer is the connection's last, so a caller's pooled connection
  // moves to a pod that stays (server.close() only closes connections idle at that moment).
  if (closing) res.setHeader('connection', 'close');
  const answer = () => {
    const path = req.url.split('?')[0];
    const word = path === '/' ? `stand-in for ${image || app}` : path.replace(/^\//, '');
    const body = `${app} ${version}: ${word} (pod ${os.hostname()})\n`;
    const headers = { 'content-type': 'text/plain; charset=utf-8', 'x-standin': `${app}/${version}` };
    // Echo the request id, so a test can follow one request across hops.
    if (req.headers['x-request-id']) headers['x-request-id'] = req.headers['x-request-id'];
    res.writeHead(status, headers);
    res.end(body);
  };
  req.resume();
  if (delayMs > 0) setTimeout(answer, delayMs);
  else answer();
});
server.listen(port, () => console.log(`standin: ${app} ${version} listening on :${port}`));
process.on('SIGTERM', () => {
  closing = true;
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
