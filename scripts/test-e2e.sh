#!/usr/bin/env bash
# `npm run test:e2e`: the charts as pods on the local cluster: every chart's node-sidecar
# YAML with its traffic checked from inside pods, and its Istio YAML applied as objects
# and pods (no Istio runs here, so its routing is not exercised).
#
# Synthesizes the charts under test, brings the cluster up (or reuses a healthy one),
# builds and imports the images, runs the jest e2e suites (test/e2e/*.e2e.ts, results in
# .jest-e2e-results.json), and takes the cluster down again if this run started it.
# Ends with: e2e: <charts> charts, <checks> checks, <failed> failed, cluster up in <s> s
# Extra arguments go to jest (e.g. -t web-weighted).
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/cluster/lib.sh
RESULTS="${E2E_RESULTS:-.jest-e2e-results.json}"
CHARTS=(web-basic web-round-robin web-weighted demo-gateway springboot-canary springboot-canary-timeout
  bookinfo bookinfo-jason-v2 bookinfo-jason-v2-else-v3 bookinfo-reviews-80-20 bookinfo-reviews-50-v3
  bookinfo-reviews-v3 bookinfo-ratings-abort-jason bookinfo-ratings-delay-jason bookinfo-tracing)

why="$(check_host)" || { echo "test:e2e: cannot run: $why"; exit 1; }
rm -f "$RESULTS"

# Both data planes: the node-sidecar YAML runs with routing checked, the Istio YAML
# (istio-plane.e2e.ts) as objects and pods only, there being no Istio in the cluster.
node bin/cdk8s-mesh.js synth "${CHARTS[@]}" "${CHARTS[@]/%/-node-sidecar}" >/dev/null || { echo "test:e2e: synth failed"; exit 1; }

started=0
cleanup() { if [ "$started" = 1 ]; then bash scripts/cluster/down.sh; fi; }
trap cleanup EXIT
trap 'exit 130' INT TERM
if bash scripts/cluster/status.sh --quiet; then
  echo "test:e2e: reusing the running cluster (left up afterwards)"
else
  started=1
  bash scripts/cluster/up.sh || { echo "test:e2e: the local cluster did not come up (logs: $RUN_DIR/logs)"; exit 1; }
fi
up_seconds="$(cat "$RUN_DIR/up-seconds" 2>/dev/null || echo '?')"
t0=$(date +%s)
bash scripts/cluster/images.sh all || { echo "test:e2e: building the images failed (log: $CACHE_DIR/images.log)"; exit 1; }
echo "test:e2e: images ready in $(( $(date +%s) - t0 )) s"

KUBECONFIG="$KUBECONFIG_FILE" npx jest -c jest.e2e.config.js --json --outputFile="$RESULTS" "$@"
status=$?

if [ -f "$RESULTS" ]; then
  CHART_COUNT=${#CHARTS[@]} UP="$up_seconds" node -e '
    const r = require(require("path").resolve(process.argv[1]));
    const failed = r.numFailedTests + r.numRuntimeErrorTestSuites;
    console.log(`e2e: ${process.env.CHART_COUNT} charts, ${r.numTotalTests} checks, ${failed} failed, cluster up in ${process.env.UP} s`);
  ' "$RESULTS"
else
  echo "e2e: ${#CHARTS[@]} charts, 0 checks, 1 failed, cluster up in $up_seconds s"
  status=1
fi
exit $status
