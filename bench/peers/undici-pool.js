'use strict';
const http = require('http');
const { Pool } = require('undici');
const { port, v1, v2, pick, endToEnd } = require('./common');

const pools = new Map([v1, v2].map((p) => [p, new Pool(`http://127.0.0.1:${p}`, { connections: 64, pipelining: 1 })]));
http.createServer((req, res) => {
  pools.get(pick()).stream({ path: req.url, method: req.method, headers: endToEnd(req.headers), body: req.method === 'GET' || req.method === 'HEAD' ? null : req },
    ({ statusCode, headers }) => { res.writeHead(statusCode, endToEnd(headers)); return res; },
    (err) => { if (err && !res.headersSent) { res.writeHead(502); res.end(); } });
}).listen(port, '127.0.0.1');
