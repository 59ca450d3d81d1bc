"""The README's ``daily-report`` job (``"function": "reports.generate_daily"``).

Workers import job code from the directory Chronolog is started from, or from
``--app-dir`` (``CHRONOLOG_APP_DIR``): start Chronolog with ``--app-dir examples``, or
copy this file to the directory you start it from.
"""

from __future__ import annotations

import sys


def generate_daily(recipients: list[str]) -> dict[str, object]:
    """Build the day's report; what it prints is the run's output, what it returns its result.

    The job's ``parameters`` arrive as keyword arguments.
    """
    sections = ["runs", "failures", "durations"]
    for number, section in enumerate(sections, start=1):
        sys.stdout.write(f"building report {number} of {len(sections)}: {section}\n")
    sys.stdout.write("Report generated\n")
    return {"recipients": recipients, "sections": len(sections)}
