#!/usr/bin/env bash
# Runs uv, installing it from PyPI first when this machine lacks it.
set -euo pipefail
if ! command -v uv >/dev/null 2>&1; then
  if [ ! -x "$HOME/.local/bin/uv" ]; then
    echo "uv not found: installing it from PyPI" >&2
    python3 -m pip install --quiet --user uv >&2
  fi
  export PATH="$HOME/.local/bin:$PATH"
fi
exec uv "$@"
