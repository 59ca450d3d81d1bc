"""Errors of the lease store."""

from __future__ import annotations

from events.errors import ChronologError


class LeaseError(ChronologError):
    """The lease store failed."""


class LeaseStoreUnavailable(LeaseError):
    """The lease store cannot be reached right now; the operation may be retried."""


class LeaseLost(LeaseError):
    """A lease its holder relied on has expired or been taken by another holder."""
