"""Jobs the dashboard's browser tests run (``tests.jobs.pages:<name>``)."""

from __future__ import annotations

import time


def talk_slowly(lines: int = 4, pause: float = 0.5) -> int:
    """Prints a line every ``pause`` seconds, so a run stays running long enough to watch."""
    for index in range(1, lines + 1):
        print(f"step {index} of {lines}", flush=True)
        time.sleep(pause)
    return lines


def always_fail() -> None:
    print("trying", flush=True)
    raise RuntimeError("this job always fails")
