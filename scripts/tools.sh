#!/usr/bin/env bash
# Installs the packaging tools the tests need, each cached once per version under
# ~/.cache/ocr-serving/<tool>-<version>/, and prints the path of the binary.
#
#   scripts/tools.sh helm       # helm, built from the Go module proxy
#   scripts/tools.sh promtool   # promtool, extracted from Debian's prometheus package
#   scripts/tools.sh all        # both, one path per line
#
# Idempotent: a second call only prints the cached path. No system-wide install: the Debian
# package is unpacked into the cache rather than installed, so it cannot clash with the
# Prometheus server the infrastructure scripts run.
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.17.4}"
# Kubernetes version helm reports to templates (.Capabilities.KubeVersion) and to lint:
# helm's own release build derives it from the client-go it links (v0.32 for helm 3.17).
HELM_KUBE_MINOR="${HELM_KUBE_MINOR:-32}"
PROMTOOL_DEB_VERSION="${PROMTOOL_DEB_VERSION:-2.42.0+ds-5+deb12u1}"
CACHE_ROOT="${OCR_TOOLS_CACHE:-$HOME/.cache/ocr-serving}"

log() { echo "tools.sh: $*" >&2; }

# Runs "$@" holding an exclusive lock on $1.lock, so parallel callers build only once.
with_lock() {
  local target="$1"; shift
  mkdir -p "$(dirname "$target")"
  exec 9>"$target.lock"
  flock 9
  "$@"
  exec 9>&-
}

build_helm() {
  local dir="$1"
  [ -x "$dir/bin/helm" ] && return 0
  command -v go >/dev/null || { log "go is required to build helm"; return 1; }
  log "building helm $HELM_VERSION from the Go module proxy (a few minutes, once)"
  local pkg="helm.sh/helm/v3"
  local ldflags="-s -w -X $pkg/internal/version.version=$HELM_VERSION"
  ldflags+=" -X $pkg/internal/version.gitTreeState=clean"
  ldflags+=" -X $pkg/pkg/lint/rules.k8sVersionMajor=1"
  ldflags+=" -X $pkg/pkg/lint/rules.k8sVersionMinor=$HELM_KUBE_MINOR"
  ldflags+=" -X $pkg/pkg/chartutil.k8sVersionMajor=1"
  ldflags+=" -X $pkg/pkg/chartutil.k8sVersionMinor=$HELM_KUBE_MINOR"
  local tmp="$dir/bin.partial"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  GOTOOLCHAIN=local GOBIN="$tmp" CGO_ENABLED=0 \
    go install -trimpath -ldflags "$ldflags" "$pkg/cmd/helm@$HELM_VERSION"
  rm -rf "$dir/bin"
  mv "$tmp" "$dir/bin"
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo -n "$@"; fi
}

# The pinned Debian version when this machine's archive has it (Debian bookworm, the
# project's machines), else the archive's own candidate (e.g. on Ubuntu CI runners).
has_version() {
  apt-cache show "prometheus=$1" 2>/dev/null | grep -q '^Version:'
}

promtool_deb_version() {
  if has_version "$PROMTOOL_DEB_VERSION"; then
    echo "$PROMTOOL_DEB_VERSION"
    return 0
  fi
  local candidate
  candidate="$(apt-cache policy prometheus 2>/dev/null | awk '/Candidate:/ {print $2}')"
  if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
    as_root apt-get update >/dev/null
    if has_version "$PROMTOOL_DEB_VERSION"; then
      echo "$PROMTOOL_DEB_VERSION"
      return 0
    fi
    candidate="$(apt-cache policy prometheus 2>/dev/null | awk '/Candidate:/ {print $2}')"
  fi
  [ -n "$candidate" ] && [ "$candidate" != "(none)" ] || { log "no prometheus package in apt"; return 1; }
  echo "$candidate"
}

extract_promtool() {
  local dir="$1" version="$2"
  [ -x "$dir/bin/promtool" ] && return 0
  log "fetching promtool from the prometheus $version package"
  local work
  work="$(mktemp -d)"
  # (apt warns that root downloads unsandboxed into a temporary folder: harmless.)
  (cd "$work" && apt-get download "prometheus=$version" >/dev/null 2>&1) \
    || { log "apt-get download prometheus=$version failed"; return 1; }
  dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
  mkdir -p "$dir/bin"
  install -m 0755 "$work/root/usr/bin/promtool" "$dir/bin/promtool.partial"
  mv "$dir/bin/promtool.partial" "$dir/bin/promtool"
  rm -rf "$work"
}

promtool_path() {
  # Fast path: the pinned version is cached already (no apt call at all).
  local pinned="$CACHE_ROOT/promtool-${PROMTOOL_DEB_VERSION%%+*}"
  if [ -x "$pinned/bin/promtool" ]; then
    echo "$pinned/bin/promtool"
    return 0
  fi
  command -v apt-get >/dev/null || { log "apt-get is required to fetch promtool"; return 1; }
  local version dir
  version="$(promtool_deb_version)"
  dir="$CACHE_ROOT/promtool-${version%%+*}"
  with_lock "$dir" extract_promtool "$dir" "$version"
  echo "$dir/bin/promtool"
}

tool_path() {
  case "$1" in
    helm)
      local dir="$CACHE_ROOT/helm-$HELM_VERSION"
      with_lock "$dir" build_helm "$dir"
      echo "$dir/bin/helm"
      ;;
    promtool)
      promtool_path
      ;;
    *)
      log "unknown tool '$1' (helm, promtool, all)"
      return 2
      ;;
  esac
}

main() {
  local want="${1:-all}"
  if [ "$want" = all ]; then
    tool_path helm
    tool_path promtool
  else
    tool_path "$want"
  fi
}

main "$@"
