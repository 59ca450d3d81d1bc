"""Pure projection of API token events: one row per token name, its latest token."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from events.model import TOKEN_PAYLOADS, Event, TokenCreated, TokenRevoked
from projector.job_projection import Rejected

TOKEN_EVENTS = TOKEN_PAYLOADS


@dataclass(frozen=True, slots=True)
class TokenRow:
    name: str
    role: str
    token_hash: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    created_by: str  # the actor of the TokenCreated event

    def valid_at(self, moment: datetime) -> bool:
        """Not revoked and not expired at ``moment``."""
        return self.revoked_at is None and (self.expires_at is None or moment < self.expires_at)


def apply_token_event(current: TokenRow | None, event: Event) -> TokenRow | Rejected:
    """A name holds one live token: it may be made again only once its token is revoked."""
    payload = event.payload
    if isinstance(payload, TokenCreated):
        if current is not None and current.revoked_at is None:
            return Rejected(f"token {payload.name!r} exists and is not revoked")
        return TokenRow(
            name=payload.name,
            role=payload.role,
            token_hash=payload.token_hash,
            created_at=event.occurred_at,
            expires_at=payload.expires_at,
            revoked_at=None,
            created_by=event.actor,
        )
    if isinstance(payload, TokenRevoked):
        if current is None:
            return Rejected(f"no token named {payload.name!r}")
        if current.revoked_at is not None:
            return Rejected(f"token {payload.name!r} is already revoked")
        return dataclasses.replace(current, revoked_at=event.occurred_at)
    return Rejected(f"{event.type} is not a token event")
