#!/usr/bin/env bash
# A real MLflow tracking server with its model registry, for the operator's model resolver:
#   MLflow (PyPI, own venv)  127.0.0.1:15000, SQLite backend and artifacts under .local/mlflow
# The venv is cached in ~/.cache/ocr-serving/mlflow-<version>/ (installed once with uv); the
# URL goes into .local/env as MLFLOW_TRACKING_URI.
# Usage: mlflow.sh up|start|wait|down|status (start and wait: up in two halves)
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
. "$(dirname "$0")/lib.sh"
LOG_TAG=mlflow

MLFLOW_VERSION="${OCR_MLFLOW_VERSION:-3.17.2}"
MLFLOW_PORT=15000
MLFLOW_URL="http://127.0.0.1:$MLFLOW_PORT"

mlflow_venv() {
  local dir="$CACHE/mlflow-$MLFLOW_VERSION"
  if [ -f "$dir/.complete" ]; then echo "$dir"; return 0; fi
  local uv="$REPO_ROOT/scripts/ensure-uv.sh"
  log "installing mlflow $MLFLOW_VERSION from PyPI into $dir (once)"
  rm -rf "$dir"
  # Its own venv: mlflow's server dependencies stay out of the project's lock.
  "$uv" venv --quiet --python 3.11 "$dir" >"$LOG_DIR/mlflow-install.log" 2>&1 \
    && VIRTUAL_ENV="$dir" "$uv" pip install --quiet --compile-bytecode \
      "mlflow==$MLFLOW_VERSION" \
      >>"$LOG_DIR/mlflow-install.log" 2>&1 \
    || die "mlflow install failed (see $LOG_DIR/mlflow-install.log)"
  touch "$dir/.complete"
  echo "$dir"
}

start() {
  ensure_dirs
  local venv d
  # The physical path: the server outlives any one checkout that links to .local.
  d="$(cd "$LOCAL" && pwd -P)/mlflow"
  if is_running mlflow; then log "mlflow already running"; return 0; fi
  port_in_use "$MLFLOW_PORT" && die "port $MLFLOW_PORT is taken by a process that is not ours"
  venv="$(mlflow_venv)"
  mkdir -p "$d/artifacts"
  # No job runner: its pool of huey consumers (about 2 GB, busy polling) serves GenAI
  # features the registry does not need.
  export MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false
  # Artifacts served through the tracking server (mlflow-artifacts:/), so a client needs
  # only the one URL, never a path on this machine.
  start_bg mlflow "$venv/bin/mlflow" server --host 127.0.0.1 --port "$MLFLOW_PORT" \
    --backend-store-uri "sqlite:///$d/mlflow.db" --artifacts-destination "$d/artifacts" \
    --serve-artifacts --workers 1
}

# Importing mlflow takes most of its start (a minute on 2 busy cores): infra.sh starts it
# first and waits for it last.
wait_ready() {
  local begin deadline
  begin=$(date +%s)
  wait_tcp 127.0.0.1 "$MLFLOW_PORT" 240 mlflow
  deadline=$(( $(date +%s) + 60 ))
  until curl -fsS "$MLFLOW_URL/health" >/dev/null 2>&1; do
    pid_alive mlflow || die "mlflow exited (see $LOG_DIR/mlflow.log)"
    [ "$(date +%s)" -lt "$deadline" ] || die "mlflow not healthy after 60 s"
    sleep 0.3
  done
  env_set MLFLOW_TRACKING_URI "$MLFLOW_URL"
  log "mlflow ready on $MLFLOW_URL (waited $(( $(date +%s) - begin )) s)"
}

# `mlflow server` runs uvicorn and a job runner as children, in the session start_bg opened:
# the whole process group goes.
down() {
  local pid deadline
  pid="$(cat "$(pid_file mlflow)" 2>/dev/null || true)"
  if [ -n "$pid" ] && is_running mlflow; then kill -TERM -- "-$pid" 2>/dev/null || true; fi
  stop_all 30 mlflow
  if [ -n "$pid" ]; then
    deadline=$(( $(date +%s) + 20 ))
    while pgrep -g "$pid" >/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  log "mlflow stopped"
}

case "${1:-}" in
  up) start; wait_ready ;;
  start) start ;;
  wait) wait_ready ;;
  down) down ;;
  status) print_status mlflow ;;
  *) die "usage: $0 up|start|wait|down|status" ;;
esac
