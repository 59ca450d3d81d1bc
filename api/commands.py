"""Job command handlers: check the command against the read model, append its event,
and wait until the read model shows it (read-your-writes)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from api.appending import api_event, append_and_wait
from api.auth import Caller
from api.context import ApiContext
from api.errors import Conflict, FieldProblem, Invalid, NotFound
from api.schemas import JobFields, NewJob
from api.secret_refs import split_headers
from api.validation import check_spec, find_cycle
from events.ids import new_job_id
from events.model import (
    HOOK_NAMES,
    Event,
    Hook,
    JobCreated,
    JobDeleted,
    JobPaused,
    JobResumed,
    JobSpec,
    JobUpdated,
    Payload,
)
from projector import api_reads
from projector.job_projection import JobRow, Rejected, apply_job_event


def _default(spec_field: dataclasses.Field[Any]) -> Any:
    if spec_field.default_factory is not dataclasses.MISSING:
        return spec_field.default_factory()
    return spec_field.default


# max_concurrency: null is a value of its own (no limit), not "the default".
_SPEC_DEFAULTS = {
    f.name: _default(f)
    for f in dataclasses.fields(JobSpec)
    if f.name not in ("name", "type", "max_concurrency")
}


@dataclass(frozen=True, slots=True)
class Written:
    """The job after a command. ``consistent`` is False when the read model did not
    catch up within the bounded wait; ``job`` is then the command's own projection."""

    job: JobRow | None
    consistent: bool = True
    changed: bool = True


