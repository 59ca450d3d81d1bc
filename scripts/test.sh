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
# Three workers (pytest-xdist) on two cores: most tests wait on processes, servers and
# sleeps, not on the CPU. Each worker starts its own PostgreSQL, Redis and broker on free
# ports in its own temporary directories; worksteal evens out the long e2e tests.
# A later -n in the arguments wins (-n 0 runs in this process, e.g. for pdb).
exec .venv/bin/pytest -n 3 --dist worksteal "$@"
