#!/usr/bin/env bash
# scripts/cluster/up.sh: start a single-node Kubernetes 1.20 on this machine.
#
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd (with the
# oom_score_adj wrapper around runc), kubelet, kube-proxy (iptables), a CNI bridge
# `mesh0` (10.244.0.1/24) and cluster DNS (dnsmasq on the bridge address, fed by
# dns-sync.js). Control-plane ports listen on 127.0.0.1; the kubelet and DNS on the
# bridge address, which exists only on this machine. Every process is recorded in
# run/pids so that down.sh stops exactly these.
#
# Idempotent: a healthy cluster is reused as it is; a broken one is taken down first.
# Prints the KUBECONFIG to use. Needs root on Debian (see check_host in lib.sh).
set -euo pipefail
SCRIPT_NAME=cluster-up
. "$(dirname "$0")/lib.sh"

why="$(check_host)" || die "$why"
START_TIMEOUT="${MESH_K8S_START_TIMEOUT:-180}"

bash "$CLUSTER_DIR/build.sh" >&2 || die "building the Kubernetes binaries failed"
mkdir -p "$CACHE_DIR"
APT_LOG="$CACHE_DIR/apt.log"
apt_install "${RUNTIME_PACKAGES[@]}" || die "installing ${RUNTIME_PACKAGES[*]} failed"
# Any kubectl will do (1.20's from Debian when there is none).
command -v kubectl >/dev/null 2>&1 || apt_install kubernetes-client || die "no kubectl, and installing kubernetes-client failed"

# The time to bring the cluster up, reported by `up` and by test:e2e, leaves out the
# one-time build and package installs above.
T0=$(date +%s.%N)
exec 8>"$CACHE_DIR/.up.lock"
flock 8

if bash "$CLUSTER_DIR/status.sh" --quiet; then
  say "already up and healthy; reusing it (KUBECONFIG=$KUBECONFIG_FILE)"
  exit 0
fi
if [ -d "$RUN_DIR" ]; then
  say "a previous cluster is not healthy; taking it down first" >&2
  bash "$CLUSTER_DIR/down.sh" >&2 || die "could not take the previous cluster down"
fi

# Refuse to share the machine with another node: its rules and ours would mix.
if iptables-save 2>/dev/null | grep -q '^:KUBE-'; then
  die "iptables already has KUBE-* chains (another Kubernetes node on this machine?); not starting"
fi
for port in "127.0.0.1:$ETCD_PORT" "127.0.0.1:$ETCD_PEER_PORT" "127.0.0.1:$APISERVER_PORT" "$BRIDGE_IP:$APISERVER_PORT" 127.0.0.1:10248 127.0.0.1:10249 127.0.0.1:10256; do
  if listening "$port"; then die "$port is already in use"; fi
done
ip link show "$BRIDGE" >/dev/null 2>&1 && die "a bridge $BRIDGE exists already (not ours: no cluster is recorded)"

mkdir -p "$RUN_DIR"/{pids,logs,pki,cni,cni-ipam,dns,kubelet,kubelet-plugins} "$CONTAINERD_STATE"
PKI="$RUN_DIR/pki"
LOGS="$RUN_DIR/logs"
date +%s >"$RUN_DIR/started-at"

failed() {
  echo "cluster-up: FAILED: $*" >&2
  local f
  for f in "$LOGS"/*.log; do
    [ -s "$f" ] || continue
    echo "----- last lines of $f" >&2
    tail -n 8 "$f" >&2
  done
  bash "$CLUSTER_DIR/down.sh" >/dev/null 2>&1 || true
  exit 1
}
trap 'failed "interrupted"' INT TERM

# start NAME CMD...: runs CMD in its own session, logs to logs/NAME.log, records its pid.
start() {
  local name="$1" pid i
  shift
  setsid "$@" </dev/null >"$LOGS/$name.log" 2>&1 8>&- &
  pid=$!
  echo "$pid" >"$RUN_DIR/pids/$name.pid"
  # Until the child has exec'd, /proc/<pid>/cmdline is still this script's, which alive()
  # would take for an exit (a CI run failed so: "dnsmasq exited", its log empty). Wait for
  # the real command line (or the process's end) before anyone asks.
  for i in $(seq 1 100); do
    alive "$name" && return 0
    [ -d "/proc/$pid" ] || return 0
    sleep 0.05
  done
}
alive() { pid_alive "$RUN_DIR/pids/$1.pid" "$RUN_DIR"; }
# wait_for WHAT COMPONENT CMD...: polls CMD until it succeeds, the component dies, or time is up.
wait_for() {
  local what="$1" comp="$2" deadline=$(( $(date +%s) + START_TIMEOUT ))
  shift 2
  until "$@" >/dev/null 2>&1; do
    alive "$comp" || failed "$comp exited while waiting for $what"
    [ "$(date +%s)" -lt "$deadline" ] || failed "$what not ready after ${START_TIMEOUT}s"
    sleep 0.5
  done
}

# ---------------------------------------------------------------- host settings
# Recorded once, restored by down.sh. The kubelet itself sets the vm/kernel ones.
SYSCTLS=(net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.ipv4.conf.all.route_localnet
  vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
: >"$RUN_DIR/sysctl.orig"
for s in "${SYSCTLS[@]}"; do
  v="$(sysctl -n "$s" 2>/dev/null)" && echo "$s=$v" >>"$RUN_DIR/sysctl.orig"
done
sysctl -qw net.ipv4.ip_forward=1
# Pod -> Service -> pod on the same bridge: replies must pass kube-proxy's NAT too.
sysctl -qw net.bridge.bridge-nf-call-iptables=1 || failed "cannot set net.bridge.bridge-nf-call-iptables (br_netfilter missing?)"

ip link add "$BRIDGE" type bridge
ip addr add "$BRIDGE_IP/24" dev "$BRIDGE"
ip link set "$BRIDGE" up

# ---------------------------------------------------------------- certificates
{
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -keyout "$PKI/ca.key" -out "$PKI/ca.crt" -subj "/CN=mesh-k8s-ca"
  # cert NAME SUBJECT EXTENDED_USAGE [SAN]
  cert() {
    openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$PKI/$1.key" -out "$PKI/$1.csr" -subj "$2"
    { echo 'basicConstraints=CA:FALSE'; echo 'keyUsage=critical,digitalSignature,keyEncipherment'
      echo "extendedKeyUsage=$3"; [ -n "${4:-}" ] && echo "subjectAltName=$4"; } >"$PKI/$1.ext"
    openssl x509 -req -sha256 -days 365 -in "$PKI/$1.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
      -CAcreateserial -out "$PKI/$1.crt" -extfile "$PKI/$1.ext"
  }
  cert apiserver /CN=kube-apiserver serverAuth \
    "IP:127.0.0.1,IP:10.96.0.1,IP:$BRIDGE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  # The apiserver's client certificate towards the kubelet (exec, logs, port-forward).
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" clientAuth
  cert kubelet "/CN=$NODE_NAME" serverAuth "IP:$BRIDGE_IP,DNS:$NODE_NAME"
  openssl genrsa -out "$PKI/sa.key" 2048
  openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"
} >"$LOGS/openssl.log" 2>&1 || failed "openssl"
TOKEN="$(openssl rand -hex 24)"
printf '%s,mesh-admin,mesh-admin,"system:masters"\n' "$TOKEN" >"$PKI/tokens.csv"
chmod 600 "$PKI"/*

umask 077
cat >"$KUBECONFIG_FILE" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: mesh-k8s
  cluster:
    server: https://${BRIDGE_IP}:${APISERVER_PORT}
    certificate-authority-data: $(base64 -w0 <"$PKI/ca.crt")
users:
- name: mesh-admin
  user:
    token: ${TOKEN}
contexts:
- name: mesh-k8s
  context:
    cluster: mesh-k8s
    user: mesh-admin
current-context: mesh-k8s
EOF
umask 022

# ---------------------------------------------------------------- control plane
start etcd etcd --name mesh-k8s --data-dir "$RUN_DIR/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "mesh-k8s=http://127.0.0.1:$ETCD_PEER_PORT" --initial-cluster-state new \
  --logger zap --log-level warn
wait_for "etcd" etcd sh -c "curl -fsS --max-time 2 http://127.0.0.1:$ETCD_PORT/health | grep -q '\"health\":\"true\"'"

start kube-apiserver "$BIN_DIR/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address="$BRIDGE_IP" --advertise-address="$BRIDGE_IP" --secure-port="$APISERVER_PORT" --insecure-port=0 \
  --cert-dir="$PKI" --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" --token-auth-file="$PKI/tokens.csv" --authorization-mode=Node,RBAC \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="$PKI/ca.crt" --kubelet-preferred-address-types=InternalIP \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --api-audiences=https://kubernetes.default.svc.cluster.local \
  --service-cluster-ip-range="$SERVICE_CIDR" --endpoint-reconciler-type=none \
  --allow-privileged=false --profiling=false --v=1
wait_for "kube-apiserver" kube-apiserver sh -c "[ \"\$(kubectl --kubeconfig '$KUBECONFIG_FILE' --request-timeout=5s get --raw /readyz 2>/dev/null)\" = ok ]"

start kube-controller-manager "$BIN_DIR/kube-controller-manager" \
  --kubeconfig="$KUBECONFIG_FILE" --leader-elect=false --port=0 --bind-address=127.0.0.1 \
  --authentication-kubeconfig="$KUBECONFIG_FILE" --authorization-kubeconfig="$KUBECONFIG_FILE" \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --use-service-account-credentials=false --allocate-node-cidrs=false --profiling=false --v=1
start kube-scheduler "$BIN_DIR/kube-scheduler" \
  --kubeconfig="$KUBECONFIG_FILE" --leader-elect=false --port=0 --bind-address=127.0.0.1 \
  --authentication-kubeconfig="$KUBECONFIG_FILE" --authorization-kubeconfig="$KUBECONFIG_FILE" \
  --profiling=false --v=1

# ---------------------------------------------------------------- container runtime
cp "$CLUSTER_DIR/runc-wrapper.sh" "$RUN_DIR/runc"
chmod 755 "$RUN_DIR/runc"
cat >"$RUN_DIR/cni/10-mesh.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "mesh",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$RUN_DIR/cni-ipam",
        "ranges": [[{ "subnet": "$POD_CIDR", "gateway": "$BRIDGE_IP" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    }
  ]
}
EOF
cat >"$RUN_DIR/containerd.toml" <<EOF
version = 2
root = "$CONTAINERD_ROOT"
state = "$CONTAINERD_STATE"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$CONTAINERD_SOCK"
[ttrpc]
  address = "$CONTAINERD_STATE/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "$CACHE_DIR/containerd-opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/pause:3.2"
  stream_server_address = "127.0.0.1"
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "$RUN_DIR/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$RUN_DIR/cni"
EOF
start containerd containerd --config "$RUN_DIR/containerd.toml"
wait_for "containerd" containerd ctr --address "$CONTAINERD_SOCK" version

# The pod sandbox image, from the pause binary build.sh made (nothing is pulled).
bash "$CLUSTER_DIR/images.sh" pause >&2 || failed "importing the pause image"

# ---------------------------------------------------------------- node
echo "# pods get cluster DNS only (dnsPolicy: ClusterFirst); no host search domains" >"$RUN_DIR/resolv.conf"
cat >"$RUN_DIR/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $BRIDGE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $PKI/kubelet.crt
tlsPrivateKeyFile: $PKI/kubelet.key
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: false }
  x509: { clientCAFile: $PKI/ca.crt }
authorization: { mode: AlwaysAllow }
cgroupDriver: cgroupfs
failSwapOn: false
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
resolvConf: $RUN_DIR/resolv.conf
volumePluginDir: $RUN_DIR/kubelet-plugins
# Small disks must not evict the test pods or collect the locally built images.
evictionHard: { memory.available: 100Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1% }
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
# How often the kubelet re-reads mounted ConfigMaps (the route table): 1m upstream.
syncFrequency: ${MESH_K8S_SYNC_FREQUENCY:-10s}
EOF
start kubelet "$BIN_DIR/kubelet" --config="$RUN_DIR/kubelet.yaml" --kubeconfig="$KUBECONFIG_FILE" \
  --container-runtime=remote --container-runtime-endpoint="unix://$CONTAINERD_SOCK" \
  --root-dir="$RUN_DIR/kubelet" --cert-dir="$PKI" --hostname-override="$NODE_NAME" --node-ip="$BRIDGE_IP" \
  --oom-score-adj=0 --v=1
start kube-proxy "$BIN_DIR/kube-proxy" --kubeconfig="$KUBECONFIG_FILE" --proxy-mode=iptables \
  --hostname-override="$NODE_NAME" --bind-address="$BRIDGE_IP" --cluster-cidr="$POD_CIDR" \
  --nodeport-addresses="$POD_CIDR" --healthz-bind-address=127.0.0.1:10256 --metrics-bind-address=127.0.0.1:10249 \
  --oom-score-adj=0 --conntrack-max-per-core=0 --conntrack-tcp-timeout-established=0s \
  --conntrack-tcp-timeout-close-wait=0s --profiling=false --v=1

# ---------------------------------------------------------------- the API from pods
# The API server listens on the bridge address, which only this machine and its pods
# reach; Service `kubernetes` (10.96.0.1:443) leads there (the endpoint reconciler is off,
# as the API server's own address is not a pod's). In-cluster clients (Prometheus's
# discovery, the addons) use it with their ServiceAccount's token.
kc apply -f - >/dev/null <<EOF || failed "creating the kubernetes Endpoints"
apiVersion: v1
kind: Endpoints
metadata: { name: kubernetes, namespace: default }
subsets:
- addresses: [{ ip: $BRIDGE_IP }]
  ports:
  - { name: https, port: $APISERVER_PORT, protocol: TCP }
EOF

# ---------------------------------------------------------------- DNS
# A Service kube-dns (10.96.0.10) without selector whose Endpoints point at dnsmasq.
kc apply -f - >/dev/null <<EOF || failed "creating the kube-dns Service"
apiVersion: v1
kind: Service
metadata: { name: kube-dns, namespace: kube-system, labels: { k8s-app: kube-dns } }
spec:
  clusterIP: $DNS_IP
  ports:
  - { name: dns, port: 53, protocol: UDP, targetPort: 53 }
  - { name: dns-tcp, port: 53, protocol: TCP, targetPort: 53 }
---
apiVersion: v1
kind: Endpoints
metadata: { name: kube-dns, namespace: kube-system }
subsets:
- addresses: [{ ip: $BRIDGE_IP }]
  ports:
  - { name: dns, port: 53, protocol: UDP }
  - { name: dns-tcp, port: 53, protocol: TCP }
EOF
mkdir -p "$RUN_DIR/dns/hosts.d"
start dns-sync node "$CLUSTER_DIR/dns-sync.js" "$KUBECONFIG_FILE" "$RUN_DIR/dns/hosts.d/services"
wait_for "the DNS hosts file" dns-sync test -s "$RUN_DIR/dns/hosts.d/services"
start dnsmasq dnsmasq --keep-in-foreground --conf-file=/dev/null --no-hosts --no-resolv \
  --bind-interfaces --listen-address="$BRIDGE_IP" --port=53 --hostsdir="$RUN_DIR/dns/hosts.d" \
  --local=/cluster.local/ --domain-needed --log-facility=- --pid-file=
wait_for "dnsmasq" dnsmasq listening "$BRIDGE_IP:53"

# ---------------------------------------------------------------- ready?
wait_for "node $NODE_NAME Ready" kubelet sh -c \
  "kubectl --kubeconfig '$KUBECONFIG_FILE' get node '$NODE_NAME' -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
wait_for "the default ServiceAccount" kube-controller-manager kc get serviceaccount default -n default
for c in "${COMPONENTS[@]}"; do
  alive "$c" || failed "$c exited"
done
trap - INT TERM
ELAPSED="$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')"
echo "$ELAPSED" >"$RUN_DIR/up-seconds"
say "up in ${ELAPSED}s: node $NODE_NAME Ready, API https://$BRIDGE_IP:$APISERVER_PORT; export KUBECONFIG=$KUBECONFIG_FILE"
