"""API tokens: how one is made, hashed and named, and how roles compare.

Shared by the CLI and the API; it imports neither the web stack nor a database, so
``chronolog token`` starts quickly.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Final, Literal, TypeAlias

Role: TypeAlias = Literal["viewer", "operator", "admin"]
ROLES: Final[tuple[Role, ...]] = ("viewer", "operator", "admin")  # weakest first
PREFIX: Final = "chl_"
NAME_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
NAME_RULE: Final = "1-100 letters, digits, '.', '_' or '-', starting with a letter or digit"
# Identities Chronolog writes itself: a token with one of these names would blur the trail.
RESERVED: Final = frozenset({"anonymous", "api", "scheduler", "projector", "system"})
_DURATION: Final = re.compile(r"^(\d+)([smhdw])$")
_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def new_token() -> str:
    """A fresh token: ``chl_`` and 256 random bits, URL-safe."""
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What is stored and looked up: the token's SHA-256, hex. A token has 256 random
    bits, so a plain hash (no salt, no slow KDF) cannot be guessed back."""
    return hashlib.sha256(token.encode()).hexdigest()


def is_role(value: str) -> bool:
    return value in ROLES


def rank(role: str) -> int:
    """A role's place in viewer < operator < admin; -1 for an unknown role."""
    order: tuple[str, ...] = ROLES
    return order.index(role) if role in order else -1


def allows(held: str, needed: str) -> bool:
    """True when a caller with role ``held`` may do what needs ``needed``."""
    return rank(held) >= rank(needed) >= 0


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a token, or None."""
    if not NAME_PATTERN.fullmatch(name):
        return f"must be {NAME_RULE}"
    if name.lower() in RESERVED:
        return f"{name!r} is reserved for Chronolog's own components"
    return None


def parse_expiry(text: str, now: datetime) -> datetime:
    """``30d``, ``12h``, ``90m``, ``2w`` from ``now``, or an ISO 8601 time (UTC if naive).

    Raises ``ValueError`` saying what is accepted.
    """
    if match := _DURATION.fullmatch(text.strip()):
        amount, unit = int(match.group(1)), match.group(2)
        if amount <= 0:
            raise ValueError(f"{text!r}: the duration must be positive")
        return now + timedelta(seconds=amount * _UNITS[unit])
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a duration (30d, 12h, 90m, 2w) nor a time (2027-01-01T00:00Z)"
        ) from None
    moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    if moment <= now:
        raise ValueError(f"{text!r} is in the past")
    return moment.astimezone(UTC)
