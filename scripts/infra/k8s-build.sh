#!/usr/bin/env bash
# Builds the Kubernetes control plane (kube-apiserver, kube-controller-manager,
# kube-scheduler), the real node's kubelet and kube-proxy, etcd 3.6 and kwok from the Go module proxy into
# ~/.cache/ocr-serving/kubernetes-<version>/bin and ~/.cache/ocr-serving/kwok-<version>/bin.
# A no-op when the binaries are already cached. Cold: about 19 min on 2 shared cores (15 min
# Kubernetes and etcd, 3.5 min kwok); it fills a few GB of Go build and module cache.
#
# k8s.io/kubernetes cannot be `go install`ed (its go.mod replaces every k8s.io staging
# module by ./staging/...), so a throwaway wrapper module requires it and replaces each
# staging module by its published v0.X.Y instead.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
LOG_TAG=k8s-build

K8S_VERSION="${OCR_K8S_VERSION:-v1.34.4}"
KWOK_VERSION="${OCR_KWOK_VERSION:-v0.7.0}"
K8S_DIR="$CACHE/kubernetes-$K8S_VERSION"
KWOK_DIR="$CACHE/kwok-$KWOK_VERSION"
K8S_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy etcd)

# Shared machine: keep the build from starving everyone else (and from using 8 GB RSS).
export GOFLAGS="${OCR_GO_BUILD_FLAGS:--p=2} -buildvcs=false"
export GOTOOLCHAIN=local
export GOPROXY="${GOPROXY:-https://proxy.golang.org,direct}"
export GOMAXPROCS="${GOMAXPROCS:-2}"

ensure_go() {
  command -v go >/dev/null 2>&1 && return 0
  apt_ensure go golang-go
}

k8s_built() {
  local b
  for b in "${K8S_BINS[@]}"; do [ -x "$K8S_DIR/bin/$b" ] || return 1; done
}

# The staging modules that k8s.io/kubernetes replaces by ./staging/..., read from its go.mod.
staging_modules() {
  local gomod
  gomod="$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" \
    | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  [ -f "$gomod" ] || die "could not download the go.mod of k8s.io/kubernetes@$K8S_VERSION"
  grep -E '=> \./staging/' "$gomod" | awk '{print $1}'
}

write_wrapper() {
  local src="$1" staging_version="v0.${K8S_VERSION#v1.}" m
  mkdir -p "$src"
  {
    echo "module ocr-serving.local/k8s-build"
    echo
    # Kubernetes 1.34 is built with Go 1.24 semantics; keep them under a newer toolchain.
    echo "go 1.24.0"
    echo
    echo "godebug default=go1.24"
    echo
    echo "require ("
    echo "	k8s.io/kubernetes $K8S_VERSION"
    echo "	go.etcd.io/etcd/server/v3 v3.6.4"
    echo ")"
    echo
    echo "replace ("
    for m in $(staging_modules); do echo "	$m => $m $staging_version"; done
    echo ")"
  } >"$src/go.mod"
}

build_k8s() {
  k8s_built && { log "kubernetes $K8S_VERSION already built ($K8S_DIR/bin)"; return 0; }
  ensure_go
  local src="$K8S_DIR/src" minor="${K8S_VERSION#v1.}" pkg="k8s.io/component-base/version"
  minor="${minor%%.*}"
  mkdir -p "$K8S_DIR/bin"
  log "building kubernetes $K8S_VERSION + etcd from the Go module proxy (cold: about 16 min on 2 cores)"
  write_wrapper "$src"
  (
    cd "$src"
    local ldflags="-s -w -checklinkname=0 -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1"
    ldflags+=" -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
    log "compiling (progress: one line per package; full log in $K8S_DIR/build.log)"
    # -mod=mod lets the build fill go.sum from the wrapper's requirements.
    go build -mod=mod -v -trimpath -ldflags "$ldflags" -o "$K8S_DIR/bin.tmp/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler \
      k8s.io/kubernetes/cmd/kubelet \
      k8s.io/kubernetes/cmd/kube-proxy \
      go.etcd.io/etcd/server/v3 2>&1 | tee "$K8S_DIR/build.log" | progress
  )
  [ -x "$K8S_DIR/bin.tmp/v3" ] && mv "$K8S_DIR/bin.tmp/v3" "$K8S_DIR/bin.tmp/etcd"
  [ -x "$K8S_DIR/bin.tmp/server" ] && mv "$K8S_DIR/bin.tmp/server" "$K8S_DIR/bin.tmp/etcd"
  local b
  for b in "${K8S_BINS[@]}"; do
    [ -x "$K8S_DIR/bin.tmp/$b" ] || die "build did not produce $b (see $K8S_DIR/build.log)"
    mv "$K8S_DIR/bin.tmp/$b" "$K8S_DIR/bin/$b"
  done
  rmdir "$K8S_DIR/bin.tmp" 2>/dev/null || true
  log "kubernetes $K8S_VERSION built: $("$K8S_DIR/bin/kube-apiserver" --version)"
}

