#!/usr/bin/env bash
# `npm run docs:check`: regenerate the API reference into a temporary directory and
# compare it with docs/api; run `npm run docs` and commit when they differ.
set -uo pipefail
cd "$(dirname "$0")/.."
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
npx typedoc --out "$out" >/dev/null || { echo "docs:check: typedoc failed (undocumented exports or broken links: run npm run docs)" >&2; exit 1; }
if ! diff -r docs/api "$out" >/dev/null; then
  diff -r docs/api "$out" | head -20
  echo "docs:check: docs/api is out of date; run \`npm run docs\` and commit it" >&2
  exit 1
fi
echo "docs:check: docs/api is up to date ($(find docs/api -type f | wc -l) files)"
# The Python reference, from the jsii assembly (jsii-docgen).
bash scripts/jsii.sh --docs "$out/api-python.md" >/dev/null 2>"$out/jsii.log" || { cat "$out/jsii.log" >&2; echo "docs:check: the jsii build failed" >&2; exit 1; }
if ! cmp -s docs/api-python.md "$out/api-python.md"; then
  diff docs/api-python.md "$out/api-python.md" | head -20
  echo "docs:check: docs/api-python.md is out of date; run \`npm run docs\` and commit it" >&2
  exit 1
fi
echo "docs:check: docs/api-python.md is up to date"
