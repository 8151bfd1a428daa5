#!/usr/bin/env node
// A stand-in for Istio's Bookinfo images (docker.io/istio/examples-bookinfo-*), which
// cannot be pulled here. It keeps what the traffic scenarios depend on:
//
//   productpage  GET /productpage calls details (/details/0) and reviews (/reviews/0);
//                the user is the `end-user` header it received, or the `user` cookie that
//                POST /login sets (as upstream's login does); /logout clears it.
//                Its reviews call has upstream's bound: 3 s per attempt, 2 attempts.
//                Also /, /health, /static/*, /api/v1/products, and /api/v1/products/0
//                (details), /0/reviews, /0/ratings: one call each, as upstream's API.
//   details      GET /details/0
//   reviews      GET /reviews/0; v2 and v3 call ratings (/ratings/0) with upstream's
//                timeouts (v2 10 s, v3 2.5 s); v1 does not. productpage's own calls: 3 s.
//   ratings      GET /ratings/0
//
// Every call to another service goes through HTTP_PROXY when it is set (the node
// sidecar's outbound listener), as upstream's Python and Java clients do, and carries the
// `end-user` header and the tracing headers (x-request-id, b3, traceparent, ...) of the
// request that caused it. Every answer says which service, version and pod served it,
// the request id and user it saw, and what its own calls returned, so a test sees the
// whole path of one request. /productpage answers HTML with that path as JSON in
// <pre id="path">; the other services answer JSON.
//
// Configuration (environment; set in each image, overridable by a pod):
//   BOOKINFO_SERVICE  productpage | details | reviews | ratings (required)
//   BOOKINFO_VERSION  v1, v2, v3 (default v1)
//   PORT              listening port (default 9080)
//   SERVICES_DOMAIN   suffix of the service names called (default none: same namespace)
//   REVIEWS_TIMEOUT_MS, REVIEWS_ATTEMPTS, RATINGS_TIMEOUT_MS, DETAILS_TIMEOUT_MS
//                     the client bounds above
// Only Node's standard library, so the image needs nothing but node.
'use strict';
const http = require('http');
const os = require('os');

const service = process.env.BOOKINFO_SERVICE;
const SERVICES = ['productpage', 'details', 'reviews', 'ratings'];
if (!SERVICES.includes(service)) {
  console.error(`bookinfo: BOOKINFO_SERVICE must be one of ${SERVICES.join(', ')}, got ${JSON.stringify(service)}`);
  process.exit(2);
}
const version = process.env.BOOKINFO_VERSION || 'v1';
const port = Number(process.env.PORT || 9080);
const domain = process.env.SERVICES_DOMAIN ? `.${process.env.SERVICES_DOMAIN}` : '';
const ms = (name, dflt) => Number(process.env[name] || dflt);
const TIMEOUTS = {
  details: ms('DETAILS_TIMEOUT_MS', 3000),
  reviews: ms('REVIEWS_TIMEOUT_MS', 3000),
  reviewsAttempts: ms('REVIEWS_ATTEMPTS', 2),
  // reviews v2 (black stars) waits 10 s for ratings, v3 (red stars) 2.5 s: upstream's values.
  ratings: ms('RATINGS_TIMEOUT_MS', service === 'productpage' ? 3000 : version === 'v3' ? 2500 : 10000),
};
// The headers upstream's apps forward (Istio's "Distributed tracing" task lists them).
const FORWARDED = [
  'end-user', 'user-agent', 'x-request-id', 'x-b3-traceid', 'x-b3-spanid', 'x-b3-parentspanid',
  'x-b3-sampled', 'x-b3-flags', 'b3', 'x-ot-span-context', 'traceparent', 'tracestate', 'x-cloud-trace-context',
  'grpc-trace-bin', 'sw8', 'x-datadog-trace-id', 'x-datadog-parent-id', 'x-datadog-sampling-priority',
];
const proxy = parseProxy(process.env.HTTP_PROXY || process.env.http_proxy);

function parseProxy(value) {
  if (!value) return undefined;
  const u = new URL(value);
  return { host: u.hostname, port: Number(u.port || 80) };
}

