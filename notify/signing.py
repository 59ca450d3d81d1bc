"""The signature a hook delivery carries when its hook names a secret.

``Chronolog-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>`` where the HMAC's key is
the secret's value and its message is ``<t>.<body>`` (the body's bytes as sent). Signing
the time with the body lets a receiver refuse an old delivery replayed by someone who
recorded it; the delivery id lets it drop a repeat.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Final

SIGNATURE_HEADER: Final = "Chronolog-Signature"
TIMESTAMP_HEADER: Final = "Chronolog-Timestamp"
DELIVERY_HEADER: Final = "Chronolog-Delivery"
HOOK_HEADER: Final = "Chronolog-Hook"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``<timestamp>.<body>`` under ``secret``."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes) -> str:
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify(secret: str, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """What a receiver does (the README shows the same in ten lines): the header's time
    is within ``tolerance`` seconds of ``now`` and its ``v1`` matches."""
    fields = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(fields.get("v1", ""), signature(secret, timestamp, body))
