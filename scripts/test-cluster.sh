#!/usr/bin/env bash
# `npm run test:cluster`: every manifest in dist/ (both data planes) through a real
# kube-apiserver 1.20 with Istio's CRDs: its Namespaces created, then
# `kubectl apply --server-side --dry-run=server`. Rejections are printed with the
# server's message; exit 1 on any. A deliberately broken VirtualService and
# DestinationRule must be rejected too (so the check can fail).
# Needs root on Debian the first time (apt-get; ~4 min build, then cached).
set -uo pipefail
cd "$(dirname "$0")/.."
K8S_DIR="${MESH_K8S_DIR:-../shared/k8s}"
CRD_FILE="${ISTIO_CRD_FILE:-../shared/crds/istio-crd-all.gen.yaml}"
export K8S_CACHE="${K8S_CACHE:-/var/cache/mesh-k8s}"
for f in "$K8S_DIR/build-apiserver.sh" "$K8S_DIR/start-apiserver.sh" "$K8S_DIR/stop-apiserver.sh" "$K8S_DIR/install-crds.sh" "$CRD_FILE"; do
  [ -f "$f" ] || { echo "test:cluster: $f is missing (set MESH_K8S_DIR / ISTIO_CRD_FILE)" >&2; exit 2; }
done

# Start only what is not running, and stop only what we started (also on error or Ctrl-C).
started=0
cleanup() {
  if [ "$started" = 1 ]; then bash "$K8S_DIR/stop-apiserver.sh" "$K8S_CACHE" >/dev/null 2>&1 || true; fi
  rm -rf "${work:-}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

bash "$K8S_DIR/build-apiserver.sh" "$K8S_CACHE" || { echo "test:cluster: building kube-apiserver failed (log: $K8S_CACHE/build.log)" >&2; exit 1; }
already=0
if [ -f "$K8S_CACHE/run/kube-apiserver.pid" ] && kill -0 "$(cat "$K8S_CACHE/run/kube-apiserver.pid")" 2>/dev/null; then already=1; fi
bash "$K8S_DIR/start-apiserver.sh" "$K8S_CACHE" || exit 1
[ "$already" = 1 ] || started=1
export KUBECONFIG="$K8S_CACHE/run/kubeconfig"
bash "$K8S_DIR/install-crds.sh" "$KUBECONFIG" "$CRD_FILE" >/dev/null || { echo "test:cluster: installing Istio's CRDs failed" >&2; exit 1; }

[ -d dist ] && ls dist/*.k8s.yaml >/dev/null 2>&1 || npm run synth >/dev/null || exit 1
work="$(mktemp -d)"
files=0; objects=0; rejected=0

# One document per object, with its kind, so rejections name the object.
split() { node -e '
  const YAML = require("yaml"); const fs = require("fs");
  const docs = YAML.parseAllDocuments(fs.readFileSync(process.argv[1], "utf8")).map((d) => d.toJSON()).filter(Boolean);
  fs.writeFileSync(process.argv[2], docs.filter((d) => d.kind === "Namespace").map((d) => YAML.stringify(d)).join("---\n"));
  console.log(docs.length);
' "$1" "$2"; }

for f in dist/*.k8s.yaml; do
  files=$((files + 1))
  n=$(split "$f" "$work/ns.yaml") || { echo "test:cluster: cannot read $f" >&2; exit 1; }
  objects=$((objects + n))
  if [ -s "$work/ns.yaml" ]; then
    kubectl apply --server-side --field-manager=cdk8s-mesh -f "$work/ns.yaml" >/dev/null 2>"$work/err" || { echo "REJECTED $f (namespaces):"; sed 's/^/  /' "$work/err"; rejected=$((rejected + 1)); }
  fi
  if out=$(kubectl apply --server-side --dry-run=server --field-manager=cdk8s-mesh -f "$f" 2>&1); then
    echo "ok       $f ($n objects)"
  else
    bad=$(printf '%s\n' "$out" | grep -c -E '^(Error|error)' || true)
    rejected=$((rejected + (bad > 0 ? bad : 1)))
    echo "REJECTED $f:"
    printf '%s\n' "$out" | grep -v -E 'serverside-applied|configured|created|unchanged' | sed 's/^/  /'
  fi
done

# Negative controls: these must be refused, or the check above proves nothing.
cat > "$work/broken.yaml" <<'YAML'
apiVersion: networking.istio.io/v1beta1
kind: VirtualService
metadata: { name: broken-weight, namespace: default }
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: { host: reviews, subset: v1 }
      weight: "20"
YAML
cat > "$work/broken-enum.yaml" <<'YAML'
apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: { name: broken-enum, namespace: default }
spec:
  host: reviews
  trafficPolicy: { loadBalancer: { simple: RANDOMLY } }
YAML
controls_ok=1
for b in broken.yaml broken-enum.yaml; do
  if kubectl apply --server-side --dry-run=server --validate=false -f "$work/$b" >"$work/out" 2>&1; then
    echo "NEGATIVE CONTROL ACCEPTED: $b should have been rejected"; controls_ok=0
  else
    echo "ok       negative control $b rejected: $(grep -o -E 'Invalid value.*|Unsupported value.*' "$work/out" | head -1 | cut -c1-120)"
  fi
done

echo "cluster-check: $files files, $objects objects, $rejected rejected, negative controls $([ $controls_ok = 1 ] && echo rejected || echo ACCEPTED)"
[ "$rejected" = 0 ] && [ "$controls_ok" = 1 ]
