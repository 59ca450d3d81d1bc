#!/usr/bin/env bash
# Set up (first time) and start Chronolog on its embedded defaults: API on
# http://127.0.0.1:8000, data in ./.chronolog. Extra arguments go to `chronolog up`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
install_chronolog ""
exec .venv/bin/chronolog up "$@"
