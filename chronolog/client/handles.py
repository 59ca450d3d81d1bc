"""A run, as ``@job``'s ``.trigger()`` returns it: its id, and ways to learn its end."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chronolog.client.asynchronous import AsyncClient
from chronolog.client.models import Run, RunStatus
from chronolog.client.sync import Client


@dataclass(frozen=True, slots=True)
class RunHandle:
    run_id: str
    job_id: str
    client: Client

    def status(self) -> RunStatus:
        return self.client.get_run(self.run_id).status

    def get(self) -> Run:
        return self.client.get_run(self.run_id)

    def wait(self, timeout: float = 60.0) -> Run:
        """The run once final (``WaitTimeout`` after ``timeout`` seconds)."""
        return self.client.wait(self.run_id, timeout)

    def result(self, timeout: float = 60.0) -> Any:
        """What the job returned; ``RunFailed`` if it failed, was cancelled or skipped."""
        return self.client.result(self.run_id, timeout)


@dataclass(frozen=True, slots=True)
class AsyncRunHandle:
    run_id: str
    job_id: str
    client: AsyncClient

    async def status(self) -> RunStatus:
        return (await self.client.get_run(self.run_id)).status

    async def wait(self, timeout: float = 60.0) -> Run:
        return await self.client.wait(self.run_id, timeout)

    async def result(self, timeout: float = 60.0) -> Any:
        return await self.client.result(self.run_id, timeout)