class JobCommands:
    def __init__(self, context: ApiContext, caller: Caller) -> None:
        self._ctx = context
        self._caller = caller

    def create(self, fields: NewJob) -> Written:
        with self._serialized() as session:
            spec = self._spec(session, fields.model_dump(exclude_unset=True), base=None)
            self._check(spec, schedule_changed=True)
            self._check_name_free(session, spec.name, job_id=None)
            job_id = new_job_id()
            self._check_dependencies(session, job_id, spec.depends_on)
            return self._write(None, self._event(job_id, JobCreated(spec)))

    def update(self, ref: str, fields: JobFields) -> Written:
        with self._serialized() as session:
            current = self._find(session, ref)
            spec = self._spec(session, fields.model_dump(exclude_unset=True), base=current.spec)
            changed = tuple(
                f.name
                for f in dataclasses.fields(JobSpec)
                if getattr(spec, f.name) != getattr(current.spec, f.name)
            )
            if not changed:
                return Written(current, changed=False)
            self._check(spec, schedule_changed=bool({"schedule", "timezone"} & set(changed)))
            if "name" in changed:
                self._check_name_free(session, spec.name, job_id=current.id)
            self._check_dependencies(session, current.id, spec.depends_on)
            return self._write(current, self._event(current.id, JobUpdated(spec, changed)))

    def delete(self, ref: str) -> Written:
        with self._serialized() as session:
            current = self._find(session, ref)
            if dependents := api_reads.dependents(session, current.id):
                raise Conflict(
                    f"job {current.name!r} cannot be deleted: {', '.join(dependents)} depend on it",
                    [FieldProblem("depends_on", f"remove it from {', '.join(dependents)} first")],
                )
            return self._write(current, self._event(current.id, JobDeleted()))

    def set_enabled(self, ref: str, enabled: bool, reason: str | None = None) -> Written:
        with self._serialized() as session:
            current = self._find(session, ref)
            if current.spec.enabled == enabled:
                return Written(current, changed=False)
            payload: Payload = JobResumed(reason) if enabled else JobPaused(reason)
            return self._write(current, self._event(current.id, payload))

    # --- steps ---------------------------------------------------------------------

    @contextmanager
    def _serialized(self) -> Iterator[Session]:
        with self._ctx.command_lock, Session(self._ctx.engine) as session:
            yield session

    def _find(self, session: Session, ref: str) -> JobRow:
        job = api_reads.find_job(session, ref)
        if job is None:
            raise NotFound(f"no job with id or name {ref!r}")
        return job

    def _spec(self, session: Session, values: dict[str, Any], base: JobSpec | None) -> JobSpec:
        problems = [
            FieldProblem(k, "cannot be null")
            for k in ("name", "type")
            if k in values and values[k] is None
        ]
        if problems:
            raise Invalid.of(problems)
        if "depends_on" in values and values["depends_on"] is not None:
            values["depends_on"] = self._resolve(session, values["depends_on"])
        return build_spec(values, base)

    def _resolve(self, session: Session, refs: list[str]) -> tuple[str, ...]:
        found = api_reads.resolve_jobs(session, refs)
        missing = [ref for ref in refs if ref not in found]
        if missing:
            raise Invalid.of(
                [FieldProblem("depends_on", f"no job named {ref!r}") for ref in missing]
            )
        return tuple(dict.fromkeys(found[ref] for ref in refs))

    def _check_name_free(self, session: Session, name: str, job_id: str | None) -> None:
        holder = api_reads.find_job(session, name)
        if holder is not None and holder.id != job_id and holder.name == name:
            raise Conflict(
                f"a job named {name!r} already exists ({holder.id})",
                [FieldProblem("name", f"{name!r} is taken by {holder.id}")],
            )

    def _check_dependencies(
        self, session: Session, job_id: str, depends_on: tuple[str, ...]
    ) -> None:
        cycle = find_cycle(api_reads.dependency_graph(session), job_id, depends_on)
        if cycle is not None:
            names = api_reads.job_names(session, cycle)
            path = " -> ".join(names.get(j, "(this job)") for j in cycle)
            raise Invalid.of([FieldProblem("depends_on", f"would create a cycle: {path}")])

    def _check(self, spec: JobSpec, *, schedule_changed: bool) -> None:
        problems = check_spec(spec, self._ctx.clock(), schedule_changed=schedule_changed)
        if problems:
            raise Invalid.of(problems)

    def _event(self, job_id: str, payload: Payload) -> Event:
        return api_event(self._ctx, self._caller, payload, job_id)

    def _write(self, current: JobRow | None, event: Event) -> Written:
        if append_and_wait(self._ctx, [event]):
            with Session(self._ctx.engine) as session:
                return Written(api_reads.find_job(session, event.job_id or ""))
        outcome = apply_job_event(current, event)
        return Written(None if isinstance(outcome, Rejected) else outcome, consistent=False)


def build_spec(values: dict[str, Any], base: JobSpec | None) -> JobSpec:
    """A spec from request fields laid over ``base``; a null field means its default
    (but a null ``max_concurrency`` means no limit)."""
    values = {
        k: (_SPEC_DEFAULTS[k] if v is None and k in _SPEC_DEFAULTS else v)
        for k, v in values.items()
    }
    if "command" in values:
        command = values["command"]
        values["argv"] = tuple(command) if isinstance(command, list) else None
        values["command"] = command if isinstance(command, str) else None
    if "headers" in values:  # secret references live in their own map (schema v3)
        values["headers"], values["secret_headers"] = split_headers(values["headers"])
    if "body" in values:  # text stays text; a JSON object or array goes as JSON
        body = values["body"]
        values["json_body"] = None if isinstance(body, str) else body
        values["body"] = body if isinstance(body, str) else None
    for name in ("tags", "non_retryable_exit_codes"):
        if name in values:
            values[name] = tuple(dict.fromkeys(values[name]))
    for name in HOOK_NAMES:
        if isinstance(values.get(name), dict):
            values[name] = Hook(**values[name])
    spec = dataclasses.replace(base, **values) if base is not None else JobSpec(**values)
    if spec.type == "http" and spec.method is None:
        spec = dataclasses.replace(spec, method="GET")
    elif spec.type == "http" and spec.method is not None:
        spec = dataclasses.replace(spec, method=spec.method.upper())
    return spec
