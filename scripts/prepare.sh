#!/usr/bin/env bash
# Everything `make test` needs: the services of `make infra-up`, the images of `make images`
# and the cluster of `make cluster-up` (control plane, kwok GPU nodes, the real node).
#
# On a fresh machine the Go builds (Kubernetes, etcd, kwok, the node's CoreDNS) keep both
# cores busy for about 20 minutes, while the other steps mostly wait on downloads (Debian
# packages, Maven jars, PyPI wheels). So the Go builds run in the background from the start;
# the Python workspace, the services, the images and the optional COMMAND (scripts/test.sh
# passes lint and the tests that need no cluster) run beside them; the cluster starts once
# the binaries exist. Warm, the builds are no-ops.
#
#   scripts/prepare.sh [COMMAND...]
#
# Exit status: 1 when a step of the preparation failed (at once); otherwise COMMAND's, after
# the cluster is up (a failing COMMAND does not stop the preparation).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/infra/lib.sh"
LOG_TAG=prepare
ensure_dirs

GO_LOG="$LOG_DIR/go-builds.log"
started=$SECONDS
(
  "$REPO_ROOT/scripts/infra/k8s-build.sh" all
  "$REPO_ROOT/scripts/infra/k8s-build.sh" node
) >"$GO_LOG" 2>&1 &
go_builds=$!
# A failing foreground step must not leave a compiler running behind the caller.
trap 'kill "$go_builds" 2>/dev/null || true' EXIT

"$REPO_ROOT/scripts/ensure-uv.sh" sync --frozen
"$REPO_ROOT/scripts/infra/infra.sh" up
ENGINE="${ENGINE:-onnx}" "$REPO_ROOT/scripts/images.sh" build
command_status=0
if [ "$#" -gt 0 ]; then "$@" || command_status=$?; fi

while kill -0 "$go_builds" 2>/dev/null; do
  log "waiting for the Go builds ($(tail -n 1 "$GO_LOG" 2>/dev/null | cut -c1-120))"
  for _ in $(seq 60); do kill -0 "$go_builds" 2>/dev/null || break; sleep 1; done
done
wait "$go_builds" || { tail -n 30 "$GO_LOG" >&2; die "the Go builds failed (log: $GO_LOG)"; }
trap - EXIT
log "Go builds done $((SECONDS - started)) s after the start (log: $GO_LOG)"

"$REPO_ROOT/scripts/infra/cluster.sh" up
log "ready in $((SECONDS - started)) s"
exit "$command_status"
