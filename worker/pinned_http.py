"""HTTP connections that go to one checked address, never to a second DNS answer.

The URL's host name stays the connection's ``host``: it is the ``Host`` header, the TLS
server name (SNI) and the name the certificate must match. Only the TCP connect goes to
``addresses``, the addresses the SSRF rules checked, so DNS rebinding (a name that answers
a public address to the check and a private one to the connect) cannot switch it.
"""

from __future__ import annotations

import http.client
import socket
from collections.abc import Callable
from typing import TypeAlias

Resolver: TypeAlias = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order, without repeats.

    The system resolver also reads numeric forms (``2130706433``, ``0x7f.1``,
    ``0177.0.0.1``) as the address they denote, so the rules see what a connect would.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class PinnedHTTPConnection(http.client.HTTPConnection):
    """An ``HTTPConnection`` whose socket connects to one of ``addresses`` (in order, as
    ``socket.create_connection`` tries a name's addresses), never to a new lookup of
    ``host``."""

    addresses: tuple[str, ...] = ()

    def connect(self) -> None:
        error: OSError = OSError(f"no address to connect to for {self.host}")
        for address in self.addresses:
            try:
                self.sock = socket.create_connection((address, self.port), self.timeout)
            except OSError as exc:
                error = exc
                continue
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return
        raise error


class PinnedHTTPSConnection(http.client.HTTPSConnection, PinnedHTTPConnection):
    """``HTTPSConnection.connect`` calls ``super().connect()``, which this order makes the
    pinned connect, then wraps the socket with SNI and certificate check on ``host``."""


def pinned_connection(
    scheme: str, host: str, port: int | None, addresses: tuple[str, ...], timeout: float
) -> http.client.HTTPConnection:
    kind = PinnedHTTPSConnection if scheme == "https" else PinnedHTTPConnection
    connection = kind(host, port, timeout=timeout)
    connection.addresses = addresses
    return connection
