// npm run bench:synth — how much the constructs cost over hand-written ApiObjects (raw),
// and over the same objects written with cdk8s-plus as MeshWorkload uses it (plus), so that
// the constructs' own cost shows apart from cdk8s-plus's.
// Each measurement runs in its own process (bench/synth-worker.ts) so that peak RSS is
// its own. All three builds write byte-identical YAML (`synth-worker.ts diff 1` shows it).
// The 1,000-service ratio is the median of 3 interleaved runs: this machine is noisy.
// `npm run bench:synth -- --small` (in .ci/run): the identity guard and one run of each
// build at 100 services, numbers printed, nothing asserted on time; it fails only when the
// baseline drifts from what the constructs write, so the full bench keeps running.
import { execFileSync } from 'child_process';
import * as path from 'path';

interface Result { mode: string; services: number; objects: number; seconds: number; rssMB: number; bytes: number }

type Mode = 'constructs' | 'plus' | 'raw';
function run(mode: Mode, services: number): Result {
  const out = execFileSync(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(__dirname, 'synth-worker.ts'), mode, String(services)], {
    encoding: 'utf8', cwd: path.join(__dirname, '..'), maxBuffer: 1 << 20,
  });
  return JSON.parse(out.trim().split('\n').pop()!);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (r: Result) => `${r.mode.padEnd(10)} ${String(r.services).padStart(6)} services ${String(r.objects).padStart(6)} objects ${r.seconds.toFixed(2).padStart(7)} s ${r.rssMB.toFixed(0).padStart(5)} MB peak RSS ${(r.bytes / 1e6).toFixed(1)} MB YAML`;

const identical = execFileSync(process.execPath, ['-r', 'ts-node/register/transpile-only', path.join(__dirname, 'synth-worker.ts'), 'diff', '1'], {
  encoding: 'utf8', cwd: path.join(__dirname, '..'),
}).trim();
if (identical !== 'identical') {
  console.error('synth-bench: a baseline no longer writes the same YAML as the constructs:\n' + identical);
  process.exit(1);
}

if (process.argv.includes('--small')) {
  const c = run('constructs', 100);
  const r = run('raw', 100);
  console.log(fmt(c));
  console.log(fmt(run('plus', 100)));
  console.log(fmt(r));
  console.log(`synth-bench (small): identical YAML; ratio=${(c.seconds / r.seconds).toFixed(2)} at 100 services (one run each, not a measurement: run without --small)`);
  process.exit(0);
}

const small: Record<Mode, Result[]> = { constructs: [], plus: [], raw: [] };
for (let i = 0; i < 3; i++) {
  for (const mode of ['constructs', 'plus', 'raw'] as const) {
    const r = run(mode, 1000);
    small[mode].push(r);
    console.log(fmt(r));
  }
}
const big = { constructs: run('constructs', 10000), plus: run('plus', 10000), raw: run('raw', 10000) };
console.log(fmt(big.constructs));
console.log(fmt(big.plus));
console.log(fmt(big.raw));

const med = (m: Mode) => median(small[m].map((r) => r.seconds));
const ratio = med('constructs') / med('raw');
const ratio10k = big.constructs.seconds / big.raw.seconds;
const overPlus = med('constructs') / med('plus');
const plusOverRaw = med('plus') / med('raw');
const met = (ok: boolean) => (ok ? 'met' : 'NOT met');
console.log(`ratio constructs/raw: ${ratio.toFixed(2)} at 1,000 (median of 3), ${ratio10k.toFixed(2)} at 10,000`);
console.log(`of which cdk8s-plus (plus/raw): ${plusOverRaw.toFixed(2)}; the constructs' own (constructs/plus): ${overPlus.toFixed(2)} at 1,000, ${(big.constructs.seconds / big.plus.seconds).toFixed(2)} at 10,000`);
console.log(`targets (issue 32): constructs/raw <= 1.25 at 1,000: ${met(ratio <= 1.25)}; 10,000 services <= 8 s: ${met(big.constructs.seconds <= 8)}`);
console.log(`synth-bench: ratio=${ratio.toFixed(2)} overPlus=${overPlus.toFixed(2)} seconds10k=${big.constructs.seconds.toFixed(2)} rssMB=${big.constructs.rssMB.toFixed(0)}`);
