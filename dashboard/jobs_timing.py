"""How the dashboard shows a job's times (its status and fire times are
``timing.job_timing``'s, shared with the API)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo


def in_zone(moment: datetime, timezone: str) -> str:
    """``2026-12-02 09:00 CET``: a wall time in the job's timezone, with its abbreviation."""
    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M %Z")