/** GET http://<name>:9080<path> with the forwarded headers; resolves {status, body, ms} or {error, ms}. */
function call(name, path, headers, timeoutMs) {
  const host = `${name}${domain}`;
  const t0 = Date.now();
  return new Promise((resolve) => {
    const opts = proxy
      // Through the proxy: absolute-form request line, as clients honouring HTTP_PROXY send.
      ? { host: proxy.host, port: proxy.port, path: `http://${host}:9080${path}`, headers: { ...headers, host: `${host}:9080` } }
      : { host, port: 9080, path, headers };
    const req = http.get({ ...opts, agent: false }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body;
        try { body = JSON.parse(text); } catch { body = text.trim(); }
        resolve({ status: res.statusCode, body, ms: Date.now() - t0 });
      });
      res.on('error', (e) => resolve({ error: e.message, ms: Date.now() - t0 }));
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    req.on('error', (e) => resolve({ error: e.message, ms: Date.now() - t0 }));
  });
}

function forwardedHeaders(req, user) {
  const out = {};
  for (const h of FORWARDED) if (req.headers[h] !== undefined) out[h] = req.headers[h];
  if (user) out['end-user'] = user;
  return out;
}

function userOf(req) {
  if (req.headers['end-user']) return String(req.headers['end-user']);
  const cookie = String(req.headers.cookie || '').split(/;\s*/).find((c) => c.startsWith('user='));
  return cookie ? decodeURIComponent(cookie.slice(5)) : undefined;
}

/** Who answered and what it saw: the start of every answer. */
function hop(req, user) {
  const h = req.headers;
  return {
    service, version, pod: os.hostname(), requestId: h['x-request-id'] || null, user: user || null,
    trace: { traceId: h['x-b3-traceid'] || null, spanId: h['x-b3-spanid'] || null, parentSpanId: h['x-b3-parentspanid'] || null },
  };
}

function send(res, status, body, type = 'application/json') {
  const text = type === 'application/json' ? `${JSON.stringify(body)}\n` : body;
  res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, 'x-bookinfo': `${service}/${version}` });
  res.end(text);
}

/** A call's outcome as the caller shows it: the callee's answer, or the caller's error text. */
function outcome(r, unavailable) {
  if (r.error !== undefined) return { error: unavailable, cause: r.error, ms: r.ms };
  if (r.status !== 200) return { error: unavailable, status: r.status, ms: r.ms, ...(typeof r.body === 'object' ? { answer: r.body } : {}) };
  return { ...r.body, ms: r.ms };
}

async function productReviews(headers) {
  let r;
  for (let i = 0; i < TIMEOUTS.reviewsAttempts; i++) {
    r = await call('reviews', '/reviews/0', headers, TIMEOUTS.reviews);
    if (r.error === undefined && r.status === 200) break;
  }
  return outcome(r, 'Sorry, product reviews are currently unavailable for this book.');
}

