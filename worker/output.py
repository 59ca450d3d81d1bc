"""Capped capture of a job's stdout and stderr: keep the tail, say how much was dropped.

A stream keeps at most ``OUTPUT_LIMIT`` bytes (its tail). Truncated text starts with a
marker such as ``[... 123456 bytes truncated ...]\\n``. Bytes are decoded as UTF-8 with
replacement, so any output becomes text an event can carry. An error message keeps at
most ``ERROR_LIMIT`` bytes: its head (what went wrong) and its tail, around the marker.
"""

from __future__ import annotations

from collections.abc import Callable

from worker.execution import OUTPUT_LIMIT

ERROR_LIMIT = 8 * 1024  # bytes of an error message kept, the marker included
_MARKER_ROOM = 64  # bytes set aside for the marker: it names a count of at most 20 digits
_UTF8_CONTINUATION_MAX = 3  # a UTF-8 character has at most three continuation bytes


def truncation_marker(dropped: int) -> str:
    """The line that replaces ``dropped`` bytes cut from the start of a stream."""
    return f"[... {dropped} bytes truncated ...]\n"


def decode_tail(tail: bytes, dropped: int) -> str:
    """Decode the kept ``tail`` of a stream from which ``dropped`` leading bytes were cut."""
    if dropped == 0:
        return tail.decode("utf-8", "replace")
    skip = _partial_character_length(tail)
    return truncation_marker(dropped + skip) + tail[skip:].decode("utf-8", "replace")


def cap_tail(data: bytes, limit: int = OUTPUT_LIMIT) -> str:
    """Keep the last ``limit`` bytes of ``data`` as text, marked if anything was cut."""
    _check_limit(limit)
    dropped = max(0, len(data) - limit)
    return decode_tail(data[dropped:], dropped)


def cap_middle(text: str, limit: int = ERROR_LIMIT) -> str:
    """``text`` if it has at most ``limit`` UTF-8 bytes, else its head and tail around a marker.

    The result never exceeds ``limit`` bytes; ``limit`` must leave room for the marker.
    """
    if limit <= _MARKER_ROOM:
        raise ValueError(f"error limit must exceed {_MARKER_ROOM} bytes, got {limit}")
    data = text.encode("utf-8", "replace")  # a lone surrogate becomes "?"
    if len(data) <= limit:
        return text
    keep = limit - _MARKER_ROOM
    head = data[: keep // 2].decode("utf-8", "ignore")  # drops a character cut in half
    tail_start = len(data) - (keep - keep // 2)
    tail = data[tail_start:]
    skip = _partial_character_length(tail)
    dropped = tail_start + skip - len(head.encode())
    return head + "\n" + truncation_marker(dropped) + tail[skip:].decode("utf-8", "replace")


class TailBuffer:
    """Collects a stream chunk by chunk, holding on to no more than about twice ``limit``.

    ``listener``, if given, also gets every chunk as it arrives (live output).
    """

    __slots__ = ("_data", "limit", "listener", "total")

    def __init__(
        self, limit: int = OUTPUT_LIMIT, listener: Callable[[bytes], None] | None = None
    ) -> None:
        _check_limit(limit)
        self.limit = limit
        self.total = 0
        self.listener = listener
        self._data = bytearray()

    def feed(self, chunk: bytes) -> None:
        """Append ``chunk``; older bytes beyond the limit are dropped."""
        if self.listener is not None:
            self.listener(chunk)
        self.total += len(chunk)
        if len(chunk) >= self.limit:
            self._data[:] = chunk[-self.limit :]
            return
        self._data += chunk
        if len(self._data) > 2 * self.limit:  # trim in bulk: amortised O(1) per byte
            del self._data[: len(self._data) - self.limit]

    @property
    def dropped(self) -> int:
        """How many bytes from the start of the stream are no longer kept."""
        return self.total - min(len(self._data), self.limit)

    def text(self) -> str:
        """The kept tail as text, with the truncation marker if bytes were dropped."""
        return decode_tail(bytes(self._data[-self.limit :]), self.dropped)


def _partial_character_length(tail: bytes) -> int:
    # A cut can land inside a multi-byte character; skip its orphaned continuation bytes
    # so the text starts with a whole character instead of a replacement sign.
    count = 0
    while count < min(len(tail), _UTF8_CONTINUATION_MAX) and 0x80 <= tail[count] <= 0xBF:
        count += 1
    return count


def _check_limit(limit: int) -> None:
    if limit <= 0:
        raise ValueError(f"output limit must be positive, got {limit}")
