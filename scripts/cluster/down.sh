#!/usr/bin/env bash
# scripts/cluster/down.sh: stop the local cluster and undo what up.sh did.
#
# Pods are deleted through the API while the kubelet still runs (so the CNI tears down
# their network namespaces and veths), then every process recorded in run/pids is
# stopped in reverse start order (by pid, checked against its command line), leftover
# containerd tasks and shims of our socket are removed, mounts under the cluster's
# directories are unmounted, kube-proxy's and the kubelet's iptables chains (KUBE-*)
# are removed, the bridge is deleted and the sysctls up.sh changed are restored.
# Built binaries and imported images stay in the cache for the next `up`.
set -uo pipefail
SCRIPT_NAME=cluster-down
. "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || die "needs root"
if [ ! -d "$RUN_DIR" ] && ! ip link show "$BRIDGE" >/dev/null 2>&1; then
  say "nothing to stop"
  exit 0
fi
exec 8>"$CACHE_DIR/.down.lock"
flock 8

alive() { pid_alive "$RUN_DIR/pids/$1.pid" "$RUN_DIR"; }
ctr_() { ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }
stopped=()
stop() { # NAME: TERM, then KILL after 10 s
  local name="$1" pid i
  alive "$name" || { rm -f "$RUN_DIR/pids/$name.pid"; return 0; }
  pid="$(cat "$RUN_DIR/pids/$name.pid")"
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 1 100); do alive "$name" || break; sleep 0.1; done
  alive "$name" && kill -KILL "$pid" 2>/dev/null
  for i in $(seq 1 20); do alive "$name" || break; sleep 0.1; done
  rm -f "$RUN_DIR/pids/$name.pid"
  stopped+=("$name")
}
# 1. No new pods, then the pods themselves, killed by the kubelet: it stops each sandbox
#    through the CRI, so the CNI plugin removes its veth and address. (A graceful delete
#    would wait for the kubelet's 10 s status sync per pod; the cluster is going away.)
stop kube-controller-manager
stop kube-scheduler
running_tasks() { ctr_ tasks ls 2>/dev/null | awk 'NR > 1 && $3 == "RUNNING"' | wc -l; }
if alive kube-apiserver && alive kubelet && alive containerd; then
  if [ -n "$(kc get pods -A --no-headers 2>/dev/null | head -n1)" ]; then
    kc delete pods --all -A --grace-period=0 --force --wait=false >/dev/null 2>&1
    for _ in $(seq 1 60); do [ "$(running_tasks)" = 0 ] && break; sleep 0.5; done
    [ "$(running_tasks)" = 0 ] || echo "cluster-down: the kubelet left containers running after 30 s; killing them directly" >&2
  fi
fi

# 2. The node, DNS, and kube-proxy's rules.
stop kubelet
stop kube-proxy
[ -x "$BIN_DIR/kube-proxy" ] && "$BIN_DIR/kube-proxy" --cleanup >/dev/null 2>&1
stop dnsmasq
stop dns-sync

# 3. Whatever containers are left, then containerd.
if alive containerd; then
  for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
  sleep 0.5
  for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$t" >/dev/null 2>&1; done
  for c in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "$c" >/dev/null 2>&1; done
fi
stop containerd
# Shims serving our containerd's socket (each container's parent) outlive a stopped containerd.
for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" 2>/dev/null); do
  kill -KILL "$pid" 2>/dev/null && stopped+=("shim($pid)")
done
stop kube-apiserver
stop etcd

# 4. Mounts: pod volumes, container root filesystems, sandbox shm, network namespaces.
for prefix in "$RUN_DIR" "$CONTAINERD_STATE" "$CONTAINERD_ROOT"; do
  findmnt -rn -o TARGET 2>/dev/null | grep -F -- "$prefix/" | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2- |
    while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
done

# 5. iptables: the chains the kubelet and kube-proxy made (all named KUBE-*), and the
#    jumps into them. Other rules are restored untouched.
for cmd in iptables ip6tables; do
  for table in filter nat mangle; do
    saved="$("$cmd-save" -t "$table" 2>/dev/null)" || continue
    grep -q 'KUBE-' <<<"$saved" || continue
    grep -v -- 'KUBE-' <<<"$saved" | "$cmd-restore" 2>/dev/null ||
      echo "cluster-down: could not remove KUBE-* chains from $cmd $table" >&2
  done
done

# 6. Network, cgroups, logs, sysctls.
ip link delete "$BRIDGE" 2>/dev/null
for h in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/unified/kubepods; do
  [ -d "$h" ] && find "$h" -depth -type d -exec rmdir {} \; 2>/dev/null
done
if [ -f "$RUN_DIR/started-at" ]; then
  find /var/log/pods /var/log/containers -mindepth 1 -maxdepth 1 -newer "$RUN_DIR/started-at" \
    -exec rm -rf {} + 2>/dev/null
fi
if [ -f "$RUN_DIR/sysctl.orig" ]; then
  while IFS= read -r kv; do sysctl -qw "$kv" >/dev/null 2>&1; done <"$RUN_DIR/sysctl.orig"
fi
rm -rf "$RUN_DIR" "$CONTAINERD_STATE"
rmdir /run/mesh-k8s 2>/dev/null

if [ "${#stopped[@]}" -gt 0 ]; then say "stopped ${stopped[*]}"; else say "nothing was running; cleaned up"; fi
