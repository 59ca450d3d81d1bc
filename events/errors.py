"""Error hierarchy shared by every Chronolog package.

``ChronologError`` is the root; each package adds its own branch. It lives in
``events`` because that package depends on nothing else of ours.
"""

from __future__ import annotations


class ChronologError(Exception):
    """Root of every error Chronolog raises on purpose."""


class EventError(ChronologError):
    """Something went wrong with events or the event log."""


class SchemaNotFound(EventError):
    """A message names a writer schema (by fingerprint) that this build does not know."""

    def __init__(self, fingerprint: bytes) -> None:
        super().__init__(f"no known Avro schema has fingerprint {fingerprint.hex()}")
        self.fingerprint = fingerprint


class MalformedEvent(EventError):
    """Bytes that are not a single-object-encoded Chronolog event."""


class EventLogError(EventError):
    """The event log could not do what was asked (append, read, seek)."""


class EventLogUnavailable(EventLogError):
    """The event log cannot be reached right now; the operation may be retried."""
