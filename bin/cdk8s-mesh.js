#!/usr/bin/env node
// Entry point for `npx cdk8s-mesh <command>`.
// `sidecar` runs the bundled proxy (build/sidecar/main.js, `npm run build:sidecar`):
// a long-running process should not carry the TypeScript compiler in memory. Without
// a build it falls back to the sources. Every other command runs the TypeScript
// sources directly (transpile-only) so the CLI and the library never drift apart.
const fs = require('fs');
const path = require('path');
const argv = process.argv.slice(2);
const fail = (err) => { console.error(err instanceof Error ? err.message : err); process.exit(1); };

if (argv[0] === 'sidecar') {
  const bundle = path.join(__dirname, '..', 'build', 'sidecar', 'main.js');
  if (!fs.existsSync(bundle)) {
    require('ts-node').register({ transpileOnly: true, project: path.join(__dirname, '..', 'tsconfig.json') });
  }
  const sidecar = require(fs.existsSync(bundle) ? bundle : '../apps/sidecar/main');
  sidecar.main(argv.slice(1)).then((code) => { if (code >= 0) process.exit(code); }, (err) => {
    console.error(`cdk8s-mesh sidecar: ${err instanceof Error ? err.message : err}`);
    process.exit(1);
  });
} else {
  require('ts-node').register({ transpileOnly: true, project: path.join(__dirname, '..', 'tsconfig.json') });
  require('../apps/cli').main(argv).then((code) => { process.exitCode = code; }, fail);
}
