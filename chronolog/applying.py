"""``chronolog apply``: show what the code's jobs change against the registered ones,
then make those changes through the API (``chronolog.client``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from chronolog.apply_plan import Plan, plan
from chronolog.client import Client

Echo = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Applied:
    created: int = 0
    updated: int = 0
    deleted: int = 0


def fetch_plan(client: Client, wanted: Sequence[dict[str, Any]], marker: str) -> Plan:
    registered = [job.model_dump(mode="json") for job in client.all_jobs()]
    return plan(wanted, registered, marker)


def describe(result: Plan, prune: bool) -> list[str]:
    """One line per job: ``+`` create, ``~`` update (with each change), ``=`` unchanged,
    ``-`` deleted by ``--prune`` (or kept without it), and a summary."""
    lines = [f"+ create {spec['name']}" for spec in result.create]
    for update in result.update:
        lines.append(f"~ update {update.name}")
        lines += [
            f"    {c.field}: {_show(c.registered)} -> {_show(c.wanted)}" for c in update.changes
        ]
    lines += [f"= unchanged {name}" for name in result.unchanged]
    if prune:
        lines += [f"- delete {name} (no longer in the code)" for name in result.prune]
    else:
        lines += [
            f"  keep {name} (no longer in the code; --prune deletes it)" for name in result.prune
        ]
    pruned = len(result.prune) if prune else 0
    lines.append(
        f"{len(result.create)} to create, {len(result.update)} to update, "
        f"{len(result.unchanged)} unchanged, {pruned} to delete"
    )
    return lines


def execute(client: Client, result: Plan, prune: bool, echo: Echo) -> Applied:
    """Create, then update, then delete: a new job exists before a changed one depends on
    it, and a pruned one is deleted after its dependents moved off it."""
    for spec in result.create:
        job = client.create_job(spec)
        echo(f"created {job.name} ({job.id})")
    for update in result.update:
        client.update_job(update.name, update.body)
        echo(f"updated {update.name}: {', '.join(c.field for c in update.changes)}")
    pruned = result.prune if prune else []
    for name in pruned:
        client.delete_job(name)
        echo(f"deleted {name}")
    return Applied(len(result.create), len(result.update), len(pruned))


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
