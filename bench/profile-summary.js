#!/usr/bin/env node
// Summarise a V8 .cpuprofile (node --cpu-prof, or BENCH_CPU_PROF=DIR npm run bench:sidecar):
// the functions with the most self time, and the inclusive time of the proxy's own
// functions (those from apps/sidecar/ in the bundle), as shares of the active (non-idle) time.
//   node bench/profile-summary.js DIR_OR_FILE [top=25]
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const arg = process.argv[2];
const top = Number(process.argv[3] ?? 25);
if (!arg) { console.error('usage: node bench/profile-summary.js DIR_OR_FILE [top]'); process.exit(2); }
const file = fs.statSync(arg).isDirectory()
  ? fs.readdirSync(arg).filter((f) => f.endsWith('.cpuprofile')).map((f) => path.join(arg, f)).sort((a, b) => fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)[0]
  : arg;
if (!file) { console.error(`no .cpuprofile in ${arg}`); process.exit(2); }
const prof = JSON.parse(fs.readFileSync(file, 'utf8'));

const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
// Sample counts per node, weighted by the time delta to the next sample.
const weight = new Map();
for (let i = 0; i < prof.samples.length; i++) weight.set(prof.samples[i], (weight.get(prof.samples[i]) ?? 0) + (prof.timeDeltas[i + 1] ?? 0));
const label = (n) => `${n.callFrame.functionName || '(anonymous)'} ${path.basename(n.callFrame.url || '')}:${n.callFrame.lineNumber + 1}`;

let total = 0;
let idle = 0;
const self = new Map();
const inclusive = new Map();
for (const [id, w] of weight) {
  const n = byId.get(id);
  total += w;
  if (n.callFrame.functionName === '(idle)') { idle += w; continue; }
  self.set(label(n), (self.get(label(n)) ?? 0) + w);
  // Inclusive: each distinct function on the stack once.
  const seen = new Set();
  for (let p = id; p !== undefined; p = parent.get(p)) {
    const l = label(byId.get(p));
    if (seen.has(l)) continue;
    seen.add(l);
    inclusive.set(l, (inclusive.get(l) ?? 0) + w);
  }
}
const active = total - idle;
const pct = (w) => `${((100 * w) / active).toFixed(1).padStart(5)}%`;
console.log(`${path.basename(file)}: ${(total / 1e6).toFixed(1)} s sampled, ${(active / 1e6).toFixed(1)} s active (not idle)`);
console.log('\nself time, top functions:');
for (const [l, w] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(w)}  ${l}`);
// The proxy's own code: functions whose source is the sidecar bundle or apps/sidecar.
const own = [...inclusive].filter(([l]) => /main\.js:|apps\/sidecar|proxy\.ts|upstream\.ts|metrics\.ts|tracing\.ts|table\.ts/.test(l) && !/^\(anonymous\) main\.js:1$/.test(l));
console.log('\ninclusive time, the proxy\'s own functions:');
for (const [l, w] of own.sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(w)}  ${l}`);
