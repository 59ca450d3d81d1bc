"""``chronolog token create | list | revoke``: API tokens, appended to the configured
log directly (whether or not a Chronolog is running)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

import typer

from chronolog import wiring
from chronolog.tokens import parse_expiry

token_app = typer.Typer(
    help="API tokens: make, list and revoke them (sent as Authorization: Bearer <token>).",
    no_args_is_help=True,
)

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Where embedded data lives [default: ./.chronolog]"),
]


@contextmanager
def _runtime(data_dir: Path | None) -> Iterator[wiring.Runtime]:
    from chronolog.cli import _reported, _settings  # one way of reading settings and failing

    settings = _settings(data_dir=data_dir)
    with _reported():
        runtime = wiring.build_runtime(settings)
        try:
            yield runtime
        finally:
            runtime.close()


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ") if moment else "-"


@token_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="The token's name: the actor on its events")],
    role: Annotated[
        Literal["viewer", "operator", "admin"],
        typer.Option(
            "--role", help="viewer reads; operator also triggers, cancels, pauses; admin all"
        ),
    ],
    expires: Annotated[
        str | None,
        typer.Option("--expires", help="A duration (30d, 12h) or a time (2027-01-01T00:00Z)"),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Make a token and print it once (only its SHA-256 is kept)."""
    from chronolog import access  # the read model: kept out of the worker's imports

    try:
        expires_at = parse_expiry(expires, datetime.now(UTC)) if expires else None
    except ValueError as e:
        typer.secho(f"error: --expires {e}", err=True, fg="red")
        raise typer.Exit(2) from e
    with _runtime(data_dir) as runtime:
        made = access.create_token(runtime, name, role, expires_at, access.cli_actor())
    typer.echo(made.token)
    until = f", expires {_when(expires_at)}" if expires_at else ""
    typer.echo(f"token {name!r} ({role}{until}): shown only now, keep it safe", err=True)
    if not made.visible:
        typer.echo("note: no projector has applied it yet; it works once one has", err=True)


@token_app.command("list")
def list_command(data_dir: DataDir = None) -> None:
    """Every token: name, role, state, when made and by whom, expiry. Never the token."""
    from chronolog import access  # the read model: kept out of the worker's imports

    with _runtime(data_dir) as runtime:
        access.settle(runtime, access.log_end(runtime))  # tokens made by others just now
        rows = access.list_tokens(runtime)
    if not rows:
        typer.echo(f"no tokens yet: make one with `{access.CREATE_ADMIN}`")
        return
    now = datetime.now(UTC)
    header = ("NAME", "ROLE", "STATE", "CREATED", "CREATED BY", "EXPIRES")
    table = [header]
    for r in rows:
        state = "revoked" if r.revoked_at else ("active" if r.valid_at(now) else "expired")
        table.append(
            (r.name, r.role, state, _when(r.created_at), r.created_by, _when(r.expires_at))
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@token_app.command("revoke")
def revoke(
    name: Annotated[str, typer.Argument(help="The token's name")], data_dir: DataDir = None
) -> None:
    """Revoke a token: every API stops taking it within about a second."""
    from chronolog import access  # the read model: kept out of the worker's imports

    with _runtime(data_dir) as runtime:
        visible = access.revoke_token(runtime, name, access.cli_actor())
    typer.echo(f"token {name!r} revoked")
    if not visible:
        typer.echo("note: no projector has applied it yet; it stops working once one has", err=True)
