"""Tokens from the command line and at start-up: appended to the log directly (no API
needed), the admin token of the embedded first run, and the refusal to open a
non-loopback API while no token exists."""

from __future__ import annotations

import getpass
import ipaddress
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.orm import Session

from chronolog import wiring
from chronolog.settings import Settings, SettingsError
from chronolog.tokens import name_problem, new_token, token_hash
from eventlog.port import Position
from events.errors import ChronologError
from events.model import Event, Payload, TokenCreated, TokenRevoked, to_millis
from projector import api_reads
from projector.loop import Projector
from projector.token_projection import TokenRow

log = logging.getLogger(__name__)

ADMIN_TOKEN_FILE = "admin-token"
SETTLE_TIMEOUT = 10.0  # seconds to wait for the read model to show a token change
CREATE_ADMIN = "chronolog token create --name NAME --role admin"


class TokenRefused(ChronologError):
    """A token command that cannot be done (a name in use, an unknown token ...)."""


def is_loopback(host: str) -> bool:
    """True when ``host`` is reachable from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def cli_actor() -> str:
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = str(os.getuid())
    return f"cli:{user}"


def tokens_exist(runtime: wiring.Runtime) -> bool:
    with Session(runtime.engine) as session:
        return api_reads.any_token(session)


def check_bind(settings: Settings, runtime: wiring.Runtime) -> None:
    """Refuse to serve the API beyond loopback while anyone could call it as admin."""
    if is_loopback(settings.api_host) or tokens_exist(runtime):
        return
    raise SettingsError(
        f"refusing to serve the API on {settings.api_host}: no API token exists yet, so "
        f"anyone who can reach it could do anything. Make one first: `{CREATE_ADMIN}` "
        "(then send it as Authorization: Bearer <token>), or bind to 127.0.0.1"
    )


@dataclass(frozen=True, slots=True)
class Made:
    name: str
    role: str
    token: str
    expires_at: datetime | None
    visible: bool  # False: appended, but no projector applied it within the wait


def create_token(
    runtime: wiring.Runtime,
    name: str,
    role: str,
    expires_at: datetime | None,
    actor: str,
) -> Made:
    if (problem := name_problem(name)) is not None:
        raise TokenRefused(f"--name {name!r}: {problem}")
    current = find_token(runtime, name)
    if current is not None and current.revoked_at is None:
        raise TokenRefused(
            f"a token named {name!r} exists: revoke it first (`chronolog token revoke {name}`) "
            "or pick another name"
        )
    token = new_token()
    payload = TokenCreated(name, role, token_hash(token), expires_at)
    visible = _append(runtime, payload, actor)
    if visible and (kept := find_token(runtime, name)) and kept.token_hash != payload.token_hash:
        # Another token of this name was made at the same time, and the log has it first.
        raise TokenRefused(f"a token named {name!r} was made by {kept.created_by} meanwhile")
    return Made(name, role, token, expires_at, visible)


def revoke_token(runtime: wiring.Runtime, name: str, actor: str) -> bool:
    current = find_token(runtime, name)
    if current is None or current.revoked_at is not None:
        raise TokenRefused(f"no token named {name!r} to revoke (`chronolog token list` shows them)")
    return _append(runtime, TokenRevoked(name, f"revoked by {actor}"), actor)


def find_token(runtime: wiring.Runtime, name: str) -> TokenRow | None:
    with Session(runtime.engine) as session:
        return api_reads.find_token(session, name)


def list_tokens(runtime: wiring.Runtime) -> list[TokenRow]:
    with Session(runtime.engine) as session:
        return api_reads.list_tokens(session)


def _append(runtime: wiring.Runtime, payload: Payload, actor: str) -> bool:
    """Append the event; True once the read model shows it (projected here when nothing
    else projects the embedded read model)."""
    event = Event(payload=payload, occurred_at=to_millis(datetime.now(UTC)), actor=actor)
    positions = runtime.log.append([(event.key, runtime.codec.encode(event))])
    log.info("token event appended", extra={"event_type": event.type, "actor": actor})
    return settle(runtime, positions)


def settle(runtime: wiring.Runtime, positions: list[Position]) -> bool:
    try:
        with wiring.projector_lock(runtime.settings):
            if wiring.is_embedded(runtime.settings):
                return _project_until(runtime, positions)
    except SettingsError:
        pass  # a running Chronolog holds the embedded read model and projects it
    return runtime.progress.wait_for(positions, SETTLE_TIMEOUT)


def _project_until(runtime: wiring.Runtime, positions: list[Position]) -> bool:
    """Nobody projects this embedded read model now: catch it up here."""
    projector = Projector(
        runtime.log,
        runtime.engine,
        runtime.codec,
        group=wiring.projector_group(runtime.settings),
        on_commit=lambda result: runtime.progress.notify(result.checkpoints),
    )
    deadline = time.monotonic() + SETTLE_TIMEOUT
    try:
        while not runtime.progress.reached(positions):
            if time.monotonic() > deadline:
                return False
            projector.step(timeout=0.5)
    finally:
        projector.close()
    return True


def log_end(runtime: wiring.Runtime) -> list[Position]:
    """The last record of every non-empty partition."""
    marks = runtime.log.all_watermarks()
    return [Position(p, m.high - 1) for p, m in marks.items() if m.high > m.low]


def ensure_admin_token(runtime: wiring.Runtime, announce: Callable[[str], None]) -> None:
    """On the first start (no token ever made), make the ``admin`` token, keep it in
    ``<data-dir>/admin-token`` (0600) and show it once."""
    settings = runtime.settings
    path = settings.data_dir / ADMIN_TOKEN_FILE
    # Tokens made while Chronolog was down must be seen before deciding none exists.
    caught_up = runtime.progress.wait_for(log_end(runtime), SETTLE_TIMEOUT)
    if not caught_up and not path.exists():
        announce("The read model is still catching up with the log: no first token made now.")
    elif not path.exists() and not tokens_exist(runtime):
        made = create_token(runtime, "admin", "admin", None, actor="chronolog-up")
        _write_private(path, made.token)
        url = settings.api_base_url
        announce(
            f"Made the first API token, 'admin' (role admin), kept in {path} (mode 0600). "
            "It is shown only this once:"
        )
        announce(f"  {made.token}")
        announce(f'  curl -H "Authorization: Bearer $(cat {path})" {url}/api/jobs')
        announce("  (sign in to the dashboard with it too)")
    elif path.exists():
        announce(f"API token 'admin' is in {path} (for curl and the dashboard's sign-in)")


def _write_private(path: Path, token: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(token + "\n")
    os.chmod(path, 0o600)  # also when the file was there already
