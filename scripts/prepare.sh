#!/usr/bin/env bash
# Everything `make test` needs: the services of `make infra-up`, the images of `make images`
# and the cluster of `make cluster-up` (control plane, kwok GPU nodes, the real node).
#
# On a fresh machine the Go builds (Kubernetes, etcd, kwok, the node's CoreDNS, KEDA) keep both
# cores busy for about 20 minutes, while the other steps mostly wait on downloads (Debian
# packages, Maven jars, PyPI wheels). So the Go builds run in the background from the start;
# the Python workspace, the services and the images run beside them; then the cluster starts
# in the background once the binaries exist, while the optional COMMAND runs (scripts/test.sh
# passes lint and the tests). COMMAND learns when the cluster is up from the file named by
# $OCR_CLUSTER_STATE_FILE: it holds `up` or `failed` once the cluster step ended. Warm, the
# builds are no-ops.
#
#   scripts/prepare.sh [COMMAND...]
#
# Exit status: 1 when a step of the preparation failed; otherwise COMMAND's (a failing
# COMMAND does not stop the preparation). Returns once both the cluster step and COMMAND
# ended.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/infra/lib.sh"
LOG_TAG=prepare
ensure_dirs

GO_LOG="$LOG_DIR/go-builds.log"
GO_STATUS="$RUN_DIR/go-builds.status"
rm -f "$GO_STATUS"
started=$SECONDS
(
  set +e
  "$REPO_ROOT/scripts/infra/k8s-build.sh" all && "$REPO_ROOT/scripts/infra/k8s-build.sh" node \
    && "$REPO_ROOT/scripts/infra/k8s-build.sh" keda
  echo "$?" >"$GO_STATUS"
) >"$GO_LOG" 2>&1 &
go_builds=$!
# A failing foreground step must not leave a compiler running behind the caller.
trap 'kill "$go_builds" 2>/dev/null || true' EXIT

"$REPO_ROOT/scripts/ensure-uv.sh" sync --frozen
"$REPO_ROOT/scripts/infra/infra.sh" up
ENGINE="${ENGINE:-onnx}" "$REPO_ROOT/scripts/images.sh" build

# The node loads the images just built, so the cluster step starts after them.
export OCR_CLUSTER_STATE_FILE="$RUN_DIR/cluster-step.state"
rm -f "$OCR_CLUSTER_STATE_FILE"
CLUSTER_STEP_LOG="$LOG_DIR/cluster-step.log"
cluster_step() {
  cluster_state=failed
  trap 'echo "$cluster_state" >"$OCR_CLUSTER_STATE_FILE"' EXIT
  while kill -0 "$go_builds" 2>/dev/null; do
    log "waiting for the Go builds ($(tail -n 1 "$GO_LOG" 2>/dev/null | cut -c1-120))"
    for _ in $(seq 60); do kill -0 "$go_builds" 2>/dev/null || break; sleep 1; done
  done
  if [ "$(cat "$GO_STATUS" 2>/dev/null)" != 0 ]; then
    tail -n 30 "$GO_LOG" >&2
    die "the Go builds failed (log: $GO_LOG)"
  fi
  log "Go builds done $((SECONDS - started)) s after the start (log: $GO_LOG)"
  "$REPO_ROOT/scripts/infra/cluster.sh" up
  log "ready in $((SECONDS - started)) s"
  cluster_state=up
}
# Logged to a file: its progress lines would cut through COMMAND's output.
log "the cluster starts in the background once the Go builds are done (log: $CLUSTER_STEP_LOG)"
cluster_step >"$CLUSTER_STEP_LOG" 2>&1 &
cluster_job=$!
trap 'kill "$go_builds" "$cluster_job" 2>/dev/null || true' EXIT

command_status=0
if [ "$#" -gt 0 ]; then "$@" || command_status=$?; fi
cluster_status=0
wait "$cluster_job" || cluster_status=$?
trap - EXIT
tail -n "$([ "$cluster_status" = 0 ] && echo 2 || echo 40)" "$CLUSTER_STEP_LOG" >&2
[ "$cluster_status" = 0 ] || exit 1
exit "$command_status"
