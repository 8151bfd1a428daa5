#!/usr/bin/env bash
# `npm run test:consumer`: cdk8s-mesh as a user gets it. `npm pack`, then outside the
# repository: `npx cdk8s-mesh init` from the tarball, `npm install` (dependencies from
# the registry), `npm run synth` (the scaffold's cdk8s-mesh synth; also for scaffolds on
# the node-sidecar and Gateway API data planes), the project's own jest tests (YAML snapshot, lint,
# the Pulumi program under mocks), `cdk8s-mesh lint`. Nothing may come from this
# repository's sources or dev dependencies: the project lives under a fresh temp dir.
# Prints "consumer: ..." with timings and install sizes; exit status non-zero on failure.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d /tmp/cdk8s-mesh-consumer.XXXXXX)"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
results="${CONSUMER_JEST_JSON:-$repo/.jest-consumer-results.json}"

t0=$(date +%s.%N)
tarball="$(cd "$repo" && npm pack --silent --pack-destination "$work" | tail -1)"
tarball="$work/$tarball"
echo "consumer: packed $(basename "$tarball") ($(du -k "$tarball" | cut -f1) KB, $(tar -tzf "$tarball" | wc -l) files)"
if tar -tzf "$tarball" | grep -E '^package/(test|bench|scripts|constructs|model)/|\.test\.|\.ts$' | grep -v '\.d\.ts$' | grep -v '^package/templates/'; then
  echo "consumer: the tarball ships sources or tests (listed above)" >&2; exit 1
fi

cd "$work"
t1=$(date +%s.%N)
npx --yes --package "$tarball" -- cdk8s-mesh init shop --pulumi --mesh-spec "file:$tarball"
cd shop
npm install --no-audit --no-fund --loglevel=error
t2=$(date +%s.%N)
# The scaffold's own synth script (cdk8s-mesh synth on the app of cdk8s.yaml).
npm run synth >/dev/null
test -s dist/shop.k8s.yaml
grep -q 'kind: VirtualService' dist/shop.k8s.yaml
t3=$(date +%s.%N)
# The same scaffold on the two other data planes, each through its own `npm run synth`
# (sharing this install: the dependencies are the same).
for plane in node-sidecar gateway-api; do
  (cd "$work" && shop/node_modules/.bin/cdk8s-mesh init "shop-$plane" --data-plane "$plane" --mesh-spec "file:$tarball" >/dev/null)
  ln -s "$work/shop/node_modules" "$work/shop-$plane/node_modules"
  (cd "$work/shop-$plane" && npm run synth >/dev/null)
done
grep -q 'name: mesh-routes' "$work/shop-node-sidecar/dist/shop-node-sidecar.k8s.yaml"
! grep -q 'networking.istio.io' "$work/shop-node-sidecar/dist/shop-node-sidecar.k8s.yaml"
grep -q 'kind: HTTPRoute' "$work/shop-gateway-api/dist/shop-gateway-api.k8s.yaml"
echo "consumer: the scaffold synthesized on istio, node-sidecar and gateway-api"
# The first run records the snapshot, as a user's first `npm test` does (jest would not under CI=true).
npx jest --ci=false --json --outputFile="$results" 2>&1 | tail -5
node -e "const r=require('$results'); process.exit(r.numFailedTests ? 1 : 0)"
npx cdk8s-mesh lint dist/shop.k8s.yaml
# A chart composed from several files: a second file adds to the scaffold's constructs
# after construction, type-checked against the package's declarations, then synthesized.
cat > more.ts <<'TS'
import { App } from 'cdk8s';
import { Match, ServiceEntry } from 'cdk8s-mesh';
import { AppChart } from './chart';

const app = new App();
const chart = new AppChart(app, 'shop');
const payments = new ServiceEntry(chart, 'payments', { name: 'payments', hosts: ['pay.example.com'], ports: [{ number: 443, protocol: 'TLS' }], resolution: 'DNS' });
payments.addPort({ number: 8443, protocol: 'TLS', name: 'tls-alt' });
chart.web.calls(payments);
chart.edge.route.addRule({ match: [{ uri: Match.prefix('/status') }], route: [{ to: chart.web }] }, { index: 0 });
app.synth();
TS
npx tsc --noEmit -p .
npx cdk8s-mesh synth --app more.ts --out dist-more >/dev/null
node -e "
const docs = require('yaml').parseAllDocuments(require('fs').readFileSync('dist-more/shop.k8s.yaml', 'utf8')).map((d) => d.toJS());
const vs = docs.find((o) => o.kind === 'VirtualService' && o.spec.gateways);
const se = docs.find((o) => o.kind === 'ServiceEntry' && o.metadata.name === 'payments');
const web = docs.find((o) => o.kind === 'Deployment' && o.metadata.name === 'web');
const problems = [];
if (vs.spec.http[0].match[0].uri.prefix !== '/status') problems.push('the added rule is not first: ' + JSON.stringify(vs.spec.http[0]));
if (se.spec.ports.map((p) => p.number).join() !== '443,8443') problems.push('the entry lacks the added port: ' + JSON.stringify(se.spec.ports));
if (!JSON.stringify(web.spec.template.metadata.annotations).includes('pay.example.com')) problems.push('web does not record its added callee');
if (problems.length) { console.error('consumer: ' + problems.join('; ')); process.exit(1); }
console.log('consumer: a second file added a rule, a ServiceEntry port and a callee; the YAML has them');
"
npx cdk8s-mesh lint                       # the app of ./cdk8s.yaml, synthesized in memory
npx cdk8s-mesh synth --out dist-cli >/dev/null && test -s dist-cli/shop.k8s.yaml
# The traffic plan of the user's chart: its canary split, in words.
npx cdk8s-mesh plan --out dist-cli 2>/dev/null && grep -q '^## Routes' dist-cli/shop.plan.md && grep -q ' v2 10%' dist-cli/shop.plan.md
# Nothing resolved into the repository.
node -e "const p=require.resolve('cdk8s-mesh'); if (p.startsWith('$repo')) { console.error('resolved into the repo: '+p); process.exit(1) }"
mesh_mb=$(du -sm node_modules | cut -f1)

# Install size: the library and its peers without Pulumi, against cdk8s + cdk8s-plus-28 alone.
mkdir "$work/base" "$work/lib"
(cd "$work/base" && npm init -y >/dev/null && npm install --loglevel=error cdk8s cdk8s-plus-28 constructs >/dev/null)
(cd "$work/lib" && npm init -y >/dev/null && npm install --loglevel=error "$tarball" cdk8s cdk8s-plus-28 constructs >/dev/null)
base_mb=$(du -sm "$work/base/node_modules" | cut -f1); lib_mb=$(du -sm "$work/lib/node_modules" | cut -f1)
base_n=$(find "$work/base/node_modules" -name package.json -path '*/node_modules/*/package.json' -not -path '*/node_modules/*/node_modules/*/*' | wc -l)
lib_n=$(find "$work/lib/node_modules" -name package.json -path '*/node_modules/*/package.json' -not -path '*/node_modules/*/node_modules/*/*' | wc -l)
printf 'consumer: pack %.0f s, init+install %.0f s, synth %.0f s; node_modules with Pulumi and dev tools %s MB; cdk8s-mesh without Pulumi adds %s MB and %s packages to cdk8s+cdk8s-plus-28 (%s MB)\n' \
  "$(awk "BEGIN{print $t1 - $t0}")" "$(awk "BEGIN{print $t2 - $t1}")" "$(awk "BEGIN{print $t3 - $t2}")" "$mesh_mb" "$((lib_mb - base_mb))" "$((lib_n - base_n))" "$base_mb"
