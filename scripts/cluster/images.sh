#!/usr/bin/env bash
# scripts/cluster/images.sh [all|pause|NAME...]: build the images the charts run, with
# buildah and nothing pulled, and import them into the cluster's containerd.
#
#   localhost/pause:3.2                   the pod sandbox (Kubernetes' pause.c, static)
#   localhost/mesh-base:1                 busybox (Debian's, dynamic) + glibc: sh, wget, httpd, id
#   localhost/mesh-node-base:20           mesh-base + this machine's Node 20 + npm, laid out as in
#                                         node:20-alpine; stands in for it as the proxy's base
#   ghcr.io/cdk8s-mesh/mesh-proxy:<package version>   built from apps/sidecar/Dockerfile itself
#                                         (--build-arg NODE_IMAGE=localhost/mesh-node-base:20)
#   docker.io/library/busybox:1.36        = mesh-base (busybox with a working wget)
#   docker.io/kubeguide/tomcat-app:v1     stand-in: images/standin.js answering "tomcat-app v1"
#   docker.io/library/springbootapp:v1, :v2
#                                         stand-ins answering "springbootapp v1|v2: hello" on /hello
#                                         (the charts' `springbootapp:v1` is this name to the kubelet)
#   docker.io/istio/examples-bookinfo-<service>-<version>:1.20.3
#                                         stand-ins for Bookinfo (images/bookinfo.js): productpage,
#                                         details, ratings v1 and reviews v1, v2, v3 with upstream's
#                                         call graph, header forwarding and client timeouts
#   docker.io/jaegertracing/jaeger:2.17.0  stand-in for Jaeger v2 (images/jaeger.js): Zipkin and OTLP/HTTP
#                                         receivers, the query API under the configured base path,
#                                         /status; UID 10001 as upstream's
#   localhost/prometheus:2.42             the real Prometheus (Debian's 2.42) on the Node base, UID 65534 as
#                                         upstream's; Debian builds it without Kubernetes discovery, so its
#                                         entrypoint (images/prometheus-k8s-sd.js) serves kubernetes_sd_configs
#                                         as http_sd_configs from the API server, then runs it
#   docker.io/nginxinc/nginx-unprivileged:1.27-alpine
#                                         Debian's nginx 1.22 run the unprivileged way (8080, /tmp)
#
# Every image is rebuilt only when its inputs change (a hash of them is kept beside its
# OCI archive in $MESH_K8S_CACHE/images) and imported only when containerd lacks that build.
set -euo pipefail
SCRIPT_NAME=cluster-images
. "$(dirname "$0")/lib.sh"

why="$(check_host)" || die "$why"
mkdir -p "$IMAGE_DIR"
LOG="$CACHE_DIR/images.log"
APT_LOG="$LOG"
apt_install buildah busybox nginx-light prometheus >/dev/null || die "installing buildah, busybox, nginx-light, prometheus failed"
exec 9>"$CACHE_DIR/.images.lock"
flock 9

# buildah keeps its layers in the cache too, not in /var/lib/containers.
BUILDAH=(buildah --root "$CACHE_DIR/buildah/storage" --runroot /run/mesh-k8s-buildah --storage-driver overlay)
ctr_() { ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }

hash_of() { sha256sum | cut -c1-16; }
# The files an image is built from, less what .dockerignore keeps out of the build context.
files_hash() { (cd "$PROJECT_DIR" && find "$@" -type f ! -path '*/generated/*' -print0 | sort -z | xargs -0 sha256sum) | hash_of; }
SELF_HASH="$(cat "$0" "$CLUSTER_DIR/images/"* | hash_of)"

# copy_with_libs ROOTFS BINARY [DEST]: a binary and the shared libraries it loads.
copy_with_libs() {
  local root="$1" bin="$2" dest="${3:-$2}" lib
  install -D -m 755 "$bin" "$root$dest"
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    [ -e "$root$lib" ] || install -D -m 755 "$(readlink -f "$lib")" "$root$lib"
  done
}

# commit ROOTFS NAME [buildah config args...]: a single-layer image from a directory.
commit() {
  local root="$1" name="$2" c
  shift 2
  c="$("${BUILDAH[@]}" from --quiet scratch)"
  "${BUILDAH[@]}" copy --quiet "$c" "$root" / >/dev/null
  [ $# -gt 0 ] && "${BUILDAH[@]}" config "$@" "$c"
  "${BUILDAH[@]}" commit --quiet --rm "$c" "$name" >/dev/null
}

# base_rootfs DIR: busybox and glibc, users, the directories a container expects.
base_rootfs() {
  local r="$1"
  chmod 755 "$r"
  mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,var/tmp,home}
  chmod 1777 "$r/tmp" "$r/var/tmp"
  copy_with_libs "$r" /bin/busybox /bin/busybox
  chroot "$r" /bin/busybox --install -s
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
  printf 'passwd: files\ngroup: files\nhosts: files dns\nservices: files\n' >"$r/etc/nsswitch.conf"
  printf 'http 80/tcp\nhttps 443/tcp\n' >"$r/etc/services"
}

