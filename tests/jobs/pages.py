"""Jobs the dashboard's browser tests run (``tests.jobs.pages:<name>``)."""

from __future__ import annotations

import sys
import time


def talk_slowly(lines: int = 4, pause: float = 0.5) -> int:
    """Prints a line every ``pause`` seconds, so a run stays running long enough to watch."""
    for index in range(1, lines + 1):
        sys.stdout.write(f"step {index} of {lines}\n")
        sys.stdout.flush()  # written now, so the live output shows it while the run runs
        time.sleep(pause)
    return lines


def always_fail() -> None:
    sys.stdout.write("trying\n")
    raise RuntimeError("this job always fails")
