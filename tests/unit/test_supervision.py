"""The restart decision of ``chronolog up``'s supervisor (``chronolog.supervision``)."""

from __future__ import annotations

import pytest

from chronolog.supervision import Backoff, describe_exit, restart_delay

BACKOFF = Backoff(initial=0.5, maximum=30.0, stable_after=60.0)


@pytest.mark.parametrize(
    ("uptime", "quick_deaths", "expected"),
    [
        (0.1, 0, (0.5, 1)),  # the first death: the initial delay
        (0.1, 1, (1.0, 2)),  # each quick death in a row doubles it
        (5.0, 2, (2.0, 3)),
        (0.1, 5, (16.0, 6)),
        (0.1, 6, (30.0, 7)),  # capped
        (0.1, 500, (30.0, 501)),  # no overflow however long it keeps dying
        (60.0, 6, (0.5, 1)),  # up long enough: recovered, so back to the initial delay
        (3600.0, 0, (0.5, 1)),
    ],
)
def test_restart_delay_doubles_per_quick_death_up_to_the_cap_and_resets_after_a_stable_run(
    uptime: float, quick_deaths: int, expected: tuple[float, int]
) -> None:
    assert restart_delay(BACKOFF, uptime, quick_deaths) == expected


@pytest.mark.parametrize(
    ("returncode", "text"),
    [
        (-9, "killed by SIGKILL"),
        (-15, "killed by SIGTERM"),
        (1, "exited with code 1"),
        (0, "exited with code 0"),
        (-200, "killed by signal 200"),
    ],
)
def test_an_exit_is_described_by_its_signal_or_code(returncode: int, text: str) -> None:
    assert describe_exit(returncode) == text
