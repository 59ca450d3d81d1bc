"""Conversions between event dataclasses and the JSON the read model stores."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from events.model import JobSpec, Payload

_TUPLE_FIELDS = ("argv", "tags", "depends_on", "non_retryable_exit_codes")


def spec_to_json(spec: JobSpec) -> dict[str, Any]:
    return _jsonable(dataclasses.asdict(spec))  # type: ignore[no-any-return]


def spec_from_json(data: dict[str, Any]) -> JobSpec:
    values = dict(data)
    for name in _TUPLE_FIELDS:
        if values.get(name) is not None:
            values[name] = tuple(values[name])
    return JobSpec(**values)


def payload_to_json(payload: Payload) -> dict[str, Any]:
    """The payload as a JSON object for the audit index (datetimes as ISO-8601)."""
    return _jsonable(dataclasses.asdict(payload))  # type: ignore[no-any-return]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return value
