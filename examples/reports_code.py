"""The README's daily report as code: ``chronolog apply examples/reports_code.py``."""

from __future__ import annotations

from datetime import date

from chronolog import job


@job(
    schedule="0 9 * * *",
    timezone="Europe/Berlin",
    retries=2,
    tags=["reports"],
    parameters={"recipients": ["team@example.com"]},
)
def generate_daily(recipients: list[str], day: date | None = None) -> dict[str, object]:
    """Mail the daily report."""
    when = day or date.today()
    return {"sent": len(recipients), "day": when.isoformat()}
