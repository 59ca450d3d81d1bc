"""HTTP connections that go to one checked address, never to a second DNS answer.

The URL's host name stays the connection's name: it is the ``Host`` header, the TLS
server name (SNI) and the name the certificate must match. Only the TCP connect goes to
``addresses``, the addresses the SSRF rules checked, so DNS rebinding (a name that answers
a public address to the check and a private one to the connect) cannot switch it.

Lookups run on a small thread pool of their own (``getaddrinfo`` blocks): a thread per
lookup in flight, never one per running run, whatever the worker's concurrency.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import socket
import ssl
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeAlias

Resolver: TypeAlias = Callable[[str, int], list[str]]

LOOKUP_THREADS = 8  # lookups at once; more wait for a free thread, runs do not
READ_LIMIT = 2**16
# Threads start on the first lookup, not here.
_LOOKUPS = ThreadPoolExecutor(LOOKUP_THREADS, thread_name_prefix="http-lookup")


def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to, in the resolver's order, without repeats.

    The system resolver also reads numeric forms (``2130706433``, ``0x7f.1``,
    ``0177.0.0.1``) as the address they denote, so the rules see what a connect would.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def resolve_async(resolver: Resolver, host: str, port: int) -> list[str]:
    """``resolver(host, port)`` without blocking the loop. An address in its usual
    spelling needs no lookup; any other (``0x7f.1``) goes to the system resolver."""
    if resolver is resolve and _is_plain_address(host):
        return [host]
    return await asyncio.get_running_loop().run_in_executor(_LOOKUPS, resolver, host, port)


def _is_plain_address(host: str) -> bool:
    try:
        return str(ipaddress.ip_address(host)) == host
    except ValueError:
        return False


async def open_pinned(
    scheme: str, host: str, port: int, addresses: tuple[str, ...]
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection to the first of ``addresses`` that answers (in order, as
    ``socket.create_connection`` tries a name's addresses); for https, TLS with SNI and
    the certificate check on ``host``, never on the address."""
    error: OSError = OSError(f"no address to connect to for {host}")
    tls = tls_context() if scheme == "https" else None
    for address in addresses:
        try:
            return await asyncio.open_connection(
                address,
                port,
                ssl=tls,
                server_hostname=host if tls is not None else None,
                limit=READ_LIMIT,
            )
        except OSError as exc:  # ssl.SSLError included: a bad certificate is an OSError
            error = exc
    raise error


def tls_context() -> ssl.SSLContext:
    """The default verifying context, made once per CA location (``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR``): loading the CA store per request would cost milliseconds each."""
    return _tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.lru_cache(maxsize=4)
def _tls_context(_cert_file: str | None, _cert_dir: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.set_alpn_protocols(["http/1.1"])  # what http.client offers: h11 speaks HTTP/1.1
    return context
