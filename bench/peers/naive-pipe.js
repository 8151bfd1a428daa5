'use strict';
const http = require('http');
const { port, pick, endToEnd } = require('./common');

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
http.createServer((req, res) => {
  const up = http.request({ host: '127.0.0.1', port: pick(), path: req.url, method: req.method, headers: endToEnd(req.headers), agent }, (r) => {
    res.writeHead(r.statusCode, endToEnd(r.headers));
    r.pipe(res);
  });
  up.on('error', () => { if (!res.headersSent) res.writeHead(502); res.end(); });
  req.pipe(up);
}).listen(port, '127.0.0.1');
