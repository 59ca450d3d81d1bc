"""A run, as ``@job``'s ``.trigger()`` returns it: its id, and ways to learn its end.

A handle holds where the API is, not an open connection: each look opens a client and
closes it, so a handle kept around (or dropped) leaks nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chronolog.client.models import Run, RunStatus
from chronolog.client.sync import Client


@dataclass(frozen=True, slots=True)
class RunHandle:
    run_id: str
    job_id: str
    url: str | None = None  # None: CHRONOLOG_API_URL, else the local API
    token: str | None = None  # None: CHRONOLOG_TOKEN

    def status(self) -> RunStatus:
        return self.get().status

    def get(self) -> Run:
        with Client(self.url, self.token) as client:
            return client.get_run(self.run_id)

    def wait(self, timeout: float = 60.0) -> Run:
        """The run once final (``WaitTimeout`` after ``timeout`` seconds)."""
        with Client(self.url, self.token) as client:
            return client.wait(self.run_id, timeout)

    def result(self, timeout: float = 60.0) -> Any:
        """What the job returned; ``RunFailed`` if it failed, was cancelled or skipped."""
        with Client(self.url, self.token) as client:
            return client.result(self.run_id, timeout)
