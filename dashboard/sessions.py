"""Signed-in browsers: a random session id in an HTTP-only cookie, the token on the server.

The token never goes back to the browser (not even signed or encrypted in a cookie):
the cookie holds only a random id, and a stolen page's script cannot read even that.
Sessions live in this process; a dashboard restart signs everyone out, which is the
safe way round.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

COOKIE = "chronolog_session"
IDLE_TIMEOUT = timedelta(hours=12)  # a session not used for this long is gone
# A session's token is asked about again this often, so a revoked or expired token
# signs its browsers out within this time, not at the idle timeout.
RECHECK_AFTER = timedelta(seconds=30)
MAX_SESSIONS = 10_000  # oldest dropped past this, so sign-ins cannot grow memory unbounded


@dataclass(frozen=True, slots=True)
class SignedIn:
    name: str  # the token's name: what the audit trail will say
    role: str
    token: str | None  # None in open mode (the API needs no token)


# The signed-in caller of the request being served (set by the sign-in gate), so the
# pages' callbacks and the API client need no parameter for it.
current_caller: ContextVar[SignedIn | None] = ContextVar("current_caller", default=None)

ANONYMOUS = SignedIn(name="anonymous", role="admin", token=None)


def auth_headers() -> dict[str, str]:
    """The ``Authorization`` header of the request's signed-in caller, if it has a token."""
    caller = current_caller.get()
    if caller is None or caller.token is None:
        return {}
    return {"Authorization": f"Bearer {caller.token}"}


def _utc_now() -> datetime:
    return datetime.now(UTC)


class SessionStore:
    def __init__(self, clock: Callable[[], datetime] = _utc_now) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        # session id -> (caller, last used, last checked with the API)
        self._sessions: dict[str, tuple[SignedIn, datetime, datetime]] = {}

    def create(self, caller: SignedIn) -> str:
        session_id = secrets.token_urlsafe(32)
        with self._lock:
            if len(self._sessions) >= MAX_SESSIONS:
                oldest = min(self._sessions, key=lambda key: self._sessions[key][1])
                del self._sessions[oldest]
            now = self._clock()
            self._sessions[session_id] = (caller, now, now)
        return session_id

    def get(self, session_id: str | None) -> tuple[SignedIn, bool] | None:
        """The session's caller and whether its token is due for a check with the API;
        None if there is no such session or it was idle too long."""
        if not session_id:
            return None
        now = self._clock()
        with self._lock:
            found = self._sessions.get(session_id)
            if found is None:
                return None
            caller, last_used, checked = found
            if now - last_used > IDLE_TIMEOUT:
                del self._sessions[session_id]
                return None
            self._sessions[session_id] = (caller, now, checked)
            return caller, now - checked > RECHECK_AFTER

    def checked(self, session_id: str) -> None:
        """The API still takes the session's token."""
        with self._lock:
            found = self._sessions.get(session_id)
            if found is not None:
                self._sessions[session_id] = (found[0], found[1], self._clock())

    def drop(self, session_id: str | None) -> None:
        if session_id:
            with self._lock:
                self._sessions.pop(session_id, None)
