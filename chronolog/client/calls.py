"""Each API operation as a ``Call``: the request to send and how to read its answer.

``Client`` and ``AsyncClient`` only send calls and hand the decoded body to
``Call.parse``: the mapping between Python and the HTTP API lives here, once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import orjson
from pydantic import BaseModel, TypeAdapter

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
M = TypeVar("M", bound=BaseModel)


Parse = Callable[[Any, int], T]  # the decoded body and the status of a 2xx answer


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    method: str
    path: str
    parse: Parse[T]
    params: Mapping[str, Any] = field(default_factory=dict)
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


def _model(kind: type[M]) -> Parse[M]:
    return lambda body, _status: kind.model_validate(body)


def _events(body: Any, _status: int) -> list[Event]:
    return _EVENT_LIST.validate_python(body["events"])


def _nothing(_body: Any, _status: int) -> None:
    return None


_EVENT_LIST = TypeAdapter(list[Event])
_TRIGGERED_LIST = TypeAdapter(list[Triggered])


def _ref(ref: str) -> str:
    return quote(ref, safe="")


def _present(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


# --- jobs ------------------------------------------------------------------------------


def list_jobs(
    *, tag: str | None, type: str | None, q: str | None, limit: int, offset: int
) -> Call[JobPage]:
    params = _present(tag=tag, type=type, q=q, limit=limit, offset=offset)
    return Call("GET", "/api/jobs", _model(JobPage), params=params)


def get_job(ref: str) -> Call[Job]:
    return Call("GET", f"/api/jobs/{_ref(ref)}", _model(Job))


def create_job(spec: Mapping[str, Any]) -> Call[Job]:
    return Call("POST", "/api/jobs", _model(Job), json=dict(spec))


def update_job(ref: str, fields: Mapping[str, Any]) -> Call[Job]:
    return Call("PUT", f"/api/jobs/{_ref(ref)}", _model(Job), json=dict(fields))


def delete_job(ref: str) -> Call[None]:
    return Call("DELETE", f"/api/jobs/{_ref(ref)}", _nothing)


def pause_job(ref: str, reason: str | None) -> Call[Job]:
    return Call("POST", f"/api/jobs/{_ref(ref)}/pause", _model(Job), json=_present(reason=reason))


def resume_job(ref: str, reason: str | None) -> Call[Job]:
    body = _present(reason=reason)
    return Call("POST", f"/api/jobs/{_ref(ref)}/resume", _model(Job), json=body)


def job_events(ref: str, limit: int | None) -> Call[list[Event]]:
    params = _present(limit=limit)
    return Call("GET", f"/api/jobs/{_ref(ref)}/events", _events, params=params)


# --- runs ------------------------------------------------------------------------------


def trigger(
    job: str, parameters: Mapping[str, Any] | None, idempotency_key: str | None
) -> Call[Triggered]:
    headers = _present(**{"Idempotency-Key": idempotency_key})
    body = {"parameters": dict(parameters or {})}
    path = f"/api/jobs/{_ref(job)}/trigger"
    return Call("POST", path, _triggered_single, json=body, headers=headers)


def _triggered_single(body: Any, status: int) -> Triggered:
    # 201: this request made the run; 200: an earlier one with the same key did.
    return Triggered.model_validate({**body, "created": status == 201})


@dataclass(frozen=True, slots=True)
class RunRequest:
    """One run of a batch trigger."""

    job: str
    parameters: Mapping[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None

    def to_json(self) -> dict[str, Any]:
        return _present(
            job=self.job, parameters=dict(self.parameters), idempotency_key=self.idempotency_key
        )


def trigger_many(requests: list[RunRequest]) -> Call[list[Triggered]]:
    body = {"runs": [r.to_json() for r in requests]}
    return Call("POST", "/api/runs", _triggered_batch, json=body)


def _triggered_batch(body: Any, _status: int) -> list[Triggered]:
    return _TRIGGERED_LIST.validate_python(body["runs"])


def get_run(run_id: str) -> Call[Run]:
    return Call("GET", f"/api/runs/{_ref(run_id)}", _model(Run))


def list_runs(
    *,
    job: str | None,
    status: RunStatus | str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> Call[RunPage]:
    params = _present(
        job_id=job,
        status=None if status is None else str(status),
        since=_time(since),
        until=_time(until),
        limit=limit,
        offset=offset,
    )
    return Call("GET", "/api/runs", _model(RunPage), params=params)


def cancel_run(run_id: str, reason: str | None) -> Call[Run]:
    body = _present(reason=reason)
    return Call("POST", f"/api/runs/{_ref(run_id)}/cancel", _model(Run), json=body)


def retry_run(run_id: str) -> Call[Run]:
    return Call("POST", f"/api/runs/{_ref(run_id)}/retry", _model(Run))


def run_events(run_id: str) -> Call[list[Event]]:
    return Call("GET", f"/api/runs/{_ref(run_id)}/events", _events)


def whoami() -> Call[Caller]:
    return Call("GET", "/api/whoami", _model(Caller))


# --- streams (server-sent events) ------------------------------------------------------


def live_output(run_id: str) -> Call[None]:
    return Call("GET", f"/api/runs/{_ref(run_id)}/output/live", _nothing)


def changes(*, after: str | None, job: str | None, kinds: list[str] | None) -> Call[None]:
    params = _present(after=after, job=job, types=None if kinds is None else ",".join(kinds))
    return Call("GET", "/api/changes", _nothing, params=params)


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    event: str
    data: str
    id: str | None = None


@dataclass(slots=True)
class SseParser:
    """Server-sent events from the lines of a stream (the WHATWG rules the API uses:
    ``event:``, ``id:``, ``data:`` lines, a blank line ends an event, ``:`` a comment)."""

    _event: str = "message"
    _id: str | None = None
    _data: list[str] = field(default_factory=list)

    def feed(self, line: str) -> ServerSentEvent | None:
        """The event ``line`` completes, if any."""
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            self._id = value
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        event = ServerSentEvent(self._event, "\n".join(self._data), self._id)
        had_data = bool(self._data)
        self._event, self._id, self._data = "message", None, []
        return event if had_data else None


def output_lines(event: ServerSentEvent) -> Iterator[OutputLine]:
    """The output lines one live-output event carries (none for ``end``)."""
    if event.event in ("stdout", "stderr"):
        for text in event.data.split("\n"):
            yield OutputLine(stream=event.event, text=text)


def change_of(event: ServerSentEvent) -> Change | None:
    """A change-stream event as a ``Change`` (None for an ``overflow``, which only says
    where to resume: the client reconnects from ``event.id``)."""
    if event.event == "overflow":
        return None
    data: dict[str, Any] = orjson.loads(event.data)
    return Change(
        kind=event.event,
        position=event.id or data.get("position", ""),
        event_type=data.get("event_type"),
        job_id=data.get("job_id"),
        job_name=data.get("job_name"),
        run_id=data.get("run_id"),
        status=data.get("status"),
        data=data,
    )


# --- waiting for a run -----------------------------------------------------------------


def poll_delays(first: float = 0.05, factor: float = 1.6, cap: float = 1.0) -> Iterator[float]:
    """Seconds between looks at a run: soon at first (most runs are short), then at most
    once a second."""
    delay = first
    while True:
        yield delay
        delay = min(cap, delay * factor)
