'use strict';
const http = require('http');
const httpProxy = require('http-proxy');
const { port, pick } = require('./common');

const proxy = httpProxy.createProxyServer({ agent: new http.Agent({ keepAlive: true, maxSockets: 64 }), xfwd: false });
proxy.on('error', (_e, _req, res) => { if (!res.headersSent) res.writeHead(502); res.end(); });
http.createServer((req, res) => proxy.web(req, res, { target: `http://127.0.0.1:${pick()}` })).listen(port, '127.0.0.1');
