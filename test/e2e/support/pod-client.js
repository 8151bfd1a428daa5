// Clients that the protocol e2e (test/e2e/protocols.e2e.ts) runs inside pods with
// `node -e "<this file>" '<json>'`: the images there have node and nothing else, so these
// are written on Node's standard library as an app would use a proxy (HTTPS_PROXY /
// HTTP_PROXY from the pod's environment). Each prints one JSON line and exits 0; the
// test asserts on it.
//   ["https", {authority, servername, ca, path}]   HTTPS through a CONNECT tunnel, CA-checked
//   ["ws", {url, proxy?, host?, name, send, peer, members, timeoutMs}]  one member of a chat;
//                                                  proxy "env:HTTP_PROXY" takes it from the environment
//   ["grpc", {authority, path, n, metadata?}]      n unary gRPC calls over h2c in a tunnel
'use strict';
const crypto = require('crypto');
const http = require('http');
const http2 = require('http2');
const https = require('https');
const tls = require('tls');

const [mode, opts] = JSON.parse(process.argv[process.argv.length - 1]);
const print = (o) => { process.stdout.write(`${JSON.stringify(o)}\n`); process.exit(0); };
setTimeout(() => print({ timedOut: true }), opts.timeoutMs || 30000).unref();
const proxyOf = (url) => new URL(url || process.env.HTTPS_PROXY || process.env.https_proxy || '');

/** CONNECT through the proxy: the open socket, or the proxy's status and body. */
function tunnel(authority) {
  const proxy = proxyOf(opts.proxy);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: proxy.hostname, port: proxy.port, method: 'CONNECT', path: authority, agent: false });
    req.on('connect', (res, socket, head) => {
      // After a 200 every byte is the tunnel's: a server that speaks first (an HTTP/2 server's
      // SETTINGS) may have come in the same read as the answer, and Node hands it over as `head`.
      if (res.statusCode === 200) {
        if (head.length) socket.unshift(head);
        return resolve({ status: 200, socket });
      }
      let body = head.toString();
      socket.on('data', (d) => (body += d));
      socket.on('close', () => resolve({ status: res.statusCode, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function httpsCall() {
  const t = await tunnel(opts.authority);
  if (t.status !== 200) return print({ connect: t.status, body: t.body });
  const req = https.get({
    // No agent: createConnection is used only without one.
    host: opts.servername, path: opts.path || '/',
    createConnection: () => tls.connect({ socket: t.socket, servername: opts.servername, ca: opts.ca }),
  }, (res) => {
    let body = '';
    res.on('data', (d) => (body += d));
    res.on('end', () => print({ connect: 200, status: res.statusCode, body, authorized: res.socket.authorized }));
  });
  req.on('error', (e) => print({ connect: 200, error: e.message }));
}

function wsFrame(text, opcode = 1) {
  const payload = Buffer.from(text);
  const mask = crypto.randomBytes(4);
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x80 | opcode, 0x80 | n]) : Buffer.from([0x80 | opcode, 0x80 | 126, n >> 8, n & 255]);
  for (let i = 0; i < n; i++) payload[i] ^= mask[i % 4];
  return Buffer.concat([head, mask, payload]);
}

function wsChat() {
  const url = new URL(opts.url);
  const key = crypto.randomBytes(16).toString('base64');
  // 'env:HTTP_PROXY': the proxy the pod's environment names, as an app would take it.
  const via = opts.proxy ? new URL(opts.proxy.startsWith('env:') ? process.env[opts.proxy.slice(4)] : opts.proxy) : undefined;
  const req = http.request({
    host: via ? via.hostname : url.hostname, port: via ? via.port : url.port || 80,
    // Through an HTTP proxy the request line carries the absolute URL, as for any proxied request.
    path: via ? url.href : url.pathname, agent: false,
    headers: { host: opts.host || url.host, upgrade: 'websocket', connection: 'Upgrade', 'sec-websocket-key': key, 'sec-websocket-version': '13' },
  });
  req.on('response', (res) => {
    let body = '';
    res.on('data', (d) => (body += d));
    res.on('end', () => print({ status: res.statusCode, body }));
  });
  req.on('upgrade', (res, socket, head) => {
    const accept = crypto.createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC11D65`).digest('base64');
    const messages = [];
    let sent = false;
    let buf = head;
    const done = () => { socket.end(wsFrame('', 8)); print({ status: 101, acceptOk: res.headers['sec-websocket-accept'] === accept, messages }); };
    const onText = (text) => {
      messages.push(text);
      const m = /^members (\d+)$/.exec(text);
      if (m && Number(m[1]) >= opts.members && !sent) { sent = true; socket.write(wsFrame(`${opts.name}: ${opts.send}`)); }
      if (text.startsWith(`${opts.peer}: `)) done();
    };
    const parse = () => {
      while (buf.length >= 2) {
        let len = buf[1] & 0x7f, at = 2;
        if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); at = 4; }
        if (buf.length < at + len) return;
        const opcode = buf[0] & 0x0f, payload = buf.subarray(at, at + len);
        buf = buf.subarray(at + len);
        if (opcode === 1) onText(payload.toString());
        if (opcode === 8) return print({ status: 101, closed: payload.length >= 2 ? payload.readUInt16BE(0) : 0, messages });
      }
    };
    socket.on('data', (d) => { buf = Buffer.concat([buf, d]); parse(); });
    parse();
  });
  req.on('error', (e) => print({ error: e.message }));
  req.end();
}

/** A protobuf message's field 1 as a string (the stand-in's answer). */
function field1(msg) {
  if (msg[0] !== 0x0a) return '';
  let len = 0, shift = 0, at = 1;
  for (;;) { const b = msg[at++]; len |= (b & 0x7f) << shift; shift += 7; if (!(b & 0x80)) break; }
  return msg.subarray(at, at + len).toString();
}

async function grpcCalls() {
  const t = await tunnel(opts.authority);
  if (t.status !== 200) return print({ connect: t.status, body: t.body });
  const session = http2.connect(`http://${opts.authority}`, { createConnection: () => t.socket });
  session.on('error', (e) => print({ error: e.message }));
  const out = { connect: 200, byVersion: {}, statuses: {} };
  const request = Buffer.from([0, 0, 0, 0, 3, 0x0a, 1, 0x78]); // field 1 = "x"
  for (let i = 0; i < opts.n; i++) {
    await new Promise((resolve) => {
      const s = session.request({ ':method': 'POST', ':path': opts.path, 'content-type': 'application/grpc', te: 'trailers', ...(opts.metadata || {}) });
      let body = Buffer.alloc(0), status = '';
      s.on('error', (e) => print({ error: e.message, call: i }));
      s.on('response', (h) => { if (h['grpc-status'] !== undefined) status = String(h['grpc-status']); });
      s.on('trailers', (h) => { status = String(h['grpc-status']); });
      s.on('data', (d) => (body = Buffer.concat([body, d])));
      s.on('close', () => {
        out.statuses[status || 'none'] = (out.statuses[status || 'none'] || 0) + 1;
        const text = body.length > 5 ? field1(body.subarray(5)) : '';
        const key = status === '0' ? text.split(':')[0] : `status ${status}`;
        out.byVersion[key] = (out.byVersion[key] || 0) + 1;
        resolve();
      });
      s.end(request);
    });
  }
  session.close();
  print(out);
}

Promise.resolve().then(() => ({ https: httpsCall, ws: wsChat, grpc: grpcCalls })[mode]()).catch((e) => print({ error: e.message }));