# image NAME ARCHIVE HASH BUILD_FUNCTION [ARGS...]: build (BUILD_FUNCTION NAME ARGS...)
# when the archive's hash differs, then import when containerd does not have this build. NAME is fully qualified
# (docker.io/library/busybox, not busybox): containerd stores it as written, and the
# kubelet asks for the qualified form.
image() {
  local name="$1" archive="$2" file="$IMAGE_DIR/$2.tar" hash="$3" build="$4" t0
  shift 4
  if [ "$(cat "$file.hash" 2>/dev/null)" != "$hash" ] || [ ! -s "$file" ] ||
     ! "${BUILDAH[@]}" inspect --type image "$name" >/dev/null 2>&1; then
    t0=$(date +%s)
    "$build" "$name" "$@" >>"$LOG" 2>&1 || die "building $name failed (log: $LOG)"
    rm -f "$file"
    "${BUILDAH[@]}" push --quiet "$name" "oci-archive:$file:$name" >>"$LOG" 2>&1 || die "exporting $name failed (log: $LOG)"
    echo "$hash" >"$file.hash"
    say "built $name in $(( $(date +%s) - t0 )) s"
  fi
  if [ -S "$CONTAINERD_SOCK" ]; then
    if ! ctr_ images ls -q 2>/dev/null | grep -qxF "$name" ||
       [ "$(cat "$CACHE_DIR/containerd-imported/$archive" 2>/dev/null)" != "$hash" ]; then
      ctr_ images import --no-unpack=false "$file" >>"$LOG" 2>&1 || die "importing $name into containerd failed (log: $LOG)"
      mkdir -p "$CACHE_DIR/containerd-imported"
      echo "$hash" >"$CACHE_DIR/containerd-imported/$archive"
      say "imported $name"
    fi
  fi
}
# ---------------------------------------------------------------- builders
build_pause() {
  local r; r="$(mktemp -d)"
  install -D -m 755 "$BIN_DIR/pause" "$r/pause"
  commit "$r" "$1" --entrypoint '["/pause"]' --user 65535:65535
  rm -rf "$r"
}
build_base() {
  local r; r="$(mktemp -d)"
  base_rootfs "$r"
  commit "$r" "$1" --cmd '["sh"]' --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  rm -rf "$r"
}
build_node_base() {
  local r npm_dir; r="$(mktemp -d)"
  base_rootfs "$r"
  copy_with_libs "$r" "$(readlink -f "$(command -v node)")" /usr/local/bin/node
  npm_dir="$(dirname "$(readlink -f "$(command -v npm)")")/.."
  mkdir -p "$r/usr/local/lib/node_modules"
  cp -a "$(cd "$npm_dir" && pwd)" "$r/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$r/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$r/usr/local/bin/npx"
  commit "$r" "$1" --cmd '["node"]' --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_VERSION="$(node -p 'process.versions.node')"
  rm -rf "$r"
}
build_proxy() {
  # The project's own Dockerfile, as a user would build it, with the local Node base.
  # Lent to `npm ci` in the build stage for the build only (nothing of it is shipped):
  # this machine's npm cache (prefer-offline), and its CA bundle when npm is set to use
  # one (a registry reached through a TLS-inspecting proxy).
  local npmrc cafile mounts=()
  npmrc="$(mktemp)"
  echo 'prefer-offline=true' >"$npmrc"
  cafile="$(npm config get cafile 2>/dev/null || true)"
  if [ -f "$cafile" ]; then
    echo 'cafile=/etc/ssl/certs/ca-certificates.crt' >>"$npmrc"
    mounts+=(-v "$cafile:/etc/ssl/certs/ca-certificates.crt:ro")
  fi
  mounts+=(-v "$npmrc:/usr/local/etc/npmrc:ro" -v "$(npm config get cache 2>/dev/null || echo /root/.npm):/root/.npm")
  # npm ci of every dev dependency opens more files than a default soft limit of 1024
  # (EMFILE): raise it to the hard limit for the build (chroot isolation inherits it).
  # buildah's RUN steps get their own default (1024) unless told: pass the raised limit on.
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  local nofile; nofile="$(ulimit -n)"
  (cd "$PROJECT_DIR" && "${BUILDAH[@]}" build --quiet --isolation chroot --layers=false --ulimit "nofile=$nofile:$nofile" \
    --build-arg NODE_IMAGE=localhost/mesh-node-base:20 "${mounts[@]}" -f apps/sidecar/Dockerfile -t "$1" .)
  local rc=$?
  rm -f "$npmrc"
  return $rc
}
# standin NAME APP VERSION: the stand-in server on the Node base.
build_standin() {
  local name="$1" app="$2" version="$3" c
  c="$("${BUILDAH[@]}" from --quiet localhost/mesh-node-base:20)"
  "${BUILDAH[@]}" copy --quiet "$c" "$CLUSTER_DIR/images/standin.js" /app/standin.js >/dev/null
  "${BUILDAH[@]}" config --user 65534:65534 --env STANDIN_APP="$app" --env STANDIN_VERSION="$version" \
    --env STANDIN_IMAGE="$name" --env PORT=8080 --port 8080 --entrypoint '["node", "/app/standin.js"]' --cmd '[]' "$c"
  "${BUILDAH[@]}" commit --quiet --rm "$c" "$name" >/dev/null
}
# bookinfo NAME SERVICE VERSION: the Bookinfo stand-in on the Node base, UID 1000 as upstream's.
build_bookinfo() {
  local name="$1" service="$2" version="$3" c
  c="$("${BUILDAH[@]}" from --quiet localhost/mesh-node-base:20)"
  "${BUILDAH[@]}" copy --quiet "$c" "$CLUSTER_DIR/images/bookinfo.js" /app/bookinfo.js >/dev/null
  "${BUILDAH[@]}" config --user 1000:1000 --env BOOKINFO_SERVICE="$service" --env BOOKINFO_VERSION="$version" \
    --env PORT=9080 --port 9080 --entrypoint '["node", "/app/bookinfo.js"]' --cmd '[]' "$c"
  "${BUILDAH[@]}" commit --quiet --rm "$c" "$name" >/dev/null
}
# jaeger NAME: the Jaeger stand-in on the Node base; the pod's args (--config FILE) follow the entrypoint.
build_jaeger() {
  local c
  c="$("${BUILDAH[@]}" from --quiet localhost/mesh-node-base:20)"
  "${BUILDAH[@]}" copy --quiet "$c" "$CLUSTER_DIR/images/jaeger.js" /app/jaeger.js >/dev/null
  "${BUILDAH[@]}" config --user 10001:10001 --port 16686 --port 9411 --port 4318 --port 13133 \
    --entrypoint '["node", "/app/jaeger.js"]' --cmd '[]' "$c"
  "${BUILDAH[@]}" commit --quiet --rm "$c" "$1" >/dev/null
}
# prometheus NAME: Debian's Prometheus binary, its web assets and the discovery wrapper (with the
# project's own `yaml` package, which it needs to rewrite the configuration).
build_prometheus() {
  local r c; r="$(mktemp -d)"
  copy_with_libs "$r" /usr/bin/prometheus /bin/prometheus
  mkdir -p "$r/usr/share/prometheus" "$r/etc/prometheus" "$r/app/node_modules" "$r/prometheus"
  cp -a /usr/share/prometheus/web "$r/usr/share/prometheus/web"
  cp -a /etc/prometheus/console_libraries /etc/prometheus/consoles "$r/etc/prometheus/"
  cp -a "$PROJECT_DIR/node_modules/yaml" "$r/app/node_modules/yaml"
  install -m 644 "$CLUSTER_DIR/images/prometheus-k8s-sd.js" "$r/app/prometheus-k8s-sd.js"
  c="$("${BUILDAH[@]}" from --quiet localhost/mesh-node-base:20)"
  "${BUILDAH[@]}" copy --quiet "$c" "$r" / >/dev/null
  "${BUILDAH[@]}" config --user 65534:65534 --port 9090 --workingdir /prometheus \
    --entrypoint '["node", "/app/prometheus-k8s-sd.js"]' --cmd '["--config.file=/etc/prometheus/prometheus.yml"]' "$c"
  "${BUILDAH[@]}" commit --quiet --rm "$c" "$1" >/dev/null
  rm -rf "$r"
}
build_tomcat() { build_standin "$1" tomcat-app v1; }
build_springboot_v1() { build_standin "$1" springbootapp v1; }
build_springboot_v2() { build_standin "$1" springbootapp v2; }
build_nginx() {
  local r; r="$(mktemp -d)"
  base_rootfs "$r"
  copy_with_libs "$r" /usr/sbin/nginx
  install -D -m 644 /etc/nginx/mime.types "$r/etc/nginx/mime.types"
  install -D -m 644 "$CLUSTER_DIR/images/nginx.conf" "$r/etc/nginx/nginx.conf"
  install -D -m 644 /usr/share/nginx/html/index.html "$r/usr/share/nginx/html/index.html"
  printf 'nginx:x:101:101:nginx:/nonexistent:/bin/false\n' >>"$r/etc/passwd"
  printf 'nginx:x:101:\n' >>"$r/etc/group"
  commit "$r" "$1" --user 101:101 --port 8080 --entrypoint '["/usr/sbin/nginx", "-g", "daemon off;"]' --cmd '[]'
  rm -rf "$r"
}

