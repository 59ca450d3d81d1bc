#!/usr/bin/env bash
# Set up (first time) and run every check: lint, format, types, then the test suite.
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
install_chronolog "[dev]"
# chromium (and fonts for legible screenshots) for the dashboard's browser tests
ensure_debian_packages redis-server:redis-server /usr/lib/postgresql/15/bin/pg_ctl:postgresql curl:curl \
    chromium:chromium chromium:fonts-liberation
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
exec .venv/bin/pytest "$@"
