"""What ``chronolog apply`` would change: the pure diff of the jobs in the code against
the registered ones.

A job in the code is compared field by field with the registered job, a field the code
leaves out with its default, so deleting ``retries=5`` from a decorator sets it back.
``enabled`` is compared only when the code gives it: pausing is an operator's act, and
applying the same code must not resume a job someone paused. Jobs applied from code
carry the marker tag; only registered jobs with it are pruned.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from events.model import JobSpec

DEFAULT_MARKER: Final = "from-code"

# Job fields as the API shows them, with their defaults (from the event model, so they
# follow it). Type-owned fields are compared only for their own type.
_API_ONLY: Final = {"command": None, "headers": None, "body": None}
_INTERNAL: Final = {"argv", "secret_headers", "json_body", "name", "type", "enabled"}
_TYPE_FIELDS: Final = {
    "function": "python",
    "pool": "python",
    "command": "shell",
    "url": "http",
    "method": "http",
    "headers": "http",
    "body": "http",
}


def _default(spec_field: dataclasses.Field[Any]) -> Any:
    if spec_field.default_factory is not dataclasses.MISSING:
        value = spec_field.default_factory()
    else:
        value = spec_field.default
    return list(value) if isinstance(value, tuple) else value


# What the API makes of a missing field, where that is not the event model's default.
_TYPE_DEFAULTS: Final = {"http": {"method": "GET"}}

DEFAULTS: Final[dict[str, Any]] = {
    **{f.name: _default(f) for f in dataclasses.fields(JobSpec) if f.name not in _INTERNAL},
    **_API_ONLY,
}


@dataclass(frozen=True, slots=True)
class Change:
    field: str
    registered: Any
    wanted: Any


@dataclass(frozen=True, slots=True)
class Update:
    name: str
    changes: tuple[Change, ...]

    @property
    def body(self) -> dict[str, Any]:
        """The ``PUT /api/jobs/{name}`` body: only what changes."""
        return {c.field: c.wanted for c in self.changes}


@dataclass(frozen=True, slots=True)
class Plan:
    create: list[dict[str, Any]] = field(default_factory=list)  # in dependency order
    update: list[Update] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    prune: list[str] = field(default_factory=list)  # registered with the marker, not in code

    @property
    def changes_anything(self) -> bool:
        return bool(self.create or self.update)


def with_marker(spec: Mapping[str, Any], marker: str) -> dict[str, Any]:
    """The spec as applied: its tags and the marker that says it came from code."""
    tags = list(dict.fromkeys([*(spec.get("tags") or []), marker]))
    return {**spec, "tags": tags}


def plan(
    wanted: Sequence[Mapping[str, Any]],
    registered: Iterable[Mapping[str, Any]],
    marker: str = DEFAULT_MARKER,
) -> Plan:
    """Compare ``wanted`` specs (API bodies) with ``registered`` jobs (API answers)."""
    current = {job["name"]: job for job in registered}
    result = Plan()
    for spec in (with_marker(s, marker) for s in wanted):
        job = current.get(spec["name"])
        if job is None:
            result.create.append(spec)
        elif changes := diff(spec, job):
            result.update.append(Update(spec["name"], changes))
        else:
            result.unchanged.append(spec["name"])
    names = {s["name"] for s in wanted}
    result.prune.extend(
        name for name, job in current.items() if marker in job.get("tags", ()) and name not in names
    )
    result.create[:] = dependency_order(result.create)
    return result


def diff(spec: Mapping[str, Any], job: Mapping[str, Any]) -> tuple[Change, ...]:
    """The fields whose registered value differs from what ``spec`` wants."""
    kind = spec.get("type", job.get("type"))
    defaults = {**DEFAULTS, **_TYPE_DEFAULTS.get(kind, {})}
    fields = [f for f in defaults if _TYPE_FIELDS.get(f, kind) == kind]
    fields += [f for f in spec if f not in defaults and f not in ("name", "type", "enabled")]
    changes = [
        Change(f, job.get(f), spec.get(f, defaults.get(f)))
        for f in dict.fromkeys(fields)
        if f in spec or f in job  # a field this API does not show is not compared
        if _differs(spec.get(f, defaults.get(f)), job.get(f))
    ]
    if kind != job.get("type"):
        changes.insert(0, Change("type", job.get("type"), kind))
    if "enabled" in spec and spec["enabled"] != job.get("enabled"):
        changes.append(Change("enabled", job.get("enabled"), spec["enabled"]))
    return tuple(changes)


def _differs(wanted: Any, registered: Any) -> bool:
    if isinstance(wanted, tuple):
        wanted = list(wanted)
    if {type(wanted), type(registered)} <= {type(None), dict, list} and wanted != registered:
        return bool(wanted or registered)  # None, {} and [] all mean "none"
    return bool(wanted != registered)


def dependency_order(specs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """New jobs after the new jobs they depend on (registered ones exist already)."""
    pending = {s["name"]: s for s in specs}
    ordered: list[dict[str, Any]] = []
    while pending:
        ready = [
            name
            for name, spec in pending.items()
            if not any(dep in pending and dep != name for dep in spec.get("depends_on", ()))
        ]
        if not ready:  # a cycle: the API refuses it, naming the cycle
            ready = list(pending)
        for name in ready:
            ordered.append(pending.pop(name))
    return ordered
