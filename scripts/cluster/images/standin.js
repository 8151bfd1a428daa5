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
//   STANDIN_TLS_DIR  serve HTTPS with tls.crt and tls.key from this directory (a mounted
//                    kubernetes.io/tls Secret): an external HTTPS API for egress tests
//   STANDIN_GRPC     "1": serve gRPC over HTTP/2 cleartext instead (any method, unary)
// Every HTTP/1.1 listener is also a WebSocket chat room: each text message is sent to
// every connection, and joins are announced with the room's size.
// Only Node's standard library, so the image needs nothing but node.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const http2 = require('http2');
const https = require('https');
const os = require('os');
const path = require('path');

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
const tlsDir = process.env.STANDIN_TLS_DIR || '';
const grpc = process.env.STANDIN_GRPC === '1';

const words = (urlPath) => (urlPath === '/' ? `stand-in for ${image || app}` : urlPath.replace(/^\//, ''));
const answerText = (word) => `${app} ${version}: ${word} (pod ${os.hostname()})`;

let closing = false;
function onRequest(req, res) {
  // Shutting down: this answer is the connection's last, so a caller's pooled connection
  // moves to a pod that stays (server.close() only closes connections idle at that moment).
  if (closing) res.setHeader('connection', 'close');
  const answer = () => {
    const headers = { 'content-type': 'text/plain; charset=utf-8', 'x-standin': `${app}/${version}` };
    // Echo the request id, so a test can follow one request across hops.
    if (req.headers['x-request-id']) headers['x-request-id'] = req.headers['x-request-id'];
    res.writeHead(status, headers);
    res.end(`${answerText(words(req.url.split('?')[0]))}\n`);
  };
  req.resume();
  if (delayMs > 0) setTimeout(answer, delayMs);
  else answer();
}

// ---- WebSocket chat (RFC 6455): text, ping and close frames; client frames must be masked.
const room = new Set();
const MAX_FRAME = 64 * 1024;
function frame(opcode, payload) {
  const n = payload.length;
  const head = n < 126 ? Buffer.from([0x80 | opcode, n])
    : n < 65536 ? Buffer.from([0x80 | opcode, 126, n >> 8, n & 255])
      : Buffer.concat([Buffer.from([0x80 | opcode, 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(n)); return b; })()]);
  return Buffer.concat([head, payload]);
}
function broadcast(text) {
  for (const s of room) if (!s.destroyed) s.write(frame(1, Buffer.from(text)));
}
function closeWith(socket, code) {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(code);
  socket.end(frame(8, b));
  room.delete(socket);
}
function onUpgrade(req, socket) {
  const key = req.headers['sec-websocket-key'];
  if (String(req.headers.upgrade).toLowerCase() !== 'websocket' || !key) {
    socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
    return;
  }
  const accept = crypto.createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC11D65`).digest('base64');
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\nx-standin: ${app}/${version}\r\n\r\n`);
  room.add(socket);
  // Who came in and how: the route's request headers show the rules applied to the handshake.
  const route = req.headers['x-chat-route'] || '-';
  socket.write(frame(1, Buffer.from(`welcome to ${answerText('chat')} route=${route}`)));
  broadcast(`members ${room.size}`);
  let buf = Buffer.alloc(0);
  socket.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    for (;;) {
      if (buf.length < 2) return;
      const fin = buf[0] & 0x80, opcode = buf[0] & 0x0f, masked = buf[1] & 0x80;
      let len = buf[1] & 0x7f, at = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); at = 4; }
      else if (len === 127) { if (buf.length < 10) return; len = Number(buf.readBigUInt64BE(2)); at = 10; }
      if (!masked) return closeWith(socket, 1002);
      if (len > MAX_FRAME) return closeWith(socket, 1009);
      if (!fin) return closeWith(socket, 1003); // fragments: not needed by a chat of short lines
      if (buf.length < at + 4 + len) return;
      const mask = buf.subarray(at, at + 4);
      const payload = Buffer.from(buf.subarray(at + 4, at + 4 + len));
      for (let i = 0; i < payload.length; i++) payload[i] ^= mask[i % 4];
      buf = buf.subarray(at + 4 + len);
      if (opcode === 1) broadcast(payload.toString());
      else if (opcode === 9) socket.write(frame(10, payload));
      else if (opcode === 8) return closeWith(socket, 1000);
      else if (opcode !== 10) return closeWith(socket, 1003);
    }
  });
  const leave = () => { if (room.delete(socket)) broadcast(`members ${room.size}`); };
  socket.on('close', leave);
  socket.on('error', leave);
}

// ---- gRPC over h2c: any unary method answers a message whose field 1 (a string) is the
// usual answer with the method's name; a request without gRPC framing gets INTERNAL.
function pbString(text) {
  const bytes = Buffer.from(text);
  const varint = [];
  let n = bytes.length;
  do { varint.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0)); n >>>= 7; } while (n > 0);
  return Buffer.concat([Buffer.from([0x0a, ...varint]), bytes]);
}
function onStream(stream, headers) {
  let body = Buffer.alloc(0);
  stream.on('data', (d) => { if (body.length < MAX_FRAME) body = Buffer.concat([body, d]); });
  stream.on('end', () => {
    const ok = String(headers['content-type'] || '').startsWith('application/grpc') && body.length >= 5;
    const method = path.basename(String(headers[':path'] || ''));
    const answer = () => {
      if (stream.destroyed) return;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'x-standin': `${app}/${version}` }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers(ok
        ? { 'grpc-status': '0' }
        : { 'grpc-status': '13', 'grpc-message': 'standin%3A not a gRPC request' }));
      if (!ok) return stream.end();
      const msg = pbString(answerText(method));
      const prefix = Buffer.alloc(5);
      prefix.writeUInt32BE(msg.length, 1);
      stream.end(Buffer.concat([prefix, msg]));
    };
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  });
  stream.on('error', () => {});
}

let server;
if (grpc) {
  server = http2.createServer();
  server.on('stream', onStream);
} else {
  server = tlsDir
    ? https.createServer({ cert: fs.readFileSync(path.join(tlsDir, 'tls.crt')), key: fs.readFileSync(path.join(tlsDir, 'tls.key')) }, onRequest)
    : http.createServer(onRequest);
  server.on('upgrade', onUpgrade);
}
server.listen(port, () => console.log(`standin: ${app} ${version} listening on :${port} (${grpc ? 'gRPC, h2c' : tlsDir ? 'HTTPS' : 'HTTP'})`));
process.on('SIGTERM', () => {
  closing = true;
  const longLived = grpc || room.size > 0;
  for (const s of room) closeWith(s, 1001);
  server.close(() => process.exit(0));
  if (server.closeIdleConnections) server.closeIdleConnections();
  // h2c sessions and chat sockets do not end on their own: leave after a moment.
  if (longLived) setTimeout(() => process.exit(0), 3000).unref();
});
