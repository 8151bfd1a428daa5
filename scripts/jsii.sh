#!/usr/bin/env bash
# `npm run build:jsii`: compile the jsii API (jsii.ts) into a .jsii assembly, generate the
# Python package's source with jsii-pacmak (build/jsii/dist/python; installing it needs the
# `jsii` runtime from PyPI, which these machines cannot reach) and the Python API reference
# with jsii-docgen. jsii compiles every .ts file of its project, so the sources it needs are
# copied into build/jsii with a package.json whose "main" is the jsii entry.
# Usage: bash scripts/jsii.sh [--docs FILE]   (FILE: where the Python API reference goes)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=build/jsii
rm -rf "$out"
mkdir -p "$out/src"
cp -r constructs model lint jsii.ts README.md LICENSE "$out/src/"
mv "$out/src/README.md" "$out/src/LICENSE" "$out/"
ln -s "$root/node_modules" "$out/node_modules"
node -e '
const pkg = require("./package.json");
const deps = Object.fromEntries(Object.entries(pkg.dependencies));
// jsii wants each peer dependency installed at the lowest version of its range; the assembly is built
// against the versions installed here, so that is the range it declares.
const installed = (n) => require(n + "/package.json").version;
const libs = ["cdk8s", "cdk8s-plus-28", "constructs"];
const peer = Object.fromEntries(libs.map((n) => [n, "^" + installed(n)]));
const dev = Object.fromEntries(libs.map((n) => [n, installed(n)]));
const manifest = {
  name: pkg.name, version: pkg.version, description: pkg.description, license: pkg.license,
  author: { name: "cdk8s-mesh developers", organization: true },
  repository: { type: "git", url: "https://github.com/cdk8s-mesh/cdk8s-mesh.git" },
  main: "lib/jsii.js", types: "lib/jsii.d.ts",
  dependencies: deps, bundledDependencies: Object.keys(deps),
  peerDependencies: peer, devDependencies: dev,
  jsii: {
    outdir: "dist",
    tsc: { rootDir: "src", outDir: "lib" },
    excludeTypescript: [],
    targets: { python: { distName: "cdk8s-mesh", module: "cdk8s_mesh" } },
  },
};
require("fs").writeFileSync(process.argv[1], JSON.stringify(manifest, null, 2) + "\n");
' "$out/package.json"
cd "$out"
# jsii warns that Node 20 is past its end of life; the compiler itself runs fine on it.
# Reserved words: `namespace` (C#) and `type` (Go) are props as Kubernetes and cdk8s name them
# (ChartProps.namespace); jsii's generators rename them in those languages.
JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 "$root/node_modules/.bin/jsii" --silence-warnings=reserved-word
echo "jsii: assembly $out/.jsii ($(node -e 'console.log(Object.keys(JSON.parse(require("fs").readFileSync(".jsii", "utf8")).types).length)') types)"
JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION=20 "$root/node_modules/.bin/jsii-pacmak" --code-only --targets python --outdir dist
echo "jsii: Python package source in $out/dist/python ($(find dist/python -name '*.py' | xargs cat | wc -l) lines)"
if [ "${1:-}" = "--docs" ]; then
  case "${2:?--docs needs a file}" in /*) docs="$2" ;; *) docs="$root/$2" ;; esac
  "$root/node_modules/.bin/jsii-docgen" --language python --output "$docs"
  echo "jsii: Python API reference in ${2}"
fi
