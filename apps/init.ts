// `cdk8s-mesh init [DIR]`: a project of the user's own that depends on cdk8s-mesh, from
// the files in templates/app (shipped with the package).
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { PACKAGE_VERSION } from '../model';

const ROOT = [join(__dirname, '..'), join(__dirname, '..', '..')].find((d) => existsSync(join(d, 'templates', 'app')))!;
const PULUMI_FILES = ['Pulumi.yaml', 'pulumi.ts', 'pulumi.test.ts'];

/** `--data-plane` values: the DataPlane member, and the canary's retry policy on it. */
const ENVOY_RETRIES = "retries: { attempts: 2, perTryTimeout: '1s', retryOn: ['5xx', 'connect-failure'] },";
const DATA_PLANES: Record<string, { member: string; retries: string }> = {
  'istio': { member: 'ISTIO', retries: ENVOY_RETRIES },
  'node-sidecar': { member: 'NODE_SIDECAR', retries: ENVOY_RETRIES },
  // HTTPRoute's retry is on the experimental channel only, and knows status codes, not
  // Envoy's conditions: the scaffold says so instead of writing a rule synth would refuse.
  'gateway-api': {
    member: 'GATEWAY_API',
    retries: "// Retries: HTTPRoute's retry needs gatewayApi: { channel: 'experimental' } on the chart\n      // and status codes only, e.g. retries: { attempts: 2, perTryTimeout: '1s', retryOn: ['502', '503'] },",
  },
};

/** The versions this package is built and tested with: the scaffold gets the same. */
function versions(): Record<string, string> {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies?: Record<string, string>; peerDependencies?: Record<string, string> };
  return { ...pkg.peerDependencies, ...pkg.devDependencies };
}

export function init(argv: string[]): number {
  let values: { 'data-plane'?: string; pulumi?: boolean; name?: string; 'mesh-spec'?: string; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: { 'data-plane': { type: 'string' }, pulumi: { type: 'boolean' }, name: { type: 'string' }, 'mesh-spec': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    }));
  } catch (e) {
    process.stderr.write(`cdk8s-mesh init: ${(e as Error).message}\n`);
    return 2;
  }
  if (values.help) return -1;
  if (positionals.length > 1) {
    process.stderr.write(`cdk8s-mesh init: one directory expected, got ${positionals.join(' ')}\n`);
    return 2;
  }
  const dir = resolve(positionals[0] ?? '.');
  const dataPlane = values['data-plane'] ?? 'istio';
  const plane = DATA_PLANES[dataPlane];
  if (!plane) {
    process.stderr.write(`cdk8s-mesh init: --data-plane is "${dataPlane}"; expected ${Object.keys(DATA_PLANES).join(', ')}\n`);
    return 2;
  }
  const name = values.name ?? basename(dir).toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40);
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(name)) {
    process.stderr.write(`cdk8s-mesh init: the project name is "${name}"; expected a DNS-1123 label (pass --name)\n`);
    return 2;
  }
  if (existsSync(join(dir, 'package.json'))) {
    process.stderr.write(`cdk8s-mesh init: ${dir} already has a package.json; init writes a new project into an empty directory\n`);
    return 1;
  }
  mkdirSync(dir, { recursive: true });
  const v = versions();
  const fill = (text: string) => text
    .replace(/\{\{name\}\}/g, name)
    .replace(/\{\{DATA_PLANE\}\}/g, plane.member)
    .replace(/\{\{RETRIES\}\}/g, plane.retries)
    .replace(/\{\{DATA_PLANE_NAME\}\}/g, dataPlane);
  const templates = join(ROOT, 'templates', 'app');
  const written: string[] = [];
  for (const file of readdirSync(templates)) {
    if (!values.pulumi && PULUMI_FILES.includes(file)) continue;
    const target = file === 'gitignore' ? '.gitignore' : file; // npm drops .gitignore from packages
    writeFileSync(join(dir, target), fill(readFileSync(join(templates, file), 'utf8')));
    written.push(target);
  }
  const pkg = {
    name, version: '0.1.0', private: true,
    // cdk8s-mesh synth, not cdk8s synth: mesh lint before anything is written, a refusal as
    // one message (construct path, value, expectation) with exit 1, never a stack trace.
    scripts: { synth: 'cdk8s-mesh synth', test: 'jest', lint: 'cdk8s-mesh lint' },
    dependencies: {
      'cdk8s-mesh': values['mesh-spec'] ?? `^${PACKAGE_VERSION}`,
      cdk8s: v.cdk8s, 'cdk8s-plus-28': v['cdk8s-plus-28'], constructs: v.constructs,
      ...(values.pulumi ? { '@pulumi/pulumi': v['@pulumi/pulumi'], '@pulumi/kubernetes': v['@pulumi/kubernetes'] } : {}),
    },
    devDependencies: {
      'cdk8s-cli': v['cdk8s-cli'], typescript: v.typescript, 'ts-node': v['ts-node'], jest: v.jest, 'ts-jest': v['ts-jest'],
      '@types/jest': v['@types/jest'], '@types/node': v['@types/node'],
    },
  };
  writeFileSync(join(dir, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  written.push('package.json');
  process.stdout.write(`cdk8s-mesh init: wrote ${written.sort().join(', ')} in ${dir} (${dataPlane} data plane${values.pulumi ? ', Pulumi program' : ''})
next:
  cd ${dir}
  npm install && npm run synth && npm test
`);
  return 0;
}
