"""The rows of one table a batch touches: loaded once, folded in memory, written once."""

from __future__ import annotations

import dataclasses
import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeAlias, TypeVar

R = TypeVar("R")


@dataclass(frozen=True)
class Changes(Generic[R]):
    """What a batch does to one table: rows to write in place, keys whose row is gone.

    ``before`` holds the touched rows as they were loaded (key -> row), so a writer can
    leave alone the dependent rows (attempts, tags) that did not change.
    """

    live: list[R] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    before: dict[str, R] = field(default_factory=dict)


class Fold(Generic[R]):
    """The rows of one table a batch touches: loaded once, folded in memory, written once."""

    def __init__(self, loaded: dict[str, R]) -> None:
        self._loaded = loaded
        self._rows: dict[str, R | None] = dict(loaded)
        self._touched: dict[str, None] = {}  # insertion-ordered set

    def get(self, key: str) -> R | None:
        return self._rows.get(key)

    def put(self, key: str, row: R | None) -> None:
        self._rows[key] = row
        self._touched[key] = None

    def changes(self) -> Changes[R]:
        """Touched rows still alive, touched keys that were loaded and are now gone."""
        live = [row for key in self._touched if (row := self._rows[key]) is not None]
        gone = [k for k in self._touched if self._rows[k] is None and k in self._loaded]
        before = {k: row for k in self._touched if (row := self._loaded.get(k)) is not None}
        return Changes(live, gone, before)


D = TypeVar("D")
# Reads every field at once; stores one field into a fresh instance, per field; name -> index.
_CopyPlan: TypeAlias = tuple[
    Callable[[Any], tuple[Any, ...]], tuple[Callable[[Any, Any], None], ...], dict[str, int]
]


def evolve(row: D, **changes: Any) -> D:
    """``dataclasses.replace(row, **changes)`` for the projection's frozen, slotted rows,
    at a third of its cost: the fold copies a 31-field run row on every run event.

    The copy is made field by field through the slots' own descriptors (no ``__init__``:
    these classes validate nothing and have no ``__post_init__``); an unknown field
    name raises ``TypeError`` as ``replace`` does.
    """
    cls: type = type(row)
    getter, setters, index = _copy_plan(cls)
    values = list(getter(row))
    for name, value in changes.items():
        position = index.get(name)
        if position is None:
            raise TypeError(f"{cls.__name__} has no field {name!r}")
        values[position] = value
    new: D = object.__new__(cls)
    for store, value in zip(setters, values, strict=True):
        store(new, value)
    return new


@functools.cache
def _copy_plan(cls: type) -> _CopyPlan:
    if not dataclasses.is_dataclass(cls) or hasattr(cls, "__post_init__"):
        raise TypeError(f"evolve copies plain dataclasses only, not {cls.__name__}")
    names = tuple(f.name for f in dataclasses.fields(cls))
    if getattr(cls, "__slots__", None) is None:
        raise TypeError(f"evolve copies slotted dataclasses only, not {cls.__name__}")
    setters = tuple(getattr(cls, name).__set__ for name in names)
    get = operator.attrgetter(*names)
    getter = get if len(names) > 1 else (lambda row: (get(row),))
    return getter, setters, {name: i for i, name in enumerate(names)}
