#!/usr/bin/env bash
# `npm run test:cluster`: every manifest in dist/ (both data planes) through the local
# cluster's kube-apiserver 1.20 (scripts/cluster/) with Istio's CRDs (crds/, vendored):
# the namespaces each file uses are created, then
# `kubectl apply --server-side --dry-run=server`. Argo Rollouts' and Flagger's CRDs are
# installed too, for the progressive-delivery variants. Rejections are printed with the
# server's message; exit 1 on any. A deliberately broken VirtualService and
# DestinationRule must be rejected too (so the check can fail).
# Reuses a running cluster (and leaves it up); otherwise starts one and stops it again.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/cluster/lib.sh
CRD_FILE="${ISTIO_CRD_FILE:-crds/istio-1.30.3/crd-all.gen.yaml}"
[ -f "$CRD_FILE" ] || { echo "test:cluster: $CRD_FILE is missing" >&2; exit 2; }
why="$(check_host)" || { echo "test:cluster: cannot run: $why"; exit 1; }

started=0
created_ns=()
cleanup() {
  if [ "${#created_ns[@]}" -gt 0 ] && [ "$started" = 0 ]; then
    kc delete namespace "${created_ns[@]}" --wait=false >/dev/null 2>&1
  fi
  if [ "$started" = 1 ]; then bash scripts/cluster/down.sh >/dev/null; fi
  rm -rf "${work:-}"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! bash scripts/cluster/status.sh --quiet; then
  started=1
  bash scripts/cluster/up.sh || exit 1
fi
export KUBECONFIG="$KUBECONFIG_FILE"

# Istio's CRDs. --validate=false: kubectl would check them against the 1.20 server's
# OpenAPI, which has no x-kubernetes-validations (CEL); the server drops those rules.
kubectl apply --validate=false -f "$CRD_FILE" >/dev/null || { echo "test:cluster: installing Istio's CRDs failed" >&2; exit 1; }
kubectl wait --for=condition=Established crd --all --timeout=60s >/dev/null || { echo "test:cluster: Istio's CRDs not Established" >&2; exit 1; }
until kubectl api-resources --api-group=networking.istio.io 2>/dev/null | grep -q VirtualService; do sleep 0.5; done
# Argo Rollouts' and Flagger's CRDs (crds/, vendored), less the `default: ""` entries the 1.20
# server cannot read (scripts/crds-for-1.20.js says what that changes).
node scripts/crds-for-1.20.js crds/argo-rollouts-v1.9.1/rollout-crd.yaml crds/argo-rollouts-v1.9.1/analysis-template-crd.yaml crds/flagger-v1.44.0/crd.yaml |
  kubectl apply --validate=false -f - >/dev/null || { echo "test:cluster: installing Argo Rollouts' and Flagger's CRDs failed" >&2; exit 1; }
kubectl wait --for=condition=Established crd/rollouts.argoproj.io crd/analysistemplates.argoproj.io crd/canaries.flagger.app --timeout=60s >/dev/null ||
  { echo "test:cluster: Argo Rollouts' and Flagger's CRDs not Established" >&2; exit 1; }
until kubectl api-resources --api-group=flagger.app 2>/dev/null | grep -q Canary && kubectl api-resources --api-group=argoproj.io 2>/dev/null | grep -q Rollout; do sleep 0.5; done

[ -d dist ] && ls dist/*.k8s.yaml >/dev/null 2>&1 || npm run synth >/dev/null || exit 1
work="$(mktemp -d)"
files=0; objects=0; rejected=0

# inspect FILE OUT: prints the number of objects; writes the namespaces they live in to OUT.
inspect() { node -e '
  const YAML = require("yaml"); const fs = require("fs");
  const docs = YAML.parseAllDocuments(fs.readFileSync(process.argv[1], "utf8")).map((d) => d.toJSON()).filter(Boolean);
  const ns = new Set(docs.filter((d) => d.kind === "Namespace").map((d) => d.metadata.name));
  for (const d of docs) if (d.metadata.namespace) ns.add(d.metadata.namespace);
  fs.writeFileSync(process.argv[2], [...ns].map((n) => n + "\n").join(""));
  console.log(docs.length);
' "$1" "$2"; }

# No scenario chart carries PrometheusAddon or KialiAddon: their objects (with JaegerAddon's)
# on both data planes are checked from a manifest of their own.
for plane in istio node-sidecar; do
  node -r ts-node/register/transpile-only scripts/addons-manifest.ts "$plane" >"$work/addons-$plane.k8s.yaml" ||
    { echo "test:cluster: cannot synthesize the addons" >&2; exit 1; }
done

for f in dist/*.k8s.yaml "$work"/addons-*.k8s.yaml; do
  files=$((files + 1))
  n=$(inspect "$f" "$work/ns") || { echo "test:cluster: cannot read $f" >&2; exit 1; }
  objects=$((objects + n))
  while read -r ns; do
    [ -n "$ns" ] || continue
    phase="$(kubectl get namespace "$ns" -o jsonpath='{.status.phase}' 2>/dev/null)"
    [ "$phase" = Active ] && continue
    # A namespace an earlier run deleted may still be terminating.
    [ "$phase" = Terminating ] && kubectl wait --for=delete "namespace/$ns" --timeout=90s >/dev/null
    kubectl create namespace "$ns" >/dev/null && created_ns+=("$ns")
  done <"$work/ns"
  # The Gateway API objects (HTTPRoute, Gateway, ReferenceGrant) are left out here: the 1.20 API
  # server refuses the Gateway API CRDs as released and, with them installed minus their
  # `default: ""`, reads every `group: ""` (a core Service parentRef) as null. test/schema.test.ts
  # checks them against the v1.6.1 CRD schemas instead; the file's other objects are applied.
  apply_file="$f"; skipped=""
  case "$f" in *-gateway-api.k8s.yaml)
    apply_file="$work/$(basename "$f")"
    skipped=$(node -e '
      const YAML = require("yaml"); const fs = require("fs");
      const docs = YAML.parseAllDocuments(fs.readFileSync(process.argv[1], "utf8")).map((d) => d.toJSON()).filter(Boolean);
      const gw = (d) => String(d.apiVersion).startsWith("gateway.networking.k8s.io/");
      fs.writeFileSync(process.argv[2], docs.filter((d) => !gw(d)).map((d) => YAML.stringify(d)).join("---\n"));
      console.log(docs.filter(gw).length);
    ' "$f" "$apply_file") || { echo "test:cluster: cannot read $f" >&2; exit 1; }
    skipped="; $skipped Gateway API objects checked by test/schema.test.ts, not here";;
  esac
  if out=$(kubectl apply --server-side --dry-run=server --field-manager=cdk8s-mesh -f "$apply_file" 2>&1); then
    echo "ok       $f ($n objects$skipped)"
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
cat > "$work/broken-rollout.yaml" <<'YAML'
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: { name: broken-rollout, namespace: default }
spec:
  selector: { matchLabels: { app: x } }
  workloadRef: { apiVersion: apps/v1, kind: Deployment, name: x }
  strategy: { canary: { steps: [ { setWeight: "ten" } ] } }
YAML
controls_ok=1
for b in broken.yaml broken-enum.yaml broken-rollout.yaml; do
  if kubectl apply --server-side --dry-run=server --validate=false -f "$work/$b" >"$work/out" 2>&1; then
    echo "NEGATIVE CONTROL ACCEPTED: $b should have been rejected"; controls_ok=0
  else
    echo "ok       negative control $b rejected: $(grep -o -E 'Invalid value.*|Unsupported value.*' "$work/out" | head -1 | cut -c1-120)"
  fi
done

echo "cluster-check: $files files, $objects objects, $rejected rejected, negative controls $([ $controls_ok = 1 ] && echo rejected || echo ACCEPTED)"
[ "$rejected" = 0 ] && [ "$controls_ok" = 1 ]