# Prints a line every 50 packages so a long build shows it is alive.
progress() {
  local n=0 line
  while IFS= read -r line; do
    n=$((n + 1))
    case "$line" in
      *error*|*cannot*|*undefined*|*"# "*) printf '%s\n' "$line" >&2 ;;
    esac
    if [ $((n % 50)) -eq 0 ]; then log "compiled $n packages (last: $line)"; fi
  done
  log "compiled $n packages"
}

build_kwok() {
  [ -x "$KWOK_DIR/bin/kwok" ] && { log "kwok $KWOK_VERSION already built"; return 0; }
  ensure_go
  mkdir -p "$KWOK_DIR/bin"
  log "building kwok $KWOK_VERSION from the Go module proxy"
  GOBIN="$KWOK_DIR/bin" go install -v -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" 2>&1 | tee "$KWOK_DIR/build.log" | progress
  [ -x "$KWOK_DIR/bin/kwok" ] || die "kwok build failed (see $KWOK_DIR/build.log)"
}

# The node's tools from scripts/infra/node-tools (its go.sum pins every module): CoreDNS
# linked with only the plugins the node's Corefile uses, and cri-stop.
build_node_tools() {
  local dir
  dir="$(node_tools_dir)"
  [ -x "$dir/bin/coredns" ] && [ -x "$dir/bin/cri-stop" ] \
    && { log "node tools already built ($dir/bin)"; return 0; }
  ensure_go
  mkdir -p "$dir"
  log "building CoreDNS and cri-stop from the Go module proxy"
  (
    cd "$NODE_TOOLS_SRC"
    go build -v -trimpath -ldflags "-s -w" -o "$dir/bin.tmp/" ./coredns ./cri-stop 2>&1 \
      | tee "$dir/build.log" | progress
  )
  if ! [ -x "$dir/bin.tmp/coredns" ] || ! [ -x "$dir/bin.tmp/cri-stop" ]; then
    die "node tools build failed (see $dir/build.log)"
  fi
  rm -rf "${dir:?}/bin" && mv "$dir/bin.tmp" "$dir/bin"
}

# KEDA's operator (scripts/infra/keda.sh runs it on the real node): its module from the Go
# module proxy, copied (Go refuses overlays inside its module cache), built with the overlay.
build_keda() {
  local dir src
  dir="$(keda_dir)"
  [ -x "$dir/bin/keda" ] && { log "KEDA $KEDA_VERSION already built ($dir/bin)"; return 0; }
  ensure_go
  log "building KEDA $KEDA_VERSION (kafka, cpu and memory scalers) from the Go module proxy"
  src="$(cd "$CACHE" && GOFLAGS=-mod=mod go mod download -json "github.com/kedacore/keda/v2@$KEDA_VERSION" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
  rm -rf "$dir/src" "$dir/overlay" && mkdir -p "$dir" && cp -r "$src" "$dir/src" && chmod -R u+w "$dir/src"
  python3 "$KEDA_SRC/overlay.py" "$dir/src" "$dir/overlay"
  (
    cd "$dir/src"
    go build -v -overlay "$dir/overlay/overlay.json" -trimpath -ldflags "-s -w" \
      -o "$dir/bin.tmp/keda" ./cmd/operator 2>&1 | tee "$dir/build.log" | progress
  )
  [ -x "$dir/bin.tmp/keda" ] || die "KEDA build failed (see $dir/build.log)"
  rm -rf "${dir:?}/bin" && mv "$dir/bin.tmp" "$dir/bin"
}

ensure_dirs
# Concurrent callers (cluster-up from two shells, a fixture) wait for one build.
exec 9>"$CACHE/.k8s-build.lock"
flock 9
case "${1:-all}" in
  k8s) build_k8s ;;
  kwok) build_kwok ;;
  node) build_node_tools ;;
  keda) build_keda ;;
  all) build_k8s; build_kwok ;;
  *) die "usage: $0 [k8s|kwok|node|keda|all]" ;;
esac
