"""Text for the job page: trigger parameters read from a textarea, event summaries."""

from __future__ import annotations

import json
from typing import Any, Final

SUMMARY_VALUE_CHARS: Final = 60
SUMMARY_CHARS: Final = 200
# Output is long and has its own place (the run page); a spec is shown by its name.
_SKIPPED: Final = frozenset({"stdout", "stderr"})


def parse_parameters(text: str | None) -> tuple[dict[str, Any] | None, str | None]:
    """Trigger parameters from the textarea: ``({...}, None)`` or ``(None, reason)``.
    Blank is no parameters (the job's own)."""
    if not text or not text.strip():
        return {}, None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        return None, f"parameters: not valid JSON ({e.msg} at line {e.lineno} column {e.colno})"
    if not isinstance(value, dict):
        return None, f"parameters: must be a JSON object ({{...}}), not {type(value).__name__}"
    return value, None


def payload_summary(payload: dict[str, Any]) -> str:
    """``trigger=manual, parameters={"day": 1}``: the fields that say something, cut short."""
    parts = [
        f"{name}={_value(name, value)}"
        for name, value in payload.items()
        if name not in _SKIPPED and value not in (None, "", [], {})
    ]
    text = ", ".join(parts)
    return text if len(text) <= SUMMARY_CHARS else text[: SUMMARY_CHARS - 1] + "…"


def _value(name: str, value: Any) -> str:
    if name == "spec" and isinstance(value, dict):
        schedule = value.get("schedule") or "no schedule"
        return f"{value.get('type')} job {value.get('name')!r} ({schedule})"
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= SUMMARY_VALUE_CHARS else text[: SUMMARY_VALUE_CHARS - 1] + "…"
