#!/usr/bin/env bash
# scripts/cluster/build.sh: build (once) what the local cluster runs, from Debian alone.
#
# kube-apiserver, kubelet, kube-proxy, kube-scheduler and kube-controller-manager come
# from Debian's `kubernetes` source package (1.20 in bookworm), compiled with Debian's
# Go 1.19 in one `make` (the five share most of the compile: ~25 min on 2 cores the
# first time), plus the pause binary for pod sandboxes. Everything lands in
# $MESH_K8S_CACHE/bin with a build-info file; a second run finds it and returns at once.
# FORCE=1 rebuilds. Needs root (apt-get).
set -euo pipefail
SCRIPT_NAME=cluster-build
. "$(dirname "$0")/lib.sh"

why="$(check_host)" || die "$why"
mkdir -p "$BIN_DIR"
LOG="$CACHE_DIR/build.log"
APT_LOG="$LOG"
exec 3>>"$LOG"
log() { printf '[%s] %s\n' "$(date -u +%FT%TZ)" "$*" >&3; }
fail() { log "ERROR: $*"; echo "cluster-build: $* (log: $LOG)" >&2; tail -n 20 "$LOG" >&2; exit 1; }
START=$(date +%s)

exec 9>"$CACHE_DIR/.build.lock"
flock 9

GO_PKG=golang-1.19-go
GOROOT_DIR=/usr/lib/go-1.19
INFO="$BIN_DIR/build-info"

built_ok() {
  local c
  grep -q '^reflect2=' "$INFO" 2>/dev/null || return 1
  for c in "${K8S_COMPONENTS[@]}"; do "$BIN_DIR/$c" --version >/dev/null 2>&1 || return 1; done
  [ -x "$BIN_DIR/pause" ]
}

if [ "${FORCE:-0}" != 1 ] && built_ok; then
  say "cached: $(sed -n 's/^version=//p' "$INFO") in $BIN_DIR"
  exit 0
fi

log "=== build start"
apt_install "$GO_PKG" make rsync jq dpkg-dev ca-certificates gcc libc6-dev \
  golang-github-modern-go-reflect2-dev || fail "installing the toolchain failed"

# Debian's source through a private apt configuration (deb-src lines in the cache),
# so the system's apt sources stay as they are.
APT_DIR="$CACHE_DIR/apt"
mkdir -p "$APT_DIR/lists/partial" "$APT_DIR/parts" "$APT_DIR/archives/partial"
CODENAME="$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")"
cat >"$APT_DIR/sources.list" <<EOF
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian ${CODENAME} main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian ${CODENAME}-updates main
deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian-security ${CODENAME}-security main
EOF
APT_SRC=(-o "Dir::Etc::SourceList=$APT_DIR/sources.list" -o "Dir::Etc::SourceParts=$APT_DIR/parts"
  -o "Dir::State::Lists=$APT_DIR/lists" -o "Dir::Cache::Archives=$APT_DIR/archives"
  -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "APT::Sandbox::User=root")

SRC_ROOT="$CACHE_DIR/src"
SRC="$SRC_ROOT/kubernetes"
mkdir -p "$SRC_ROOT"
if [ ! -f "$SRC/Makefile" ] || [ ! -d "$SRC/vendor" ]; then
  rm -rf "$SRC"
  log "+ apt-get source kubernetes"
  apt-get "${APT_SRC[@]}" update >&3 2>&3 || fail "apt-get update (deb-src) failed"
  ( cd "$SRC_ROOT" && rm -f ./*.dsc ./*.orig.tar.* ./*.debian.tar.* &&
    apt-get "${APT_SRC[@]}" source --download-only --only-source kubernetes >&3 2>&3 ) ||
    fail "downloading Debian's kubernetes source failed"
  DSC="$(ls -1t "$SRC_ROOT"/*.dsc | head -n1)"
  dpkg-source -x "$DSC" "$SRC" >&3 2>&3 || fail "dpkg-source -x $DSC failed"
fi

# Kubernetes 1.20 vendors modern-go/reflect2 1.0.1, whose linkname into the runtime's
# map iterator is wrong for Go >= 1.18: built with Go 1.19 the apiserver faults on the
# first custom resource. Debian's 1.0.2 is the upstream fix.
R2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2
R2_DST="$SRC/vendor/github.com/modern-go/reflect2"
R2_VER="$(dpkg-query -W -f='${Version}' golang-github-modern-go-reflect2-dev)"
if [ ! -f "$R2_DST/go_above_118.go" ]; then
  find "$R2_DST" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) -delete
  find "$R2_SRC" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) ! -name '*_test.go' -exec cp {} "$R2_DST/" \;
  log "vendored reflect2 replaced by Debian's $R2_VER"
fi

WHAT=""
for c in "${K8S_COMPONENTS[@]}"; do WHAT+="cmd/$c "; done
log "+ make WHAT=\"$WHAT\""
B0=$(date +%s)
(
  cd "$SRC"
  export GOROOT="$GOROOT_DIR" PATH="$GOROOT_DIR/bin:$PATH" HOME="$CACHE_DIR/home" \
    GOPROXY=off GOFLAGS='' GO111MODULE='' CGO_ENABLED=0 GOTOOLCHAIN=local
  mkdir -p "$HOME"
  make WHAT="${WHAT% }"
) >&3 2>&3 || fail "make failed"
B1=$(date +%s)
for c in "${K8S_COMPONENTS[@]}"; do
  out="$SRC/_output/bin/$c"
  [ -x "$out" ] || out="$(ls -1 "$SRC"/_output/local/bin/*/*/"$c" 2>/dev/null | head -n1)"
  [ -x "$out" ] || fail "make finished without $c"
  cp "$out" "$BIN_DIR/$c.tmp" && mv -f "$BIN_DIR/$c.tmp" "$BIN_DIR/$c"
done

# The pod sandbox's pause process: Kubernetes' own pause.c, static.
gcc -static -O2 -o "$BIN_DIR/pause" "$SRC/build/pause/linux/pause.c" >&3 2>&3 || fail "building pause failed"

cat >"$INFO" <<EOF
version=$("$BIN_DIR/kube-apiserver" --version)
source=$(basename "$(ls -1t "$SRC_ROOT"/*.dsc | head -n1)" .dsc)
go=$("$GOROOT_DIR/bin/go" version)
reflect2=$R2_VER
components=${K8S_COMPONENTS[*]} pause
built=$(date -u +%FT%TZ)
make_seconds=$((B1 - B0))
EOF
rm -rf "$SRC/_output"   # intermediates and Go's build cache (~1.5 GB); the source stays
log "built in $((B1 - B0)) s"
say "built ${K8S_COMPONENTS[*]} pause in $((B1 - B0)) s (total $(( $(date +%s) - START )) s)"
