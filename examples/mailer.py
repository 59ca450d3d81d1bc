"""The README's ``send-report`` job (``"function": "mailer.send_report"``), which runs
after ``daily-report`` succeeds. Named ``mailer``, not ``email``: a job module must not
share its name with a standard-library module it would hide."""

from __future__ import annotations

import os
import sys


def send_report() -> dict[str, str]:
    """Pretend to mail the report; the run id makes a retried send recognisable."""
    run_id = os.environ.get("CHRONOLOG_RUN_ID", "unknown")
    sys.stdout.write(f"Report sent (run {run_id})\n")
    return {"sent_by": run_id}
