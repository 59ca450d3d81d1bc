"""The rows of one table a batch touches: loaded once, folded in memory, written once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

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
