"""``python -m worker --tags default --concurrency 4``: the same as ``chronolog worker``."""

import sys

from chronolog.cli import app

app(args=["worker", *sys.argv[1:]], prog_name="python -m worker")
