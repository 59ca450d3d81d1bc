"""``Client``: the HTTP API from plain (blocking) code."""

from __future__ import annotations

import time
from collections.abc import Generator, Mapping
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
from chronolog.client.errors import RunFailed, WaitTimeout
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

T = TypeVar("T")


class Client:
    """The Chronolog API. ``url``: else ``CHRONOLOG_API_URL``, else the local API;
    ``token``: else ``CHRONOLOG_TOKEN``. Use it as a context manager, or ``close()`` it."""

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = resolve_url(url)
        self._http = httpx.Client(
            base_url=self.url,
            headers=base_headers(resolve_token(token)),
            timeout=TIMEOUT,
            transport=transport,
        )

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- jobs ----------------------------------------------------------------------

    def list_jobs(
        self,
        *,
        tag: str | None = None,
        type: str | None = None,
        q: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> JobPage:
        return self._send(calls.list_jobs(tag=tag, type=type, q=q, limit=limit, offset=offset))

    def all_jobs(self, *, tag: str | None = None) -> list[Job]:
        """Every job (page after page)."""
        jobs: list[Job] = []
        while True:
            page = self.list_jobs(tag=tag, limit=500, offset=len(jobs))
            jobs += page.jobs
            if not page.jobs or len(jobs) >= page.total:
                return jobs

    def get_job(self, ref: str) -> Job:
        return self._send(calls.get_job(ref))

    def create_job(self, spec: Mapping[str, Any]) -> Job:
        return self._send(calls.create_job(spec))

    def update_job(self, ref: str, fields: Mapping[str, Any]) -> Job:
        return self._send(calls.update_job(ref, fields))

    def delete_job(self, ref: str) -> None:
        self._send(calls.delete_job(ref))

    def pause_job(self, ref: str, reason: str | None = None) -> Job:
        return self._send(calls.pause_job(ref, reason))

    def resume_job(self, ref: str, reason: str | None = None) -> Job:
        return self._send(calls.resume_job(ref, reason))

    def job_events(self, ref: str, limit: int | None = None) -> list[Event]:
        return self._send(calls.job_events(ref, limit))

    # --- runs ----------------------------------------------------------------------

    def trigger(
        self,
        job: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Triggered:
        return self._send(calls.trigger(job, parameters, idempotency_key))

    def trigger_many(self, requests: list[RunRequest]) -> list[Triggered]:
        """Up to 1,000 runs in one durable write, all or none."""
        return self._send(calls.trigger_many(requests))

    def get_run(self, run_id: str) -> Run:
        return self._send(calls.get_run(run_id))

    def list_runs(
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
        return self._send(call)

    def cancel(self, run_id: str, reason: str | None = None) -> Run:
        return self._send(calls.cancel_run(run_id, reason))

    def retry(self, run_id: str) -> Run:
        return self._send(calls.retry_run(run_id))

    def run_events(self, run_id: str) -> list[Event]:
        return self._send(calls.run_events(run_id))

    def wait(self, run_id: str, timeout: float = 60.0) -> Run:
        """The run once its status is final; ``WaitTimeout`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        for delay in calls.poll_delays():
            run = self.get_run(run_id)
            if run.status.is_final:
                return run
            left = deadline - time.monotonic()
            if left <= 0:
                raise WaitTimeout(run_id, run.status, timeout)
            time.sleep(min(delay, left))
        raise AssertionError("unreachable")  # poll_delays never ends

    def result(self, run_id: str, timeout: float = 60.0) -> Any:
        """What the run's job returned, once it completed; ``RunFailed`` otherwise."""
        return result_of(self.wait(run_id, timeout))

    def whoami(self) -> Caller:
        return self._send(calls.whoami())

    # --- streams -------------------------------------------------------------------

    def output(self, run_id: str) -> Generator[OutputLine, None, None]:
        """The run's output lines as they are printed, until its attempt ends."""
        for event in self._stream(calls.live_output(run_id)):
            yield from calls.output_lines(event)

    def changes(
        self, *, after: str | None = None, job: str | None = None, kinds: list[str] | None = None
    ) -> Generator[Change, None, None]:
        """Projected changes as they come (``after="0"``: from the start of the log).
        An overflow reconnects from where it left, so nothing is missed."""
        while True:
            for event in self._stream(calls.changes(after=after, job=job, kinds=kinds)):
                change = calls.change_of(event)
                if change is None:
                    after = event.id
                    break
                yield change
            else:
                return

    # --- plumbing ------------------------------------------------------------------

    def _send(self, call: Call[T]) -> T:
        try:
            response = self._http.request(call.method, call.path, **request_options(call))
        except httpx.TransportError as e:
            raise unreachable(self.url, e) from e
        parsed: T = answer(call, response)
        return parsed

    def _stream(self, call: Call[Any]) -> Generator[ServerSentEvent, None, None]:
        request = self._http.build_request(call.method, call.path, **request_options(call))
        request.extensions["timeout"] = STREAM_TIMEOUT.as_dict()
        try:
            response = self._http.send(request, stream=True)
            try:
                if not response.is_success:
                    check_stream(response, response.read())
                parser = SseParser()
                for line in response.iter_lines():
                    if (event := parser.feed(line)) is not None:
                        yield event
            finally:
                response.close()
        except httpx.TransportError as e:
            raise unreachable(self.url, e) from e


def result_of(run: Run) -> Any:
    if run.status == RunStatus.COMPLETED:
        return run.result
    raise RunFailed(run.id, run.status, run.reason, run.error)
