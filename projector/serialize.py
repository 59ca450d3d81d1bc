"""Conversions between event dataclasses and the JSON the read model stores.

Writing needs no code here: the engine's JSON serialiser (orjson) writes dataclasses,
tuples and datetimes itself. Reading a job spec back needs its tuples restored.
"""

from __future__ import annotations

from typing import Any

from events.model import JobSpec

_TUPLE_FIELDS = ("argv", "tags", "depends_on", "non_retryable_exit_codes")


def spec_from_json(data: dict[str, Any]) -> JobSpec:
    values = dict(data)
    for name in _TUPLE_FIELDS:
        if values.get(name) is not None:
            values[name] = tuple(values[name])
    return JobSpec(**values)
