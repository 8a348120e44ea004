#!/usr/bin/env bash
# `make test`: lint and the whole suite, with everything it needs prepared first.
#
# On a fresh machine the cluster's binaries compile for about 20 minutes. So lint and every
# test that needs no cluster (pytest -m "not cluster": unit, the services' integration tests,
# the image checks) run while they compile (scripts/prepare.sh runs them beside its Go
# builds); the tests that reach the cluster (-m cluster) run once it is up. Both parts always
# run; the status is the first failure's.
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

export -f pytest_with_env
scripts/prepare.sh bash -c 'make --no-print-directory lint && pytest_with_env -m "not cluster" --durations=20'
first=$?
pytest_with_env -m cluster --durations=20
second=$?
exit $((first != 0 ? first : second))