let pagesServed = 0;
async function productpage(req, res, url) {
  const user = userOf(req);
  const path = url.pathname;
  if (path === '/' || path === '/index.html') return send(res, 200, '<html><body><a href="/productpage">productpage</a></body></html>\n', 'text/html');
  if (path === '/health') return send(res, 200, { status: 'Product page is healthy' });
  // Upstream's productpage exports Prometheus metrics (its pod is annotated for them):
  // the node sidecar merges them into its stats port, as Istio's agent does.
  if (path === '/metrics') {
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' });
    return res.end(`# HELP bookinfo_pages_total Product pages served\n# TYPE bookinfo_pages_total counter\nbookinfo_pages_total ${pagesServed}\n`);
  }
  if (path.startsWith('/static/')) return send(res, 200, `/* ${path} */\n`, 'text/css');
  if (path === '/login') {
    if (req.method !== 'POST') return send(res, 405, { error: 'POST /login with username=<name>' });
    const form = new URLSearchParams(await readBody(req));
    const name = form.get('username') || '';
    res.writeHead(302, { location: '/productpage', 'set-cookie': `user=${encodeURIComponent(name)}; Path=/`, 'x-bookinfo': `${service}/${version}` });
    return res.end();
  }
  if (path === '/logout') {
    res.writeHead(302, { location: '/productpage', 'set-cookie': 'user=; Path=/; Max-Age=0', 'x-bookinfo': `${service}/${version}` });
    return res.end();
  }
  if (path === '/api/v1/products') return send(res, 200, [{ id: 0, title: 'The Comedy of Errors' }]);
  // The API calls one service each, as upstream's does; the page calls details and reviews.
  const api = path === '/api/v1/products/0' ? 'details' : (path.match(/^\/api\/v1\/products\/0\/(reviews|ratings)$/) ?? [])[1];
  if (path === '/productpage' || api) {
    if (path === '/productpage') pagesServed++;
    const headers = forwardedHeaders(req, user);
    const t0 = Date.now();
    const details = () => call('details', '/details/0', headers, TIMEOUTS.details)
      .then((r) => outcome(r, 'Sorry, product details are currently unavailable for this book.'));
    if (api) {
      const answer = api === 'details' ? await details() : api === 'reviews' ? await productReviews(headers)
        : outcome(await call('ratings', '/ratings/0', headers, TIMEOUTS.ratings), 'Ratings service is currently unavailable');
      return send(res, answer.error ? 503 : 200, { ...hop(req, user), ms: Date.now() - t0, [api]: answer });
    }
    const [detailsAnswer, reviews] = await Promise.all([details(), productReviews(headers)]);
    const page = { ...hop(req, user), ms: Date.now() - t0, details: detailsAnswer, reviews };
    const line = (o) => (o.error ? o.error : `${o.service} ${o.version}`);
    const html = [
      '<html><head><title>Simple Bookstore App (stand-in)</title></head><body>',
      `<h1>The Comedy of Errors</h1><p>${user ? `signed in as ${escapeHtml(user)}` : 'not signed in'}</p>`,
      `<p>details: ${escapeHtml(line(detailsAnswer))}</p>`,
      `<p>reviews: ${escapeHtml(line(reviews))}${reviews.ratings ? `; ratings: ${escapeHtml(line(reviews.ratings))}` : ''}</p>`,
      `<pre id="path">${escapeHtml(JSON.stringify(page))}</pre>`,
      '</body></html>\n',
    ].join('\n');
    return send(res, 200, html, 'text/html');
  }
  return send(res, 404, { error: `no such page: ${path}` });
}

async function reviews(req, res, url) {
  if (url.pathname !== '/reviews/0') return send(res, url.pathname === '/health' ? 200 : 404, url.pathname === '/health' ? { status: 'Reviews is healthy' } : { error: 'not found' });
  const user = userOf(req);
  const body = { ...hop(req, user), reviews: ['An extremely entertaining play by Shakespeare.', 'Absolutely fun and entertaining.'] };
  if (version !== 'v1') {
    const r = await call('ratings', '/ratings/0', forwardedHeaders(req, user), TIMEOUTS.ratings);
    body.stars = version === 'v2' ? 'black' : 'red';
    body.ratings = outcome(r, 'Ratings service is currently unavailable');
  }
  send(res, 200, body);
}

function details(req, res, url) {
  if (url.pathname !== '/details/0') return send(res, 404, { error: 'not found' });
  send(res, 200, { ...hop(req, userOf(req)), id: 0, author: 'William Shakespeare', year: 1595, type: 'paperback', pages: 200, publisher: 'PublisherA', ISBN10: '1234567890' });
}

function ratings(req, res, url) {
  if (url.pathname !== '/ratings/0') return send(res, 404, { error: 'not found' });
  send(res, 200, { ...hop(req, userOf(req)), id: 0, ratings: { Reviewer1: 5, Reviewer2: 4 } });
}

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' }[c]));
}

const handlers = { productpage, reviews, details, ratings };
let closing = false;
const server = http.createServer((req, res) => {
  // Shutting down: this answer is the connection's last, so a caller's pooled connection
  // moves to a pod that stays (server.close() only closes connections idle at that moment).
  if (closing) res.setHeader('connection', 'close');
  const url = new URL(req.url, 'http://localhost');
  if (service !== 'productpage' && req.method !== 'GET') {
    req.resume();
    return send(res, 405, { error: 'GET only' });
  }
  if (!(service === 'productpage' && url.pathname === '/login')) req.resume();
  Promise.resolve(handlers[service](req, res, url)).catch((e) => {
    console.error(`bookinfo: ${req.method} ${req.url}: ${e.stack || e}`);
    if (!res.headersSent) send(res, 500, { error: String(e.message || e) });
    else res.destroy();
  });
});
server.listen(port, () => console.log(`bookinfo: ${service} ${version} listening on :${port}${proxy ? ` (calls through ${proxy.host}:${proxy.port})` : ''}`));
// Finish what is in flight, then exit: Kubernetes sends SIGTERM and waits the grace period.
process.on('SIGTERM', () => {
  closing = true;
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
