"""Reading the ``live-change`` store that ``assets/live.js`` fills from the change stream.

Changes that arrive together come as one value: ``kinds``, ``job_ids`` and ``run_ids``
say what they touched, ``changes`` holds them in order (the last 200). ``kind`` is
``resync`` after live updates were switched back on: everything may have changed.
"""

from __future__ import annotations

from typing import Any

# A run entering these raises a toast: an attempt failed (failing), or the run failed for
# good (failed: dead-lettered, retries exhausted or not retryable).
ALARMING = ("failing", "failed")


def touches(change: dict[str, Any] | None, kind: str) -> bool:
    """Whether ``change`` may have changed things of ``kind`` (job, run or worker)."""
    if not change:
        return False
    return change.get("kind") == "resync" or kind in (change.get("kinds") or ())


def touches_job(change: dict[str, Any] | None, job_id: str) -> bool:
    if not change:
        return False
    return change.get("kind") == "resync" or job_id in (change.get("job_ids") or ())


def touches_run(change: dict[str, Any] | None, run_id: str) -> bool:
    if not change:
        return False
    return change.get("kind") == "resync" or run_id in (change.get("run_ids") or ())


def alarms(change: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The run changes in ``change`` that entered a failing or failed status, in order."""
    if not change:
        return []
    return [
        c
        for c in change.get("changes") or ()
        if c.get("kind") == "run" and c.get("status") in ALARMING
    ]
