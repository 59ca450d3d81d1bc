#!/usr/bin/env bash
# Set up (first time) and start Chronolog on its embedded defaults: API on
# http://127.0.0.1:8000, data in ./.chronolog. Extra arguments go to `chronolog up`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
install_chronolog ""
# The CLI is in .venv, not on the PATH: say how to reach it (stderr keeps stdout clean).
echo "CLI: source .venv/bin/activate  (or .venv/bin/chronolog)" >&2
exec .venv/bin/chronolog up "$@"
