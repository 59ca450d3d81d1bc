"""The ``chronolog`` command."""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from chronolog import observability, roles, tracing, wiring
from chronolog.apply_plan import DEFAULT_MARKER
from chronolog.logs import configure_logging
from chronolog.settings import (
    Settings,
    SettingsError,
    database_url_option,
    job_types_option,
    load_settings,
)
from chronolog.token_cli import token_app
from events.errors import ChronologError

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


@contextmanager
def _reported() -> Iterator[None]:
    """Start-up problems (settings, an old schema, a server down) as one clear line."""
    try:
        yield
    except ChronologError as e:
        raise _fail(str(e)) from e


Concurrency = Annotated[int, typer.Option(help="Runs one worker process executes at once", min=1)]
MetricsPort = Annotated[
    int | None,
    typer.Option(
        help="Serve Prometheus metrics at /metrics on this port, on CHRONOLOG_METRICS_HOST "
        "(default 127.0.0.1) [default: CHRONOLOG_METRICS_PORT, else none]",
        min=1,
        max=65535,
    ),
]
AppDir = Annotated[
    Path | None,
    typer.Option(
        "--app-dir",
        help="Where python jobs' modules are imported from, first [default: the current directory]",
    ),
]


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
    app_dir: AppDir = None,
    dashboard_port: Annotated[
        int | None, typer.Option(help="Dashboard port [default: 8050]", min=1, max=65535)
    ] = None,
    dashboard: Annotated[
        bool, typer.Option("--dashboard/--no-dashboard", help="Serve the dashboard too")
    ] = True,
) -> None:
    """Run all of Chronolog on the embedded defaults: API, projector, scheduler, workers,
    and the dashboard."""
    settings = _settings(
        api_port=api_port,
        api_host=api_host,
        data_dir=data_dir,
        app_dir=app_dir,
        dashboard_port=dashboard_port,
    )
    tracing.configure("api")  # its scheduler and workers are processes that configure theirs
    with _reported():
        settings = dataclasses.replace(settings, app_dir=roles.app_dir(settings))  # for workers
        roles.check_secrets_file(settings)  # refused here, not by every worker it starts
    with _reported(), wiring.projector_lock(settings) as lock_fd:
        observability.start_up_metrics(settings)  # before any instrument is made
        typer.echo(
            f"Chronolog is up: API http://{settings.api_host}:{settings.api_port} "
            f"(docs at /docs), data in {settings.data_dir}"
        )
        if dashboard:
            typer.echo(f"Dashboard: http://{settings.dashboard_host}:{settings.dashboard_port}")
        from chronolog import serving  # the web stack: only API processes load it

        serving.serve(
            settings,
            projector=True,
            projector_lock_fd=lock_fd,
            scheduler=scheduler,
            workers=workers,
            concurrency=concurrency,
            dashboard=dashboard,
            announce=typer.echo,
        )


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
    tracing.configure("api")
    with _reported():
        typer.echo(f"Chronolog API on http://{settings.api_host}:{settings.api_port}")
        from chronolog import serving  # the web stack: only API processes load it

        serving.serve(settings, projector=False, scheduler=False, workers=0, concurrency=1)