# ---------------------------------------------------------------- which, in order
GLIBC="$(dpkg-query -W -f='${Version}' libc6)"
BASE_HASH="$(echo "$SELF_HASH $GLIBC $(dpkg-query -W -f='${Version}' busybox)" | hash_of)"
NODE_HASH="$(echo "$BASE_HASH $(node --version) $(npm --version)" | hash_of)"
do_pause() { image localhost/pause:3.2 pause "$(echo "$SELF_HASH $(sha256sum <"$BIN_DIR/pause")" | hash_of)" build_pause; }
do_base() { image localhost/mesh-base:1 mesh-base "$BASE_HASH" build_base; }
do_node_base() { image localhost/mesh-node-base:20 mesh-node-base "$NODE_HASH" build_node_base; }
do_busybox() { image docker.io/library/busybox:1.36 busybox "$BASE_HASH" build_base; }
do_proxy() {
  do_node_base
  local h; h="$(echo "$NODE_HASH $(files_hash apps/sidecar model package.json package-lock.json tsconfig.json .dockerignore)" | hash_of)"
  # Tagged with the package version, as the constructs' default sidecar image is.
  image "ghcr.io/cdk8s-mesh/mesh-proxy:$(node -p 'require("./package.json").version')" mesh-proxy "$h" build_proxy
}
do_standins() {
  do_node_base
  # The stand-in's own code is in its hash: a change to standin.js rebuilds the images.
  local h; h="$(echo "$NODE_HASH $(files_hash scripts/cluster/images/standin.js)" | hash_of)"
  image docker.io/kubeguide/tomcat-app:v1 tomcat-app "$h" build_tomcat
  image docker.io/library/springbootapp:v1 springbootapp-v1 "$h" build_springboot_v1
  image docker.io/library/springbootapp:v2 springbootapp-v2 "$h" build_springboot_v2
}
# Bookinfo's images under the names its manifests use (BOOKINFO_IMAGES in the constructs).
BOOKINFO_TAG=1.20.3
do_bookinfo() {
  do_node_base
  local sv svc v
  for sv in productpage:v1 details:v1 ratings:v1 reviews:v1 reviews:v2 reviews:v3; do
    svc="${sv%%:*}" v="${sv##*:}"
    image "docker.io/istio/examples-bookinfo-$svc-$v:$BOOKINFO_TAG" "bookinfo-$svc-$v" "$NODE_HASH" build_bookinfo "$svc" "$v"
  done
}
# Under the image JaegerAddon uses by default (DEFAULT_JAEGER_IMAGE).
do_jaeger() {
  do_node_base
  image docker.io/jaegertracing/jaeger:2.17.0 jaeger "$NODE_HASH" build_jaeger
}
do_prometheus() {
  do_node_base
  image localhost/prometheus:2.42 prometheus \
    "$(echo "$NODE_HASH $(dpkg-query -W -f='${Version}' prometheus) $(node -p "require('$PROJECT_DIR/node_modules/yaml/package.json').version")" | hash_of)" build_prometheus
}
do_nginx() {
  image docker.io/nginxinc/nginx-unprivileged:1.27-alpine nginx-unprivileged \
    "$(echo "$BASE_HASH $(dpkg-query -W -f='${Version}' nginx)" | hash_of)" build_nginx
}

[ $# -eq 0 ] && set -- all
for what in "$@"; do
  case "$what" in
    pause) do_pause ;;
    base) do_base ;;
    proxy) do_proxy ;;
    busybox) do_busybox ;;
    standins) do_standins ;;
    bookinfo) do_bookinfo ;;
    nginx) do_nginx ;;
    jaeger) do_jaeger ;;
    prometheus) do_prometheus ;;
    all) do_pause; do_busybox; do_proxy; do_standins; do_bookinfo; do_jaeger; do_nginx; do_prometheus ;;
    *) die "unknown image set '$what' (all, pause, base, proxy, busybox, standins, bookinfo, jaeger, nginx, prometheus)" ;;
  esac
done
