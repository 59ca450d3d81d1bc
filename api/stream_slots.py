"""A per-process count of open live-output streams, with a limit."""

from __future__ import annotations

import threading


class StreamSlots:
    """Counts open streams; ``take`` refuses past ``limit``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open = 0

    @property
    def open(self) -> int:
        return self._open

    def take(self, limit: int) -> bool:
        """Count one more open stream, unless ``limit`` are open already."""
        with self._lock:
            if self._open >= limit:
                return False
            self._open += 1
            return True

    def give_back(self) -> None:
        with self._lock:
            self._open -= 1
