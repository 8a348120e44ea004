#!/usr/bin/env bash
# `make test`: lint and the whole suite, with everything it needs prepared first.
#
# On a fresh machine the cluster's binaries compile for about 20 minutes, and most tests spend
# their time waiting on services, pods and the operator rather than on the CPU. So, beside
# scripts/prepare.sh's Go builds and cluster start:
#   1. lint;
#   2. the tests that restart Kafka and MariaDB (-m restarts_services), alone: any other test
#      would see its broker or database vanish under it;
#   3. the tests that need no cluster (-m "not cluster"), then, beside them once the cluster is
#      up, the tests that reach it (-m cluster; their output goes to a log, printed at the end).
# Every part always runs; the status is the first failure's.
#
#   scripts/test.sh [PYTEST_ARGS...]   with arguments: everything prepared, then one pytest
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

pytest_with_env() {
  set -a
  # shellcheck source=/dev/null
  . .local/env
  set +a
  scripts/ensure-uv.sh run --frozen pytest "$@"
}

if [ "$#" -gt 0 ]; then
  scripts/prepare.sh make --no-print-directory lint || exit $?
  pytest_with_env --durations=30 "$@"
  exit $?
fi

note() { printf '[%s test] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# Waits for scripts/prepare.sh's cluster step; fails when it failed.
wait_for_cluster() {
  local state=""
  while [ -z "$state" ]; do
    sleep 5
    state=$(cat "$OCR_CLUSTER_STATE_FILE" 2>/dev/null || true)
  done
  [ "$state" = up ] || { note "the cluster did not start: the cluster tests cannot run"; return 1; }
}

all_tests() {
  local status=0 part services_tests cluster_log=.local/logs/pytest-cluster.log
  rm -f "$cluster_log"
  make --no-print-directory lint
  status=$?
  pytest_with_env -m restarts_services -p no:cacheprovider
  part=$?
  [ "$status" != 0 ] || status=$part
  pytest_with_env -m "not cluster and not restarts_services" --durations=20 &
  services_tests=$!
  if wait_for_cluster; then
    note "the cluster is up: the cluster tests run beside the others (log: $cluster_log)"
    pytest_with_env -m cluster --durations=20 -p no:cacheprovider >"$cluster_log" 2>&1
    part=$?
  else
    part=1
  fi
  wait "$services_tests"
  local services_status=$?
  [ "$status" != 0 ] || status=$services_status
  [ "$status" != 0 ] || status=$part
  note "the cluster tests ended with status $part; their output, from $cluster_log:"
  cat "$cluster_log" 2>/dev/null
  return "$status"
}

export -f pytest_with_env note wait_for_cluster all_tests
scripts/prepare.sh bash -c all_tests