@app.command("dashboard")
def dashboard_command(
    port: Annotated[
        int | None, typer.Option(help="Dashboard port [default: 8050]", min=1, max=65535)
    ] = None,
    host: Annotated[str | None, typer.Option(help="Dashboard address [default: 127.0.0.1]")] = None,
    api_url: Annotated[
        str | None,
        typer.Option(
            help="Where the API is, for actions and live updates "
            "[default: CHRONOLOG_API_URL, else http://127.0.0.1:8000]"
        ),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Run only the dashboard: it reads the read model and acts through the API."""
    settings = _settings(
        dashboard_port=port, dashboard_host=host, api_url=api_url, data_dir=data_dir
    )
    with _reported():
        from chronolog.dashboarding import serve_dashboard  # the web stack, only here

        typer.echo(
            f"Chronolog dashboard on http://{settings.dashboard_host}:{settings.dashboard_port} "
            f"(API {settings.api_base_url})"
        )
        serve_dashboard(settings)


@app.command("scheduler")
def scheduler_command(
    data_dir: DataDir = None,
    api_url: Annotated[
        str | None,
        typer.Option(
            help="The API's address, for the run links in hook deliveries "
            "[default: CHRONOLOG_API_URL, else http://127.0.0.1:8000]"
        ),
    ] = None,
    metrics_port: MetricsPort = None,
) -> None:
    """Run a scheduler; of several, one leads and the others stand by. Each also
    delivers job hooks (README, Notifications)."""
    settings = _settings(data_dir=data_dir, api_url=api_url, metrics_port=metrics_port)
    tracing.configure("scheduler")
    with _reported():
        observability.check_metrics_port(settings)
        runtime = wiring.build_runtime(settings, observability.role_metrics(settings))
        observability.serve_role_metrics(settings, runtime.metrics)
        scheduler = roles.scheduler_role(runtime)
        hooks = roles.hook_deliverer(runtime, scheduler.config.node_id)
    typer.echo(f"Scheduler {scheduler.config.node_id} running on {settings.data_dir}")
    stop = roles.stop_on_signals()
    delivering = roles.start_hook_deliverer(hooks, stop)
    scheduler.run(stop)
    delivering.join(timeout=settings.hooks_timeout + 10)  # attempts under way get recorded
    hooks.close()
    runtime.close()


@app.command("worker")
def worker_command(
    tags: Annotated[str, typer.Option(help="Comma-separated queues to take runs from")] = "default",
    concurrency: Concurrency = 1,
    worker_id: Annotated[
        str | None, typer.Option("--id", help="Worker id [default: random]")
    ] = None,
    data_dir: DataDir = None,
    app_dir: AppDir = None,
    max_runs_per_child: Annotated[
        int | None,
        typer.Option(
            help="Replace a python job process after this many runs; 0: never [default: 1000]",
            min=0,
        ),
    ] = None,
    job_types: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated job types this worker runs, of python,shell,http "
            "[default: CHRONOLOG_WORKER_JOB_TYPES, else python,http]"
        ),
    ] = None,
    metrics_port: MetricsPort = None,
) -> None:
    """Run a worker: take runs from the queues named by --tags and execute them."""
    with _reported():
        types = None if job_types is None else job_types_option("--job-types", job_types)
    settings = _settings(
        data_dir=data_dir,
        app_dir=app_dir,
        max_runs_per_child=max_runs_per_child,
        worker_job_types=types,
        metrics_port=metrics_port,
    )
    queues = [tag.strip() for tag in tags.split(",") if tag.strip()]
    if not queues:
        raise _fail("--tags needs at least one queue name, e.g. --tags default")
    tracing.configure("worker")
    with _reported():
        roles.run_worker(settings, queues, concurrency, worker_id, announce=typer.echo)


@app.command("projector")
def projector_command(
    data_dir: DataDir = None,
    batch_size: Annotated[int, typer.Option(help="Most events per transaction", min=1)] = 5000,
    metrics_port: MetricsPort = None,
    held_lock_fd: Annotated[
        int | None,
        typer.Option(hidden=True, help="The projector lock, held by `up` (its child)"),
    ] = None,
) -> None:
    """Run only the projector: keep the read models up to date with the log."""
    settings = _settings(data_dir=data_dir, metrics_port=metrics_port)
    lock = (
        wiring.projector_lock(settings)
        if held_lock_fd is None
        else wiring.inherited_projector_lock(settings, held_lock_fd)
    )
    with _reported(), lock:
        observability.check_metrics_port(settings)
        runtime = wiring.build_runtime(settings, observability.role_metrics(settings))
        observability.serve_role_metrics(settings, runtime.metrics)
        typer.echo(f"Projector running on {settings.database_label}")
        wiring.run_projector(runtime, roles.stop_on_signals(), batch_size=batch_size)
        runtime.close()


@app.command("apply")
def apply_command(
    sources: Annotated[
        list[str],
        typer.Argument(
            help="Where the jobs are: .py files, package directories or module names "
            "(their @job functions), or .yaml / .json files of job bodies",
            metavar="PATH",
            show_default=False,
        ),
    ],
    api_url: Annotated[
        str | None,
        typer.Option(help="The API (default: CHRONOLOG_API_URL, else http://127.0.0.1:8000)"),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Show the changes only")] = False,
    prune: Annotated[
        bool,
        typer.Option("--prune", help="Delete jobs applied from code that the code no longer has"),
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking")] = False,
    marker: Annotated[
        str,
        typer.Option(
            help="Tag that marks jobs applied from code; --prune deletes only jobs with it "
            "(give each code base its own to keep their prunes apart)"
        ),
    ] = DEFAULT_MARKER,
) -> None:
    """Register the jobs defined in code: show the diff against the API's jobs, then apply
    it (create, update; with --prune, delete). Applying the same code again changes nothing."""
    from chronolog import applying, job_sources
    from chronolog.client import ApiError, Client, ClientError

    settings = _settings(api_url=api_url)
    try:
        with _reported():
            wanted = job_sources.collect(sources)
        with Client(settings.api_base_url, settings.token or None) as client:
            plan = applying.fetch_plan(client, wanted, marker)
            for line in applying.describe(plan, prune):
                typer.echo(line)
            if dry_run or not (plan.changes_anything or (prune and plan.prune)):
                return
            _confirm_apply(yes)
            applying.execute(client, plan, prune, typer.echo)
    except ApiError as e:
        details = "".join(f"\n  {p.field}: {p.reason}" for p in e.errors)
        raise _fail(f"the API refused: {e.message or e.code} ({e.status}){details}") from e
    except ClientError as e:
        raise _fail(str(e)) from e


def _confirm_apply(yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise _fail("no terminal to confirm on: pass --yes to apply these changes")
    if not typer.confirm("Apply these changes?"):
        raise typer.Exit(1)


app.add_typer(token_app, name="token")

db_app = typer.Typer(help="The read-model database's schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(data_dir: DataDir = None) -> None:
    """Migrate the read-model schema to this version's (safe to run again)."""
    from projector import schema

    settings = _settings(data_dir=data_dir)
    with _reported():
        engine = wiring.open_read_model(settings.database, upgrade=True)
        revision = schema.current_revision(engine)
        engine.dispose()
    typer.echo(f"Read model {settings.database_label} is at schema {revision}")


@db_app.command("current")
def db_current(data_dir: DataDir = None) -> None:
    """Show the read model's schema revision; exit 1 if it needs `chronolog db upgrade`."""
    from projector import schema
    from projector.database import create_read_model_engine

    settings = _settings(data_dir=data_dir)
    engine = create_read_model_engine(settings.database)
    try:
        with _reported():
            current = schema.current_revision(engine)
            typer.echo(
                f"schema {current or 'none'} (this Chronolog needs {schema.head_revision()})"
            )
            schema.check(engine)
    finally:
        engine.dispose()


@app.command("setup")
def setup_command(data_dir: DataDir = None) -> None:
    """Prepare the backends once: create the event topic and upgrade the read-model schema."""
    from projector import schema

    settings = _settings(data_dir=data_dir)
    with _reported():
        event_log = wiring.open_event_log(settings)  # creates a missing Kafka topic
        partitions = event_log.partitions
        event_log.close()
        engine = wiring.open_read_model(settings.database, upgrade=True)
        revision = schema.current_revision(engine)
        engine.dispose()
    typer.echo(
        f"Event log ready ({partitions} partitions); read model {settings.database_label} "
        f"at schema {revision}"
    )


@app.command("replay")
def replay_command(
    data_dir: DataDir = None,
    until: Annotated[
        datetime | None,
        typer.Option(
            help="Rebuild the state as it was at this time (UTC if naive) into --into's database"
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Rebuild aside up to the live read model's checkpoints and compare "
            "(safe while Chronolog runs)",
        ),
    ] = False,
    into: Annotated[
        str | None,
        typer.Option(help="Replay into this empty database (needed for --until and PostgreSQL)"),
    ] = None,
) -> None:
    """Rebuild the read models from the event log (the recovery path)."""
    from chronolog import replaying

    settings = _settings(data_dir=data_dir)
    with _reported():
        refused = replaying.refusal(
            until=until is not None,
            check=check,
            into=into is not None,
            embedded_read_model=settings.database.startswith("sqlite:///"),
        )
        if refused is not None:
            raise replaying.ReplayRefused(refused)
        if into is not None:
            url = database_url_option("--into", into)
            replaying.replay_into(settings, url, _aware(until), check)
        elif check:
            replaying.check_aside(settings)
        else:
            with wiring.projector_lock(settings):
                replaying.rebuild_in_place(settings)


def _aware(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def main() -> None:
    app()
