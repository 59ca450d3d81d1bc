"""Capped output: the tail is kept, the cut is marked, any bytes become text."""

from __future__ import annotations

import pytest

from worker.execution import OUTPUT_LIMIT
from worker.output import (
    ERROR_LIMIT,
    TailBuffer,
    cap_middle,
    cap_tail,
    decode_tail,
    truncation_marker,
)


def test_short_output_is_kept_whole_without_marker() -> None:
    assert cap_tail(b"hello\n") == "hello\n"


def test_output_at_the_limit_is_not_truncated() -> None:
    assert cap_tail(b"x" * 10, limit=10) == "x" * 10


def test_long_output_keeps_the_tail_after_a_marker() -> None:
    text = cap_tail(b"0123456789abcdef", limit=6)
    assert text == "[... 10 bytes truncated ...]\n" + "abcdef"


def test_marker_names_the_number_of_dropped_bytes() -> None:
    assert truncation_marker(123456) == "[... 123456 bytes truncated ...]\n"


def test_default_limit_is_64_kib() -> None:
    text = cap_tail(b"a" * (OUTPUT_LIMIT + 5) + b"END")
    assert text.startswith(truncation_marker(8))
    assert text.endswith("END")
    assert len(text) == len(truncation_marker(8)) + OUTPUT_LIMIT


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert cap_tail(b"ok \xff\xfe done") == "ok \ufffd\ufffd done"


def test_a_cut_inside_a_character_skips_its_orphaned_bytes() -> None:
    data = "é".encode() * 4  # two bytes each
    text = cap_tail(data, limit=5)  # keeps one continuation byte, then two whole characters
    assert text == truncation_marker(4) + "éé"


def test_decode_tail_without_drop_keeps_leading_continuation_bytes_visible() -> None:
    assert decode_tail(b"\xa9x", 0) == "\ufffdx"


@pytest.mark.parametrize("limit", [0, -1])
def test_limit_must_be_positive(limit: int) -> None:
    with pytest.raises(ValueError, match="positive"):
        TailBuffer(limit)
    with pytest.raises(ValueError, match="positive"):
        cap_tail(b"x", limit)


def test_buffer_equals_cap_tail_of_everything_fed() -> None:
    chunks = [bytes([65 + i % 26]) * (i * 7 % 50 + 1) for i in range(400)]
    buffer = TailBuffer(limit=100)
    for chunk in chunks:
        buffer.feed(chunk)
    everything = b"".join(chunks)
    assert buffer.total == len(everything)
    assert buffer.dropped == len(everything) - 100
    assert buffer.text() == cap_tail(everything, limit=100)


def test_buffer_memory_stays_bounded() -> None:
    buffer = TailBuffer(limit=1000)
    for _ in range(10_000):
        buffer.feed(b"y" * 99)
    assert len(buffer._data) <= 2 * 1000


def test_a_chunk_larger_than_the_limit_replaces_the_buffer() -> None:
    buffer = TailBuffer(limit=4)
    buffer.feed(b"ab")
    buffer.feed(b"0123456789")
    assert buffer.text() == truncation_marker(8) + "6789"


def test_empty_buffer_is_empty_text() -> None:
    buffer = TailBuffer()
    assert (buffer.text(), buffer.total, buffer.dropped) == ("", 0, 0)


def test_an_error_within_the_limit_is_kept_whole() -> None:
    assert cap_middle("x" * ERROR_LIMIT) == "x" * ERROR_LIMIT


def test_a_long_error_keeps_head_and_tail_around_a_marker() -> None:
    text = "HEAD" + "x" * 20_000_000 + "TAIL"
    capped = cap_middle(text)
    assert capped.startswith("HEADxxx")
    assert capped.endswith("xxxTAIL")
    assert len(capped.encode()) <= ERROR_LIMIT
    head, marker, tail = capped.split("\n")
    kept = len(head) + len(tail)
    assert marker == truncation_marker(len(text) - kept).rstrip("\n")


@pytest.mark.parametrize("limit", [100, 101, 1000])
def test_a_capped_error_never_cuts_a_character(limit: int) -> None:
    capped = cap_middle("é" * 1000, limit=limit)
    assert "\ufffd" not in capped
    head, marker, tail = capped.split("\n")
    assert set(head + tail) == {"é"}
    assert marker == truncation_marker(2 * (1000 - len(head) - len(tail))).rstrip("\n")
    assert len(capped.encode()) <= limit


def test_an_error_limit_without_room_for_the_marker_is_refused() -> None:
    with pytest.raises(ValueError, match="error limit"):
        cap_middle("x", limit=64)
