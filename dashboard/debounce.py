"""Debounced refreshes for pages that are costly to redraw on every live change.

A page refreshes at once on a change if its last refresh is at least ``quiet_ms`` old;
otherwise it waits, and a trailing timer (a ``dcc.Interval`` switched on for the wait)
refreshes it once when the quiet time is over, so the last change of a burst is shown.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Decision:
    refresh: bool  # redraw now
    wait: bool  # keep the trailing timer on (a change is waiting to be shown)


def on_change(now_ms: float, last_ms: float | None, quiet_ms: float) -> Decision:
    """A live change arrived: redraw now, or leave it to the trailing timer."""
    if last_ms is None or now_ms - last_ms >= quiet_ms:
        return Decision(refresh=True, wait=False)
    return Decision(refresh=False, wait=True)


# Anything else (the page opened, its range changed, the trailing timer fired) redraws.
REDRAW = Decision(refresh=True, wait=False)
