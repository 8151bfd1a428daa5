// Mesh lint against istioctl analyze's own test grid (istio/istio
// pkg/config/analysis/analyzers/analyzers_test.go and its testdata): for every case whose
// analyzer has a counterpart here (a CHECKS entry names its IST code), lint the case's
// input files as one cluster and compare with the messages istioctl expects.
//   npm run bench:parity -- /path/to/istio        (a checkout, or a bare clone: read with git)
// Prints recall (expected findings reproduced) and every finding of ours istioctl does not
// expect on those inputs (error or warning: a false positive unless the line says why not).
// Reads Istio's files at run time only; nothing of them is kept in this repository.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { analyze, CHECKS, Finding, K8s } from '../lint/analyze';

const src = process.argv[2] ?? process.env.ISTIO_SRC;
if (!src) {
  console.error('usage: npm run bench:parity -- ISTIO_CHECKOUT (or ISTIO_SRC=...)');
  process.exit(2);
}
const read = (file: string): string => (existsSync(join(src, 'pkg'))
  ? readFileSync(join(src, file), 'utf8')
  : execFileSync('git', ['--git-dir', src, 'show', `HEAD:${file}`], { encoding: 'utf8', maxBuffer: 64 << 20 }));

const DIR = 'pkg/config/analysis/analyzers';
const codes = new Map<string, string>(); // message name -> IST code
for (const m of read('pkg/config/analysis/msg/messages.yaml').matchAll(/- name: "(\w+)"\s+code: (IST\d+)/g)) codes.set(m[1], m[2]);

interface Case { name: string; files: string[]; analyzer: string; expected: Array<{ code: string; kind: string; name: string; namespace?: string }> }
const grid = read(`${DIR}/analyzers_test.go`);
const cases: Case[] = [];
for (const block of grid.split(/\n\t\{\n/).slice(1)) {
  const name = /name:\s+"([^"]*)"/.exec(block)?.[1];
  const files = /inputFiles:\s+\[\]string\{([^}]*)\}/.exec(block)?.[1];
  const analyzer = /analyzer:\s+&([\w.]+)\{/.exec(block)?.[1];
  if (!name || !files || !analyzer) continue;
  const expected = [...block.matchAll(/\{msg\.(\w+), "(\w+) ([^"]+)"\}/g)].map((m) => {
    const [ns, n] = m[3].includes('/') ? m[3].split('/') : [undefined, m[3]];
    return { code: codes.get(m[1]) ?? m[1], kind: m[2], name: n, namespace: ns };
  });
  cases.push({ name, files: [...files.matchAll(/"([^"]+)"/g)].map((m) => `${DIR}/${m[1]}`), analyzer, expected });
}

// Our checks by the IST code they reproduce; an analyzer is covered when one of its cases expects such a code.
const ours = new Map<string, string[]>();
for (const c of CHECKS) for (const ist of (c.istioctl ?? '').split('/').filter(Boolean)) ours.set(ist, [...(ours.get(ist) ?? []), c.code]);
const covered = new Set(cases.filter((c) => c.expected.some((e) => ours.has(e.code))).map((c) => c.analyzer));
const relevant = cases.filter((c) => covered.has(c.analyzer));
// IST0101 (ReferencedResourceNotFound) is emitted by many analyzers; ours come from three checks, each one analyzer's.
const IST0101_BY: Record<string, string> = {
  MESH003: 'virtualservice.DestinationHostAnalyzer', MESH004: 'virtualservice.DestinationRuleAnalyzer', MESH023: 'virtualservice.GatewayAnalyzer',
};
const ist = new Map<string, string[]>(CHECKS.map((c) => [c.code, (c.istioctl ?? '').split('/').filter(Boolean)]));
// The IST codes each analyzer emits (from all its cases).
const analyzerCodes = new Map<string, Set<string>>();
for (const c of relevant) for (const e of c.expected) analyzerCodes.set(c.analyzer, new Set([...(analyzerCodes.get(c.analyzer) ?? []), e.code]));
/** Whether a check of ours does the work of `analyzer` (so its findings on that case are judged). */
const judges = (code: string, analyzer: string) => (code in IST0101_BY ? IST0101_BY[code] === analyzer
  : (ist.get(code) ?? []).some((x) => x !== 'IST0101' && analyzerCodes.get(analyzer)?.has(x)));
/** Whether an expected message is one a check of ours should reproduce on this analyzer's case. */
const ourJob = (code: string, analyzer: string) => (ours.get(code) ?? []).some((c) => judges(c, analyzer));

let expectedTotal = 0;
let found = 0;
const missed: string[] = [];
const extra: string[] = [];
const other: string[] = [];
for (const c of relevant) {
  const docs = c.files.flatMap((f) => parseAllDocuments(read(f)).map((d, i) => ({ obj: d.toJSON() as K8s, path: `${f.split('/').pop()}#${i + 1}` })))
    .filter((m) => m.obj && typeof m.obj === 'object' && typeof m.obj.kind === 'string');
  const findings = analyze(docs).filter((f) => f.severity !== 'info');
  const unused = [...findings];
  // A conflict or a shared certificate is reported once per pair (MESH010, MESH032), naming both gateways: it answers for either.
  const names = (f: Finding, e: Case['expected'][number]) => f.object.name === e.name || (['MESH010', 'MESH032'].includes(f.code) && f.message.includes(` ${e.name} `));
  const same = (f: Finding, e: Case['expected'][number]) => f.object.kind === e.kind && names(f, e)
    && (e.namespace === undefined || (f.object.namespace ?? 'default') === e.namespace) && (ours.get(e.code) ?? []).includes(f.code);
  const wanted = c.expected.filter((e) => ourJob(e.code, c.analyzer));
  for (const e of wanted) {
    expectedTotal++;
    const i = unused.findIndex((f) => same(f, e));
    if (i >= 0) { found++; unused.splice(i, 1); continue; }
    // Several istioctl messages for one object (one per destination) are one finding of ours.
    if (findings.some((f) => same(f, e))) { found++; continue; }
    missed.push(`${c.name}: ${e.code} ${e.kind} ${e.namespace ? `${e.namespace}/` : ''}${e.name}`);
  }
  for (const f of unused) {
    if (c.expected.some((e) => same(f, e))) continue;
    const line = `${c.name}: ${f.code} ${f.severity} ${f.object.kind} ${f.object.namespace ?? ''}/${f.object.name}: ${f.message.slice(0, 160)}`;
    // Under the analyzer's own codes: a false positive. Other checks: the input was written for another analyzer (istioctl runs only that one in its test), listed for review.
    (judges(f.code, c.analyzer) ? extra : other).push(line);
  }
}
console.log(`istioctl parity: ${relevant.length} test cases of ${covered.size} analyzers with a counterpart; expected findings reproduced ${found} of ${expectedTotal}; false positives (a finding under the case analyzer's codes that istioctl does not expect) ${extra.length}; findings of other checks on those inputs ${other.length} (listed with --all)`);
if (missed.length) console.log(`\nnot reproduced:\n${missed.map((m) => `  ${m}`).join('\n')}`);
if (extra.length) console.log(`\nfalse positives:\n${extra.map((m) => `  ${m}`).join('\n')}`);
if (other.length && process.argv.includes('--all')) console.log(`\nother checks:\n${other.map((m) => `  ${m}`).join('\n')}`);
