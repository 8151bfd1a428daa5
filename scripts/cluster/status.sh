#!/usr/bin/env bash
# scripts/cluster/status.sh [--quiet]: is the local cluster up and healthy?
# Exit 0: every component alive, API ready, node Ready. 1: partly up (or unhealthy).
# 3: no cluster recorded.
set -uo pipefail
SCRIPT_NAME=cluster-status
. "$(dirname "$0")/lib.sh"
quiet=0
[ "${1:-}" = --quiet ] && quiet=1
out() { [ "$quiet" = 1 ] || echo "$@"; }

if [ ! -d "$RUN_DIR/pids" ]; then
  out "cluster: down (nothing recorded in $RUN_DIR)"
  exit 3
fi
healthy=1
for c in "${COMPONENTS[@]}"; do
  if pid_alive "$RUN_DIR/pids/$c.pid" "$RUN_DIR"; then
    out "$(printf '%-24s running, pid %s' "$c" "$(cat "$RUN_DIR/pids/$c.pid")")"
  else
    out "$(printf '%-24s NOT running (log: %s)' "$c" "$RUN_DIR/logs/$c.log")"
    healthy=0
  fi
done
if [ "$healthy" = 1 ]; then
  if [ "$(kc --request-timeout=5s get --raw /readyz 2>/dev/null)" != ok ]; then
    out "kube-apiserver           not ready"
    healthy=0
  elif [ "$(kc --request-timeout=5s get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" != True ]; then
    out "node $NODE_NAME          not Ready"
    healthy=0
  else
    out "node $NODE_NAME          Ready; $(kc get pods -A --no-headers 2>/dev/null | wc -l) pods"
  fi
fi
if [ "$healthy" = 1 ]; then
  out "cluster: up (export KUBECONFIG=$KUBECONFIG_FILE)"
  exit 0
fi
out "cluster: unhealthy; scripts/cluster/down.sh cleans it up"
exit 1
