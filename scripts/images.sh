#!/usr/bin/env bash
# Builds the container images with podman (buildah inside) from Debian's packages: no Docker
# engine, no image registry. Base images are made locally (debootstrap, then `podman import`)
# and the Dockerfiles are built as they ship, with the bases, uv and Python passed as build
# arguments.
#
#   scripts/images.sh build     runtime image for $ENGINE (default onnx) and operator image
#   scripts/images.sh runtime   only the runtime image (then loaded into the node)
#   scripts/images.sh base      only the local base images
#   scripts/images.sh status    which images exist, with their sizes
#
# Tags: localhost/ocr-runtime:dev-$ENGINE, localhost/ocr-operator:dev (RUNTIME_TAG and
# OPERATOR_TAG override them, e.g. to try a branch without replacing the shared dev images).
# A rebuild after a source-only change reuses the cached dependency layers (podman's cache).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/infra/lib.sh"
# shellcheck source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/images/lib.sh"
LOG_TAG=images

ENGINE="${ENGINE:-onnx}"
RUNTIME_TAG="${RUNTIME_TAG:-localhost/ocr-runtime:dev-$ENGINE}"
OPERATOR_TAG="${OPERATOR_TAG:-localhost/ocr-operator:dev}"

base_images() {
  ensure_podman
  ensure_debian_image
  ensure_uv_image
  ensure_python_image
}

build_runtime() {
  case "$ENGINE" in onnx|onnx-gpu|paddle|paddle-gpu) ;;
    *) die "ENGINE must be onnx, onnx-gpu, paddle or paddle-gpu (got '$ENGINE')";; esac
  build_image Dockerfile.runtime "$RUNTIME_TAG" \
    --build-arg ENGINE="$ENGINE" \
    --build-arg BUILD_BASE="$PYTHON_IMAGE" --build-arg RUNTIME_BASE="$PYTHON_IMAGE"
}

build_operator() {
  build_image Dockerfile.operator "$OPERATOR_TAG" --build-arg BASE="$PYTHON_IMAGE"
}

# The real node (scripts/infra/node.sh) runs containerd with its own image store: hand it the
# fresh images when it is up. Without a node there is nothing to load.
load_into_node() {
  local node="$REPO_ROOT/scripts/infra/node.sh"
  [ -x "$node" ] || return 0
  if "$node" status >/dev/null 2>&1; then
    log "loading the images into the node's containerd"
    "$node" load-images
  fi
}

status() {
  ensure_podman
  local image rc=0
  for image in "$DEBIAN_IMAGE" "$UV_IMAGE" "$PYTHON_IMAGE" "$RUNTIME_TAG" "$OPERATOR_TAG"; do
    if podman image exists "$image"; then echo "$image: $(image_size_mb "$image") MB"
    else echo "$image: missing"; rc=1; fi
  done
  return "$rc"
}

main() {
  ensure_dirs
  case "${1:-build}" in
    build)
      with_lock base_images
      with_lock build_runtime
      with_lock build_operator
      status
      load_into_node
      ;;
    runtime)
      with_lock base_images
      with_lock build_runtime
      load_into_node
      ;;
    base) with_lock base_images ;;
    status) status ;;
    *) die "usage: $0 [build|runtime|base|status]" ;;
  esac
}

main "$@"
