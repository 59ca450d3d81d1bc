"""Request ids: a sane client id is kept, anything else is replaced by a uuid4."""

from __future__ import annotations

import re

import pytest

from api.request_ids import choose

UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


@pytest.mark.parametrize("sent", ["req-1", "abc.DEF_9:x/y+z=@", "a" * 128])
def test_a_sane_id_is_kept(sent: str) -> None:
    assert choose(sent) == sent


@pytest.mark.parametrize("sent", [None, "", "two words", "tab\there", "a" * 129, "é", 'q"uote'])
def test_anything_else_gets_a_fresh_uuid4(sent: str | None) -> None:
    chosen = choose(sent)
    assert UUID4.fullmatch(chosen) and chosen != sent
