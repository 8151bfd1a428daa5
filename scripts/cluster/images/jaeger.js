#!/usr/bin/env node
// A stand-in for Jaeger v2 (docker.io/jaegertracing/jaeger), which cannot be pulled here.
// It keeps what the tracing checks depend on, on Jaeger's own ports and paths:
//
//   9411   Zipkin v2 JSON: POST /api/v2/spans (what Istio's Envoy and the node sidecar send)
//   4318   OTLP/HTTP JSON: POST /v1/traces
//   16686  the query API as Jaeger's UI calls it, under the configured base path:
//          GET <base>/api/traces/<traceID>, GET <base>/api/traces?service=S&limit=N,
//          GET <base>/api/services; GET <base>/search answers a small HTML page
//   13133  GET /status (the health check the addon's probes use)
//   8888   GET /metrics (spans received, traces kept)
//
// It reads the config file it is given (--config FILE, the ConfigMap JaegerAddon writes)
// for the query base path and the in-memory trace bound (max_traces), and keeps at most
// that many traces, the oldest dropped first. Only Node's standard library.
'use strict';
const fs = require('fs');
const http = require('http');

const i = process.argv.indexOf('--config');
if (i < 0 || !process.argv[i + 1]) {
  console.error('jaeger stand-in: --config FILE is required (as for jaeger v2)');
  process.exit(2);
}
const config = fs.readFileSync(process.argv[i + 1], 'utf8');
const basePath = (/base_path:\s*(\S+)/.exec(config) || [])[1] || '';
const maxTraces = Number((/max_traces:\s*(\d+)/.exec(config) || [])[1] || 100000);

/** traceID -> { spans, processes: Map serviceName -> processID } in arrival order. */
const traces = new Map();
let received = 0;

function add(span) {
  received++;
  let t = traces.get(span.traceID);
  if (!t) {
    t = { spans: [], processes: new Map() };
    traces.set(span.traceID, t);
    while (traces.size > maxTraces) traces.delete(traces.keys().next().value);
  }
  if (!t.processes.has(span.serviceName)) t.processes.set(span.serviceName, `p${t.processes.size + 1}`);
  t.spans.push(span);
}

const hex = (s, n) => String(s || '').toLowerCase().padStart(n, '0');
/** Jaeger keeps 128-bit ids; a 64-bit B3 trace id is the same trace. */
const traceKey = (id) => hex(id, 32);

function fromZipkin(z) {
  add({
    traceID: traceKey(z.traceId), spanID: hex(z.id, 16), parentSpanID: z.parentId ? hex(z.parentId, 16) : undefined,
    operationName: z.name || '', kind: z.kind, startTime: z.timestamp, duration: z.duration,
    serviceName: (z.localEndpoint && z.localEndpoint.serviceName) || 'unknown', tags: z.tags || {},
  });
}

function fromOtlp(body) {
  for (const rs of body.resourceSpans || []) {
    const attrs = Object.fromEntries(((rs.resource || {}).attributes || []).map((a) => [a.key, (a.value || {}).stringValue]));
    for (const ss of rs.scopeSpans || []) {
      for (const s of ss.spans || []) {
        add({
          traceID: traceKey(s.traceId), spanID: hex(s.spanId, 16), parentSpanID: s.parentSpanId ? hex(s.parentSpanId, 16) : undefined,
          operationName: s.name || '', kind: s.kind === 2 ? 'SERVER' : s.kind === 3 ? 'CLIENT' : 'INTERNAL',
          startTime: Math.floor(Number(BigInt(s.startTimeUnixNano || 0) / 1000n)),
          duration: Math.floor(Number((BigInt(s.endTimeUnixNano || 0) - BigInt(s.startTimeUnixNano || 0)) / 1000n)),
          serviceName: attrs['service.name'] || 'unknown',
          tags: Object.fromEntries((s.attributes || []).map((a) => [a.key, (a.value || {}).stringValue])),
        });
      }
    }
  }
}

/** A trace as Jaeger's query API returns it. */
function jaegerTrace(traceID) {
  const t = traces.get(traceID);
  return {
    traceID,
    spans: t.spans.map((s) => ({
      traceID, spanID: s.spanID, operationName: s.operationName,
      references: s.parentSpanID ? [{ refType: 'CHILD_OF', traceID, spanID: s.parentSpanID }] : [],
      startTime: s.startTime, duration: s.duration, processID: t.processes.get(s.serviceName),
      tags: [{ key: 'span.kind', type: 'string', value: String(s.kind || '').toLowerCase() },
        ...Object.entries(s.tags).map(([key, value]) => ({ key, type: 'string', value: String(value) }))],
    })),
    processes: Object.fromEntries([...t.processes].map(([serviceName, id]) => [id, { serviceName, tags: [] }])),
  };
}

function readJson(req, res, then) {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    try {
      then(JSON.parse(Buffer.concat(chunks).toString() || 'null'));
      res.writeHead(202).end();
    } catch (e) {
      res.writeHead(400, { 'content-type': 'text/plain' }).end(`bad request: ${e.message}\n`);
    }
  });
}

const json = (res, status, body) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

const servers = {
  9411: (req, res) => {
    if (req.method === 'POST' && req.url === '/api/v2/spans') return readJson(req, res, (spans) => spans.forEach(fromZipkin));
    res.writeHead(404).end();
  },
  4318: (req, res) => {
    if (req.method === 'POST' && req.url === '/v1/traces') return readJson(req, res, fromOtlp);
    res.writeHead(404).end();
  },
  16686: (req, res) => {
    const url = new URL(req.url, 'http://query');
    if (!url.pathname.startsWith(`${basePath}/`)) return res.writeHead(404).end();
    const p = url.pathname.slice(basePath.length);
    if (p === '/api/services') return json(res, 200, { data: [...new Set([...traces.values()].flatMap((t) => [...t.processes.keys()]))].sort() });
    const one = /^\/api\/traces\/([0-9a-fA-F]{16,32})$/.exec(p);
    if (one) {
      const id = traceKey(one[1]);
      return traces.has(id) ? json(res, 200, { data: [jaegerTrace(id)] }) : json(res, 404, { data: null, errors: [{ code: 404, msg: 'trace not found' }] });
    }
    if (p === '/api/traces') {
      const service = url.searchParams.get('service');
      const limit = Number(url.searchParams.get('limit') || 20);
      const ids = [...traces.keys()].filter((id) => !service || traces.get(id).processes.has(service)).slice(-limit).reverse();
      return json(res, 200, { data: ids.map(jaegerTrace) });
    }
    if (p === '/search' || p === '/') return res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>Jaeger UI (stand-in)</title>\n');
    res.writeHead(404).end();
  },
  13133: (req, res) => (req.url === '/status' ? json(res, 200, { status: 'StatusOK' }) : res.writeHead(404).end()),
  8888: (req, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(`jaeger_standin_spans_received_total ${received}\njaeger_standin_traces ${traces.size}\n`),
};

for (const [port, handler] of Object.entries(servers)) http.createServer(handler).listen(Number(port), '0.0.0.0');
console.log(JSON.stringify({ msg: 'jaeger stand-in listening', ports: Object.keys(servers).map(Number), basePath, maxTraces }));
process.on('SIGTERM', () => process.exit(0));
