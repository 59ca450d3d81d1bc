"""Token commands: make and revoke API tokens (appended as events, read back once the
read model has them)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from api.appending import api_event, append_and_wait
from api.auth import Caller
from api.context import ApiContext
from api.errors import Conflict, FieldProblem, Invalid, NotFound
from chronolog.tokens import name_problem, new_token, token_hash
from events.model import TokenCreated, TokenRevoked
from projector import api_reads


@dataclass(frozen=True, slots=True)
class MadeToken:
    name: str
    role: str
    token: str  # shown once, never stored
    expires_at: datetime | None


class TokenCommands:
    def __init__(self, context: ApiContext, caller: Caller) -> None:
        self._ctx = context
        self._caller = caller

    def create(self, name: str, role: str, expires_at: datetime | None) -> MadeToken:
        if (problem := name_problem(name)) is not None:
            raise Invalid.of([FieldProblem("name", problem)])
        if expires_at is not None and expires_at <= self._ctx.clock():
            raise Invalid.of([FieldProblem("expires_at", "must be in the future")])
        token = new_token()
        with self._ctx.command_lock, Session(self._ctx.engine) as session:
            current = api_reads.find_token(session, name)
            if current is not None and current.revoked_at is None:
                raise Conflict(
                    f"a token named {name!r} exists; revoke it first or pick another name",
                    [FieldProblem("name", f"{name!r} is in use")],
                )
            payload = TokenCreated(name, role, token_hash(token), expires_at)
            append_and_wait(self._ctx, [api_event(self._ctx, self._caller, payload, None)])
        return MadeToken(name, role, token, expires_at)

    def revoke(self, name: str, reason: str | None = None) -> None:
        with self._ctx.command_lock, Session(self._ctx.engine) as session:
            current = api_reads.find_token(session, name)
            if current is None or current.revoked_at is not None:
                raise NotFound(f"no token named {name!r} to revoke")
            payload = TokenRevoked(name, reason or f"revoked by {self._caller.name}")
            append_and_wait(self._ctx, [api_event(self._ctx, self._caller, payload, None)])
