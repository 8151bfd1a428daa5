# Shared by the scripts in scripts/cluster/ (sourced, not run).
# The local cluster lives in $MESH_K8S_CACHE (default /var/cache/mesh-k8s):
#   bin/      kube-apiserver, kubelet, kube-proxy, kube-scheduler, kube-controller-manager, pause
#   src/      Debian's kubernetes source (kept so a rebuild does not download it again)
#   images/   OCI archives of the images the harness builds
#   run/      state of a running cluster (pids, pki, kubeconfig, logs); gone after `down`

CLUSTER_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROJECT_DIR="$(cd "$CLUSTER_DIR/../.." && pwd)"
CACHE_DIR="${MESH_K8S_CACHE:-${K8S_CACHE:-/var/cache/mesh-k8s}}"
BIN_DIR="$CACHE_DIR/bin"
RUN_DIR="$CACHE_DIR/run"
IMAGE_DIR="$CACHE_DIR/images"
KUBECONFIG_FILE="$RUN_DIR/kubeconfig"

# The cluster's fixed addresses: a private bridge for pods, a service range, DNS.
# Nothing here is reachable from outside the machine.
BRIDGE=mesh0
BRIDGE_IP=10.244.0.1
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/12
DNS_IP=10.96.0.10
NODE_NAME=mesh-node
# Control-plane ports on 127.0.0.1, the API server on the bridge address (outside the NodePort range 30000-32767).
ETCD_PORT=22379
ETCD_PEER_PORT=22380
APISERVER_PORT=36443
CONTAINERD_ROOT="$CACHE_DIR/containerd"
CONTAINERD_STATE=/run/mesh-k8s/containerd
CONTAINERD_SOCK=$CONTAINERD_STATE/containerd.sock

# The binaries a cluster needs (all built from one source tree by build.sh).
K8S_COMPONENTS=(kube-apiserver kubelet kube-proxy kube-scheduler kube-controller-manager)

# Debian packages the cluster needs at run time (build.sh adds the toolchain).
RUNTIME_PACKAGES=(etcd-server containerd runc containernetworking-plugins iptables conntrack
  dnsmasq-base buildah openssl curl ca-certificates)

say() { printf '%s: %s\n' "${SCRIPT_NAME:-cluster}" "$*"; }
die() { printf '%s: %s\n' "${SCRIPT_NAME:-cluster}" "$*" >&2; exit 1; }

# True when this machine can run the cluster at all; otherwise prints why.
check_host() {
  [ "$(id -u)" = 0 ] || { echo "the local cluster needs root (kubelet, containerd, iptables, network namespaces); run as root"; return 1; }
  command -v apt-get >/dev/null 2>&1 && [ -r /etc/debian_version ] ||
    { echo "the local cluster is built from Debian packages; this is not a Debian system"; return 1; }
  return 0
}

is_installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# apt_install PKG...: installs what is missing, without letting package scripts start
# services (containerd and etcd would otherwise start system instances).
APT_UPDATED=0
apt_install() {
  local missing=() p rc=0 made_policy=0
  for p in "$@"; do is_installed "$p" || missing+=("$p"); done
  [ "${#missing[@]}" -eq 0 ] && return 0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made_policy=1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q --no-install-recommends "${missing[@]}" >>"${APT_LOG:-/dev/null}" 2>&1 || rc=$?
  if [ "$rc" != 0 ] && [ "$APT_UPDATED" = 0 ]; then
    apt-get update -q >>"${APT_LOG:-/dev/null}" 2>&1 && APT_UPDATED=1
    rc=0
    apt-get install -y -q --no-install-recommends "${missing[@]}" >>"${APT_LOG:-/dev/null}" 2>&1 || rc=$?
  fi
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  [ "$rc" = 0 ] || { echo "apt-get install ${missing[*]} failed (log: ${APT_LOG:-none})" >&2; return 1; }
  return 0
}

# pid_alive PIDFILE MARKER: the recorded process is alive and its command line
# contains MARKER (a recycled pid is never taken for ours).
pid_alive() {
  local f="$1" marker="$2" pid
  [ -s "$f" ] || return 1
  pid="$(cat "$f")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" != Z ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$marker"
}

kc() { kubectl --kubeconfig "$KUBECONFIG_FILE" "$@"; }

# listening ADDR:PORT -> true if a TCP socket listens there.
listening() { ss -Htln 2>/dev/null | awk '{ print $4 }' | grep -qxF -- "$1"; }

# The long-running processes of a cluster, in start order (down.sh stops them in reverse).
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy dns-sync dnsmasq)
