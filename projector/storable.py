"""What the read model can hold, and a stand-in for what it cannot.

One rule for every backend, the strictest of them, so that a log projects the same
into SQLite and PostgreSQL and the API refuses exactly what the projector could not
store:

- integers within signed 64 bits: orjson, which writes the JSON columns, refuses
  anything past 64 bits, and BIGINT columns are signed;
- finite floats: orjson writes NaN and Infinity as ``null``, so the value would change;
- text that is Unicode without NUL: PostgreSQL refuses ``\\u0000`` in text and jsonb,
  and a lone surrogate (``"\\ud800"``) cannot be encoded as UTF-8 at all;
- nesting at most ``max_depth`` levels: orjson stops at 255.

Pure functions over plain values and frozen dataclasses (events, job specs).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
MAX_DEPTH: Final = 64
_OUT_OF_RANGE: Final = "integer outside the signed 64-bit range (-2**63 .. 2**63-1)"
_TOO_DEEP: Final = "nested too deep"
_NOT_FINITE: Final = "{} is not a finite number (no NaN, Infinity, or beyond 64 bits: 1e400)"


@dataclass(frozen=True, slots=True)
class Unstorable:
    """Where in a value the read model cannot follow, and why."""

    path: str  # "x.y[2]" below the value given, "" for the value itself
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}" if self.path else self.reason


def find_unstorable(value: object, *, max_depth: int = MAX_DEPTH) -> Unstorable | None:
    """The first part of ``value`` the read model cannot store unchanged, or None."""
    if _is_dataclass_instance(value) and _fields_fine(value, max_depth):
        return None
    found = _walk(value, max_depth)
    if found is None:
        return None
    where, reason = found
    if reason is _TOO_DEEP:
        reason = f"nested deeper than {max_depth} levels"
    return Unstorable("".join(reversed(where)).lstrip("."), reason)


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored, or None."""
    if "\x00" in text:
        return "contains the NUL character (\\u0000), which PostgreSQL cannot store"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            return f"contains a lone surrogate ({ascii(e.object[e.start])[1:-1]}), not Unicode text"
    return None


# The walk runs on every projected event: the path is built only for a problem found,
# on the way back up (segments in reverse order).
_Found = tuple[list[str], str]


def _walk(value: object, depth: int) -> _Found | None:
    kind = type(value)
    if kind is str:
        reason = text_problem(value)  # type: ignore[arg-type]
        return None if reason is None else ([], reason)
    if kind is int or kind is float or kind is bool or value is None:
        reason = _number_problem(value)
        return None if reason is None else ([], reason)
    if depth <= 0:
        return [], _TOO_DEEP
    return _walk_container(value, depth - 1)


def _is_dataclass_instance(value: object) -> bool:
    return hasattr(type(value), "__dataclass_fields__")


def _fields_fine(value: object, depth: int) -> bool:
    """True when ``_walk(value, depth)`` of this dataclass would find nothing; False when
    it might (the walk then finds what and where). One loop over the fields, read all
    at once, and one text check over all of them joined: events are mostly short text,
    small integers and datetimes, and this runs on every one. (Joining cannot hide a
    problem, nor make one: NUL stays NUL, and a surrogate never encodes, paired or not.)"""
    if depth <= 0:
        return False
    inner = depth - 1
    texts: list[str] = []
    cls: type = type(value)
    for item in _field_reader(cls)(value):
        kind = type(item)
        if kind is str:
            texts.append(item)
        elif kind is int:
            if not INT64_MIN <= item <= INT64_MAX:
                return False
        elif item is not None and kind is not bool and not _other_fine(item, kind, inner, texts):
            return False
    return text_problem("".join(texts)) is None


def _other_fine(item: Any, kind: type, depth: int, texts: list[str]) -> bool:
    """``_fields_fine`` for a field that is not text, an integer, a bool or None; a
    tuple of texts joins ``texts``."""
    if kind is float:
        return math.isfinite(item)
    if kind is datetime:
        return depth > 0  # the walk counts a datetime as one more level
    if kind is tuple and depth > 0 and all(type(x) is str for x in item):
        texts.extend(item)
        return True
    if hasattr(kind, "__dataclass_fields__"):
        return _fields_fine(item, depth)
    return _walk(item, depth) is None


@functools.cache
def _field_reader(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    """All of an instance's fields in one call."""
    names = _field_names(cls)
    if len(names) > 1:
        return operator.attrgetter(*names)
    return lambda value: tuple(getattr(value, name) for name in names)


def _walk_container(value: object, depth: int) -> _Found | None:
    if isinstance(value, dict):
        return _walk_items(value, depth)
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            if (found := _walk(item, depth)) is not None:
                found[0].append(f"[{index}]")
                return found
        return None
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for name in _field_names(type(value)):
            if (found := _walk(getattr(value, name), depth)) is not None:
                found[0].append(f".{name}")
                return found
        return None
    reason = _scalar_problem(value)
    return None if reason is None else ([], reason)


def _walk_items(mapping: dict[Any, Any], depth: int) -> _Found | None:
    for key, item in mapping.items():
        if not isinstance(key, str):
            return [], f"key {key!r} is not a string"
        if (reason := text_problem(key)) is not None:
            return [f".{key!a}"], f"the key {reason}"
        if (found := _walk(item, depth)) is not None:
            found[0].append(f".{key}")
            return found
    return None


def _number_problem(value: object) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return _NOT_FINITE.format(value)
    if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
        return _OUT_OF_RANGE
    return None


def _scalar_problem(value: object) -> str | None:
    """Problems of scalars that are not exactly str, int, float, bool or None."""
    if isinstance(value, datetime):
        return None
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, int | float):
        return _number_problem(value)
    return f"a {type(value).__name__} is not a JSON value"


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls))


# --- stand-ins --------------------------------------------------------------------


def storable_copy(value: object, *, max_depth: int = MAX_DEPTH) -> Any:
    """``value`` as JSON the read model can hold: what cannot be stored becomes text.

    For the audit trail of an event that could not be projected: the record of what it
    said must not fail the way the event did.
    """
    return _copy(value, 0, max_depth)


def _copy(value: object, depth: int, max_depth: int) -> Any:
    convert = _SCALARS.get(type(value))
    if convert is not None:
        return convert(value)
    if depth >= max_depth:
        return f"<nested deeper than {max_depth} levels>"
    if isinstance(value, dict):
        return {safe_text(str(k)): _copy(v, depth + 1, max_depth) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(item, depth + 1, max_depth) for item in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            n: _copy(getattr(value, n), depth + 1, max_depth) for n in _field_names(type(value))
        }
    return safe_text(repr(value))


def safe_text(text: str, limit: int | None = None) -> str:
    """``text`` with NUL and lone surrogates written as escapes, cut to ``limit``."""
    if text_problem(text) is not None:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\u0000")
    if limit is not None and len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def _int(value: int) -> int | str:
    if INT64_MIN <= value <= INT64_MAX:
        return value
    try:
        return str(value)
    except ValueError:  # more digits than Python agrees to print
        return f"<integer of {value.bit_length()} bits>"


def _float(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _same(value: Any) -> Any:
    return value


_SCALARS: Final[dict[type, Callable[[Any], Any]]] = {
    type(None): _same,
    bool: _same,
    str: safe_text,
    int: _int,
    float: _float,
    datetime: datetime.isoformat,
}
