"""``AsyncClient``: the HTTP API from asyncio code (same calls, same errors as ``Client``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from datetime import datetime
from typing import Any, TypeVar

import httpx2 as httpx

from chronolog.client import calls
from chronolog.client.calls import Call, RunRequest, ServerSentEvent, SseParser
from chronolog.client.connection import (
    STREAM_TIMEOUT,
    TIMEOUT,
    answer,
    base_headers,
    check_stream,
    request_options,
    resolve_token,
    resolve_url,
    unreachable,
)
from chronolog.client.errors import WaitTimeout
from chronolog.client.models import (
    Caller,
    Change,
    Event,
    Job,
    JobPage,
    OutputLine,
    Run,
    RunPage,
    RunStatus,
    Triggered,
)
from chronolog.client.sync import result_of

T = TypeVar("T")


class AsyncClient:
    """The Chronolog API for asyncio: ``async with AsyncClient() as chronolog: ...``."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = resolve_url(url)
        self._http = httpx.AsyncClient(
            base_url=self.url,
            headers=base_headers(resolve_token(token)),
            timeout=TIMEOUT,
            transport=transport,
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    # --- jobs ----------------------------------------------------------------------

    async def list_jobs(
        self,
        *,
        tag: str | None = None,
        type: str | None = None,
        q: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> JobPage:
        call = calls.list_jobs(tag=tag, type=type, q=q, limit=limit, offset=offset)
        return await self._send(call)

    async def all_jobs(self, *, tag: str | None = None) -> list[Job]:
        """Every job (page after page)."""
        jobs: list[Job] = []
        while True:
            page = await self.list_jobs(tag=tag, limit=500, offset=len(jobs))
            jobs += page.jobs
            if not page.jobs or len(jobs) >= page.total:
                return jobs

    async def get_job(self, ref: str) -> Job:
        return await self._send(calls.get_job(ref))

    async def create_job(self, spec: Mapping[str, Any]) -> Job:
        return await self._send(calls.create_job(spec))

    async def update_job(self, ref: str, fields: Mapping[str, Any]) -> Job:
        return await self._send(calls.update_job(ref, fields))

    async def delete_job(self, ref: str) -> None:
        await self._send(calls.delete_job(ref))

    async def pause_job(self, ref: str, reason: str | None = None) -> Job:
        return await self._send(calls.pause_job(ref, reason))

    async def resume_job(self, ref: str, reason: str | None = None) -> Job:
        return await self._send(calls.resume_job(ref, reason))

    async def job_events(self, ref: str, limit: int | None = None) -> list[Event]:
        return await self._send(calls.job_events(ref, limit))

    # --- runs ----------------------------------------------------------------------

    async def trigger(
        self,
        job: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Triggered:
        return await self._send(calls.trigger(job, parameters, idempotency_key))

    async def trigger_many(self, requests: list[RunRequest]) -> list[Triggered]:
        return await self._send(calls.trigger_many(requests))

    async def get_run(self, run_id: str) -> Run:
        return await self._send(calls.get_run(run_id))

    async def list_runs(
        self,
        *,
        job: str | None = None,
        status: RunStatus | str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> RunPage:
        call = calls.list_runs(
            job=job, status=status, since=since, until=until, limit=limit, offset=offset
        )
        return await self._send(call)

    async def cancel(self, run_id: str, reason: str | None = None) -> Run:
        return await self._send(calls.cancel_run(run_id, reason))

    async def retry(self, run_id: str) -> Run:
        return await self._send(calls.retry_run(run_id))

    async def run_events(self, run_id: str) -> list[Event]:
        return await self._send(calls.run_events(run_id))

    async def wait(self, run_id: str, timeout: float = 60.0) -> Run:
        """The run once its status is final; ``WaitTimeout`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        for delay in calls.poll_delays():
            run = await self.get_run(run_id)
            if run.status.is_final:
                return run
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(run_id, run.status, timeout)
            await asyncio.sleep(min(delay, left))
        raise AssertionError("unreachable")  # poll_delays never ends

    async def result(self, run_id: str, timeout: float = 60.0) -> Any:
        return result_of(await self.wait(run_id, timeout))

    async def whoami(self) -> Caller:
        return await self._send(calls.whoami())

    # --- streams -------------------------------------------------------------------

    async def output(self, run_id: str) -> AsyncIterator[OutputLine]:
        async for event in self._stream(calls.live_output(run_id)):
            for line in calls.output_lines(event):
                yield line

    async def changes(
        self, *, after: str | None = None, job: str | None = None, kinds: list[str] | None = None
    ) -> AsyncIterator[Change]:
        while True:
            overflowed = False
            async for event in self._stream(calls.changes(after=after, job=job, kinds=kinds)):
                change = calls.change_of(event)
                if change is None:
                    after, overflowed = event.id, True
                    break
                yield change
            if not overflowed:
                return

    # --- plumbing ------------------------------------------------------------------

    async def _send(self, call: Call[T]) -> T:
        try:
            response = await self._http.request(call.method, call.path, **request_options(call))
        except httpx.TransportError as e:
            raise unreachable(self.url, e) from e
        parsed: T = answer(call, response)
        return parsed

    async def _stream(self, call: Call[Any]) -> AsyncIterator[ServerSentEvent]:
        request = self._http.build_request(call.method, call.path, **request_options(call))
        request.extensions["timeout"] = STREAM_TIMEOUT.as_dict()
        try:
            response = await self._http.send(request, stream=True)
            try:
                if not response.is_success:
                    check_stream(response, await response.aread())
                parser = SseParser()
                async for line in response.aiter_lines():
                    if (event := parser.feed(line)) is not None:
                        yield event
            finally:
                await response.aclose()
        except httpx.TransportError as e:
            raise unreachable(self.url, e) from e
