"""What of an event's payload may be shown outside the log: all of it but its secrets.

The log keeps every fact (a TokenCreated records the token's hash so the token can be
checked); responses, the audit and the dashboard show payloads through this rule.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

# Event type -> payload fields never shown. A hash is not the token, but it is enough
# to test guesses offline, so it stays in the log and the token table only.
SECRET_FIELDS: Final[Mapping[str, frozenset[str]]] = {
    "TokenCreated": frozenset({"token_hash"}),
}


def public_payload(event_type: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """``payload`` without the fields of ``event_type`` that are secret."""
    hidden = SECRET_FIELDS.get(event_type, frozenset())
    return {name: value for name, value in payload.items() if name not in hidden}
