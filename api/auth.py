"""Who is calling, and may they: bearer tokens checked against the ``api_tokens`` read
model, and one FastAPI dependency per role (``viewer`` < ``operator`` < ``admin``).

Open mode: while no token was ever made and the API listens on a loopback address only,
every request is the caller ``anonymous`` with role admin (the embedded first run and
in-process tests need no token). The first token closes the API for good.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Final

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from api.errors import ApiError
from chronolog.tokens import Role, allows, token_hash
from projector import api_reads
from projector.token_projection import TokenRow

ANONYMOUS: Final = "anonymous"
CACHE_TTL: Final = 1.0  # seconds a valid token is trusted without a look: revocation's delay
MAKE_ONE: Final = "make one with `chronolog token create --name NAME --role viewer|operator|admin`"


@dataclass(frozen=True, slots=True)
class Caller:
    name: str  # the token's name, or "anonymous" in open mode
    role: str
    request_id: str | None = None


class Unauthorized(ApiError):
    status = 401
    code = "unauthorized"

    def __init__(self, message: str, *, invalid_token: bool = False) -> None:
        super().__init__(message)
        challenge = 'Bearer realm="chronolog"'
        if invalid_token:
            challenge += ', error="invalid_token"'
        self.headers = {"WWW-Authenticate": challenge}


class Forbidden(ApiError):
    status = 403
    code = "forbidden"


class TokenGate:
    """Turns a bearer token into a ``Caller``. Thread-safe enough for the API: the cache
    is a dict whose entries are replaced whole."""

    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], datetime],
        *,
        open_mode: bool,
        ttl: float = CACHE_TTL,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._open_mode = open_mode  # allowed at all: loopback-only binding
        self._ttl = ttl
        self._monotonic = monotonic
        self._valid: dict[str, tuple[TokenRow, float]] = {}  # hash -> (row, when looked up)
        self._closed_at: float | None = None  # when a token was first seen to exist
        self._open_checked = -float("inf")

    async def caller(self, token: str | None, request_id: str | None) -> Caller:
        if token is None:
            if self._open_mode and not await self._closed():
                return Caller(ANONYMOUS, "admin", request_id)
            raise Unauthorized(
                f"this API needs a token: send Authorization: Bearer <token> ({MAKE_ONE})"
            )
        row = await self._lookup(token_hash(token))
        if row is None:
            raise Unauthorized("the token is not known", invalid_token=True)
        now = self._clock()
        if row.revoked_at is not None:
            raise Unauthorized(
                f"token {row.name!r} was revoked at {row.revoked_at.isoformat()}",
                invalid_token=True,
            )
        if row.expires_at is not None and now >= row.expires_at:
            raise Unauthorized(
                f"token {row.name!r} expired at {row.expires_at.isoformat()}", invalid_token=True
            )
        return Caller(row.name, row.role, request_id)

    def token_made(self) -> None:
        """This process made a token: open mode ends now, not a cache period later."""
        self._closed_at = self._monotonic()

    async def _lookup(self, digest: str) -> TokenRow | None:
        now = self._monotonic()
        cached = self._valid.get(digest)
        if cached is not None and now - cached[1] <= self._ttl:
            return cached[0]
        row = await run_in_threadpool(self._read, digest)
        if row is not None and row.revoked_at is None:
            self._valid[digest] = (row, now)  # only tokens that work: a bad one is read each time
        else:
            self._valid.pop(digest, None)
        return row

    def _read(self, digest: str) -> TokenRow | None:
        with Session(self._engine) as session:
            return api_reads.token_by_hash(session, digest)

    async def _closed(self) -> bool:
        """Whether any token was ever made (once True, it stays True)."""
        if self._closed_at is not None:
            return True
        now = self._monotonic()
        if now - self._open_checked > self._ttl:
            if await run_in_threadpool(self._any_token):
                self._closed_at = now
                return True
            self._open_checked = now
        return False

    def _any_token(self) -> bool:
        with Session(self._engine) as session:
            return api_reads.any_token(session)


bearer = HTTPBearer(auto_error=False, description="An API token: `chronolog token create`")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def gate(request: Request) -> TokenGate:
    found: TokenGate = request.app.state.token_gate
    return found


def require(needed: Role) -> Callable[[Request, Credentials], Coroutine[Any, Any, Caller]]:
    """A dependency that answers the caller if it holds ``needed`` or a stronger role."""

    async def dependency(request: Request, credentials: Credentials) -> Caller:
        token = credentials.credentials if credentials is not None else None
        request_id = getattr(request.state, "request_id", None)
        caller = await gate(request).caller(token, request_id)
        if not allows(caller.role, needed):
            raise Forbidden(
                f"this needs the {needed} role; token {caller.name!r} has the {caller.role} role"
            )
        return caller

    dependency.__name__ = f"require_{needed}"
    return dependency


require_viewer = require("viewer")
require_operator = require("operator")
require_admin = require("admin")

Viewer = Annotated[Caller, Depends(require_viewer)]
Operator = Annotated[Caller, Depends(require_operator)]
Admin = Annotated[Caller, Depends(require_admin)]
VIEWER = Depends(require_viewer)  # for routes that need the role but not the caller
ADMIN = Depends(require_admin)
