'use strict';
// The floor, not a peer: the least work a Node 20 reverse proxy can do here. http.Server
// on the client side; upstream, raw keep-alive sockets and Node's own llhttp binding
// (the technique of apps/sidecar/upstream.ts) with none of its limits, timeouts or
// error handling beyond a 502. No routing, metrics, logs or tracing. The bench reports
// it beside the sidecar (never in Q): what any Node proxy on this machine can reach.
const http = require('http');
const net = require('net');
const { HTTPParser } = require('_http_common');
const { port, v1, v2, pick, HOP } = require('./common');

const idle = new Map([[v1, []], [v2, []]]);

function connect(backend) {
  const c = { backend, res: null, keepAlive: false, socket: net.connect(backend, '127.0.0.1'), parser: new HTTPParser() };
  c.socket.setNoDelay(true);
  c.parser.initialize(HTTPParser.RESPONSE, {}, 0, 0);
  c.parser[HTTPParser.kOnHeaders] = () => {};
  c.parser[HTTPParser.kOnHeadersComplete] = (major, minor, headers, method, url, status, message, upgrade, keepAlive) => {
    c.keepAlive = keepAlive;
    const kept = [];
    for (let i = 0; i < headers.length; i += 2) if (!HOP.has(headers[i].toLowerCase())) kept.push(headers[i], headers[i + 1]);
    c.res.writeHead(status, kept);
    return 0;
  };
  c.parser[HTTPParser.kOnBody] = (chunk) => { c.res.write(chunk); };
  c.parser[HTTPParser.kOnMessageComplete] = () => {
    const res = c.res;
    c.res = null;
    res.end();
    if (c.keepAlive) idle.get(backend).push(c); else c.socket.destroy();
  };
  c.socket.on('data', (d) => { if (c.parser.execute(d) instanceof Error) c.socket.destroy(); });
  c.socket.on('error', () => undefined);
  c.socket.on('close', () => {
    const list = idle.get(backend);
    if (list.includes(c)) list.splice(list.indexOf(c), 1);
    if (c.res && !c.res.headersSent) { c.res.writeHead(502); c.res.end(); }
  });
  return c;
}

http.createServer((req, res) => {
  const backend = pick();
  const c = idle.get(backend).pop() || connect(backend);
  c.res = res;
  let head = `${req.method} ${req.url} HTTP/1.1\r\n`;
  for (let i = 0; i < req.rawHeaders.length; i += 2) if (!HOP.has(req.rawHeaders[i].toLowerCase())) head += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
  c.socket.write(`${head}\r\n`, 'latin1');
  req.resume(); // GET only in the bench: no request body is forwarded
}).listen(port, '127.0.0.1');
