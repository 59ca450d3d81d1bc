"""The ``chronolog`` command."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
import uvicorn
from tqdm import tqdm

from api.app import create_app
from chronolog import wiring
from chronolog.logs import configure_logging
from chronolog.settings import Settings, SettingsError, load_settings
from events.codec import EventCodec
from projector.replay import count_events, differences, replay

app = typer.Typer(help="Chronolog: an event-sourced job scheduler.", no_args_is_help=True)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Where embedded data lives [default: ./.chronolog]"),
]


def _settings(**overrides: Any) -> Settings:
    try:
        settings = load_settings(os.environ, **overrides)
    except SettingsError as e:
        typer.secho(f"error: {e}", err=True, fg="red")
        raise typer.Exit(2) from e
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _fail(message: str) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg="red")
    return typer.Exit(1)


@app.command()
def up(
    api_port: Annotated[
        int | None, typer.Option(help="API port [default: 8000]", min=1, max=65535)
    ] = None,
    api_host: Annotated[str | None, typer.Option(help="API address [default: 127.0.0.1]")] = None,
    data_dir: DataDir = None,
) -> None:
    """Run Chronolog (API and projector) on the embedded defaults. Data survives restarts."""
    settings = _settings(api_port=api_port, api_host=api_host, data_dir=data_dir)
    try:
        with wiring.projector_lock(settings):
            _serve(settings)
    except SettingsError as e:
        raise _fail(str(e)) from e


def _serve(settings: Settings) -> None:
    runtime = wiring.build_runtime(settings)
    stop = threading.Event()
    projector = wiring.start_projector(runtime, stop)
    config = uvicorn.Config(
        create_app(wiring.api_context(runtime)),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
    )
    typer.echo(
        f"Chronolog is up: API http://{settings.api_host}:{settings.api_port} "
        f"(docs at /docs), data in {settings.data_dir}"
    )
    try:
        GracefulServer(config).run()  # returns on SIGINT / SIGTERM
    finally:
        stop.set()
        projector.join(timeout=10)
        runtime.close()


class GracefulServer(uvicorn.Server):
    """Uvicorn re-raises SIGTERM after its shutdown, which would kill the process before
    the projector stops; here a signal only asks for a shutdown and the exit code is 0."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        def ask_to_exit(signum: int, _frame: FrameType | None) -> None:
            self.force_exit = self.should_exit  # a second signal: stop waiting
            self.should_exit = True

        previous = {sig: signal.signal(sig, ask_to_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


@app.command("projector")
def projector_command(
    data_dir: DataDir = None,
    batch_size: Annotated[int, typer.Option(help="Most events per transaction", min=1)] = 5000,
) -> None:
    """Run only the projector: keep the read models up to date with the log."""
    settings = _settings(data_dir=data_dir)
    try:
        with wiring.projector_lock(settings):
            runtime = wiring.build_runtime(settings)
            stop = threading.Event()
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, lambda *_: stop.set())
            typer.echo(f"Projector running on {settings.data_dir}")
            wiring.run_projector(runtime, stop, batch_size=batch_size)
            runtime.close()
    except SettingsError as e:
        raise _fail(str(e)) from e


@app.command("replay")
def replay_command(
    data_dir: DataDir = None,
    until: Annotated[
        datetime | None,
        typer.Option(help="Rebuild the state as it was at this time (UTC if naive)"),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Rebuild aside and compare with the live read model")
    ] = False,
) -> None:
    """Rebuild the read models from the event log (the recovery path)."""
    settings = _settings(data_dir=data_dir)
    if not settings.database.startswith("sqlite:///"):
        raise _fail("replay rebuilds embedded (sqlite:///) read models only in this version")
    try:
        with wiring.projector_lock(settings):
            _replay(settings, _aware(until), check)
    except SettingsError as e:
        raise _fail(str(e)) from e


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _replay(settings: Settings, until: datetime | None, check: bool) -> None:
    target = wiring.sqlite_path(settings.database)
    event_log = wiring.open_event_log(settings)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".replay-") as scratch:
        rebuilt = Path(scratch) / target.name
        engine = wiring.open_read_model(f"sqlite:///{rebuilt}")
        with tqdm(total=count_events(event_log), unit="event", desc="replay") as bar:

            def advance(applied: int) -> None:
                bar.update(applied)

            applied = replay(
                event_log, engine, EventCodec.default(), until=until, on_progress=advance
            )
        engine.dispose()
        event_log.close()
        if check:
            _compare(settings, rebuilt, applied)
            return
        _swap(rebuilt, target)
    typer.echo(f"Replayed {applied} events into {target}")


def _compare(settings: Settings, rebuilt: Path, applied: int) -> None:
    live = wiring.open_read_model(settings.database)
    fresh = wiring.open_read_model(f"sqlite:///{rebuilt}")
    found = differences(live, fresh)
    live.dispose()
    fresh.dispose()
    if found:
        typer.echo(f"Replayed {applied} events; the live read model differs:")
        for line in found:
            typer.echo(f"  {line}")
        raise typer.Exit(1)
    typer.echo(f"Replayed {applied} events; the live read model matches the log.")


def _swap(rebuilt: Path, target: Path) -> None:
    """Replace the read model file; its WAL files belong to the old one."""
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.move(rebuilt, target)


def main() -> None:
    app()
