#!/usr/bin/env node
// Entry point for `npx cdk8s-mesh <command>`. Runs the TypeScript sources directly
// (transpile-only) so the CLI and the library never drift apart.
require('ts-node').register({ transpileOnly: true, project: require('path').join(__dirname, '..', 'tsconfig.json') });
require('../apps/cli').main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err) => { console.error(err instanceof Error ? err.message : err); process.exitCode = 1; },
);
