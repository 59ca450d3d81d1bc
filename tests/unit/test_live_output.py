"""Live output's wire formats: channel messages, their merging, and server-sent events."""

from __future__ import annotations

import pytest

from api.live_output import LineBuffer, sse
from events.errors import MalformedEvent
from leases.dispatch import OUTPUT_END, decode_output, encode_output
from worker.live_output import MAX_MESSAGE, _merged


def test_output_messages_round_trip_and_the_end_marker_decodes_to_none() -> None:
    assert decode_output(encode_output("stdout", b"hi\n")) == ("stdout", b"hi\n")
    assert decode_output(encode_output("stderr", b"")) == ("stderr", b"")
    assert decode_output(OUTPUT_END) is None
    with pytest.raises(MalformedEvent):
        decode_output(b"xjunk")


def test_chunks_merge_per_run_and_stream_in_order_and_never_past_the_cap() -> None:
    items = [
        ("r1", "stdout", b"a"),
        ("r1", "stdout", b"b"),
        ("r2", "stdout", b"c"),
        ("r1", "stderr", b"d"),
        ("r1", "stderr", b"e"),
        ("r1", "", b""),
        ("r1", "stdout", b"x" * MAX_MESSAGE),
        ("r1", "stdout", b"y"),
    ]
    assert _merged(items) == [
        ("r1", b"oab"),
        ("r2", b"oc"),
        ("r1", b"ede"),
        ("r1", OUTPUT_END),
        ("r1", b"o" + b"x" * MAX_MESSAGE),
        ("r1", b"oy"),
    ]


@pytest.mark.parametrize(
    ("text", "wire"),
    [
        ("one line", "event: stdout\ndata: one line\n\n"),
        # a newline ends its line: no empty data line after it
        ("a\nb\n", "event: stdout\ndata: a\ndata: b\n\n"),
        ("one line\n", "event: stdout\ndata: one line\n\n"),
        # real empty lines stay
        ("a\n\nb\n", "event: stdout\ndata: a\ndata: \ndata: b\n\n"),
        ("\n", "event: stdout\ndata: \n\n"),
        ("a\n\n", "event: stdout\ndata: a\ndata: \n\n"),
    ],
)
def test_server_sent_events_carry_every_line_and_no_more(text: str, wire: str) -> None:
    assert sse("stdout", text) == wire


def test_line_buffer_hands_out_whole_lines_and_keeps_the_unfinished_one() -> None:
    buffer = LineBuffer()
    assert buffer.feed(b"progress 1") == ""
    assert buffer.feed(b"0%\nnext") == "progress 10%\n"
    assert buffer.feed(b" line\n\n") == "next line\n\n"
    assert buffer.feed("caf\u00e9".encode()[:-1]) == ""  # half a UTF-8 character
    assert buffer.feed("caf\u00e9".encode()[-1:] + b"\n") == "caf\u00e9\n"
    assert buffer.feed(b"tail") == ""
    assert buffer.flush() == "tail"
    assert buffer.flush() == ""
