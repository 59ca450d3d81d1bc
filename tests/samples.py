"""The job bodies of the issue's demo, shared by the API and end-to-end tests."""

from typing import Any

DAILY_REPORT: dict[str, Any] = {
    "name": "daily-report",
    "type": "python",
    "function": "reports.generate_daily",
    "schedule": "0 9 * * *",
    "parameters": {"recipients": ["team@example.com"]},
    "timeout": 3600,
    "retries": 2,
    "tags": ["reports"],
}
SEND_REPORT: dict[str, Any] = {
    "name": "send-report",
    "type": "python",
    "function": "mailer.send_report",
    "depends_on": ["daily-report"],
}
