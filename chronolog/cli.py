"""The ``chronolog`` command."""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from tqdm import tqdm

from chronolog import roles, wiring
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


Concurrency = Annotated[int, typer.Option(help="Runs one worker process executes at once", min=1)]


@app.command()
def up(
    api_port: Annotated[
        int | None, typer.Option(help="API port [default: 8000]", min=1, max=65535)
    ] = None,
    api_host: Annotated[str | None, typer.Option(help="API address [default: 127.0.0.1]")] = None,
    data_dir: DataDir = None,
    workers: Annotated[int, typer.Option(help="Worker processes to start", min=0)] = 1,
    concurrency: Concurrency = 4,
    scheduler: Annotated[
        bool, typer.Option("--scheduler/--no-scheduler", help="Run a scheduler in this process")
    ] = True,
) -> None:
    """Run all of Chronolog on the embedded defaults: API, projector, scheduler, workers."""
    settings = _settings(api_port=api_port, api_host=api_host, data_dir=data_dir)
    try:
        with wiring.projector_lock(settings):
            typer.echo(
                f"Chronolog is up: API http://{settings.api_host}:{settings.api_port} "
                f"(docs at /docs), data in {settings.data_dir}"
            )
            roles.serve(
                settings,
                projector=True,
                scheduler=scheduler,
                workers=workers,
                concurrency=concurrency,
            )
    except SettingsError as e:
        raise _fail(str(e)) from e


@app.command("api")
def api_command(
    api_port: Annotated[
        int | None, typer.Option(help="API port [default: 8000]", min=1, max=65535)
    ] = None,
    api_host: Annotated[str | None, typer.Option(help="API address [default: 127.0.0.1]")] = None,
    data_dir: DataDir = None,
) -> None:
    """Run only the API (a projector must run elsewhere for writes to become visible)."""
    settings = _settings(api_port=api_port, api_host=api_host, data_dir=data_dir)
    typer.echo(f"Chronolog API on http://{settings.api_host}:{settings.api_port}")
    roles.serve(settings, projector=False, scheduler=False, workers=0, concurrency=1)


@app.command("scheduler")
def scheduler_command(data_dir: DataDir = None) -> None:
    """Run a scheduler; of several, one leads and the others stand by."""
    settings = _settings(data_dir=data_dir)
    runtime = wiring.build_runtime(settings)
    scheduler = roles.scheduler_role(runtime)
    typer.echo(f"Scheduler {scheduler.config.node_id} running on {settings.data_dir}")
    scheduler.run(roles.stop_on_signals())
    runtime.close()


@app.command("worker")
def worker_command(
    tags: Annotated[str, typer.Option(help="Comma-separated queues to take runs from")] = "default",
    concurrency: Concurrency = 1,
    worker_id: Annotated[
        str | None, typer.Option("--id", help="Worker id [default: random]")
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Run a worker: take runs from the queues named by --tags and execute them."""
    settings = _settings(data_dir=data_dir)
    queues = [tag.strip() for tag in tags.split(",") if tag.strip()]
    if not queues:
        raise _fail("--tags needs at least one queue name, e.g. --tags default")
    roles.run_worker(settings, queues, concurrency, worker_id, announce=typer.echo)


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
            typer.echo(f"Projector running on {settings.data_dir}")
            wiring.run_projector(runtime, roles.stop_on_signals(), batch_size=batch_size)
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
