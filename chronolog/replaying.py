"""What ``chronolog replay`` does: rebuild, time travel and check, never over the present.

- no option: rebuild the embedded read model in place (into a fresh file, then swapped in),
  only while no other process projects into the data directory;
- ``--until T --into URL``: the state as it was at T, written into that separate, empty
  database (``--until`` alone is refused: it would overwrite the live read model);
- ``--check``: the live read model is read in one transaction, the log is replayed
  aside up to that snapshot's checkpoints and the two are compared, so it works while
  Chronolog runs and its projector moves on.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import typer
from sqlalchemy import Engine
from tqdm import tqdm

from chronolog import wiring
from chronolog.settings import Settings
from events.codec import EventCodec
from events.errors import ChronologError
from projector.replay import Tables, checkpoints, compare, count_events, is_empty, replay, snapshot


class ReplayRefused(ChronologError):
    """A replay that would destroy or misreport the present; the message says what to do."""


def refusal(*, until: bool, check: bool, into: bool, embedded_read_model: bool) -> str | None:
    """Why this combination of options is refused, or None (a pure decision)."""
    if until and check:
        return (
            "--check compares the live read model with the log; --until builds a past "
            "state: give one or the other"
        )
    if until and not into:
        return (
            "--until never overwrites the live read model: write the past into a separate "
            "database with --into sqlite:///past.db (or the URL of an empty PostgreSQL "
            "database, postgresql+psycopg://…)"
        )
    if not into and not check and not embedded_read_model:
        return (
            "a PostgreSQL read model is not rebuilt in place while projectors may write "
            "to it: replay into an empty database with --into URL, then point "
            "CHRONOLOG_DATABASE_URL at it (add --check to compare with the live one)"
        )
    return None


def replay_into(settings: Settings, url: str, until: datetime | None, check: bool) -> None:
    """Replay into the empty database at ``url`` (the past with ``until``)."""
    live = _live_snapshot(settings) if check else None
    engine = wiring.open_read_model(url, upgrade=True)
    try:
        if not is_empty(engine):
            raise ReplayRefused(f"--into {url} already holds a read model: give an empty database")
        upto = None if live is None else checkpoints(live)
        applied = _replay_with_progress(settings, engine, until, upto)
        if live is not None:
            _report_differences(live, engine, applied)
            return
    finally:
        engine.dispose()
    typer.echo(f"Replayed {applied} events into {url}")


def check_aside(settings: Settings) -> None:
    """Compare the live read model with the log, replayed into a scratch SQLite file."""
    live = _live_snapshot(settings)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.data_dir, prefix=".replay-check-") as scratch:
        engine = wiring.open_read_model(f"sqlite:///{Path(scratch) / 'readmodel.db'}")
        try:
            applied = _replay_with_progress(settings, engine, None, checkpoints(live))
            _report_differences(live, engine, applied)
        finally:
            engine.dispose()


def rebuild_in_place(settings: Settings) -> None:
    """Rebuild the embedded read model into a fresh file and swap it in.

    The caller holds the projector lock: no running Chronolog reads a swapped file.
    """
    target = wiring.sqlite_path(settings.database)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".replay-") as scratch:
        rebuilt = Path(scratch) / target.name
        engine = wiring.open_read_model(f"sqlite:///{rebuilt}")
        try:
            applied = _replay_with_progress(settings, engine, None, None)
        finally:
            engine.dispose()
        _swap(rebuilt, target)
    typer.echo(f"Replayed {applied} events into {target}")


def _live_snapshot(settings: Settings) -> Tables:
    """The live read model, read in one transaction; never created or migrated here."""
    url = settings.database
    if url.startswith("sqlite:///") and not wiring.sqlite_path(url).exists():
        raise ReplayRefused(
            f"there is no read model at {wiring.sqlite_path(url)} to check: "
            "`chronolog replay` rebuilds it from the log"
        )
    engine = wiring.open_read_model(url, upgrade=False)
    try:
        return snapshot(engine)
    finally:
        engine.dispose()


def _replay_with_progress(
    settings: Settings, engine: Engine, until: datetime | None, upto: Mapping[int, int] | None
) -> int:
    event_log = wiring.open_event_log(settings)
    try:
        with tqdm(total=count_events(event_log, upto), unit="event", desc="replay") as bar:

            def advance(applied: int) -> None:
                bar.update(applied)

            return replay(
                event_log,
                engine,
                EventCodec.default(),
                until=until,
                upto=upto,
                on_progress=advance,
            )
    finally:
        event_log.close()


def _report_differences(live: Tables, fresh: Engine, applied: int) -> None:
    found = compare(live, snapshot(fresh))
    if found:
        typer.echo(f"Replayed {applied} events; the live read model differs:")
        for line in found:
            typer.echo(f"  {line}")
        raise typer.Exit(1)
    typer.echo(
        f"Replayed {applied} events up to the live read model's checkpoints; "
        "the live read model matches the log."
    )


def _swap(rebuilt: Path, target: Path) -> None:
    """Replace the read model file; its WAL files belong to the old one."""
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.move(rebuilt, target)
