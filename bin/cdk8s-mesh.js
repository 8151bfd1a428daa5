#!/usr/bin/env node
// Entry point for `npx cdk8s-mesh <command>`.
// Installed from npm, it runs the compiled JavaScript in lib/ and the bundled proxy in
// build/sidecar/main.js: no TypeScript at run time. In a checkout of the repository (the
// TypeScript sources are next to it and ts-node is installed) it runs the sources, so
// the CLI never lags behind an edit.
const fs = require('fs');
const path = require('path');
const root = path.join(__dirname, '..');
const argv = process.argv.slice(2);
const fail = (err) => { console.error(err instanceof Error ? err.message : err); process.exit(1); };

function fromSources() {
  if (!fs.existsSync(path.join(root, 'constructs', 'index.ts'))) return false;
  try {
    require.resolve('ts-node');
  } catch {
    return false;
  }
  require('ts-node').register({ transpileOnly: true, project: path.join(root, 'tsconfig.json') });
  return true;
}

if (argv[0] === 'sidecar') {
  const bundle = path.join(root, 'build', 'sidecar', 'main.js');
  const sidecar = fs.existsSync(bundle) ? require(bundle) : (fromSources() ? require('../apps/sidecar/main') : fail(`cdk8s-mesh: ${bundle} is missing; run \`npm run build\``));
  sidecar.main(argv.slice(1)).then((code) => { if (code >= 0) process.exit(code); }, (err) => {
    console.error(`cdk8s-mesh sidecar: ${err instanceof Error ? err.message : err}`);
    process.exit(1);
  });
} else {
  const cli = fromSources() ? require('../apps/cli') : require('../lib/apps/cli');
  cli.main(argv).then((code) => { process.exitCode = code; }, fail);
}
