"""Which browser origins may call the API, and which request bodies it reads: pure rules
that ``api.middleware`` applies (see docs/decisions.md, "No cross-site writes")."""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


def _host_port(netloc: str, scheme: str) -> str:
    """``Example.COM:80`` over http -> ``example.com``: what to compare hosts by."""
    host = netloc.lower()
    default = DEFAULT_PORTS.get(scheme)
    if default is not None and host.endswith(f":{default}"):
        host = host.removesuffix(f":{default}")
    return host


def normalize_origin(origin: str) -> str | None:
    """``scheme://host[:port]`` in canonical form, or None when ``origin`` is not one
    (e.g. ``null``, sent by sandboxed frames and ``file://`` pages)."""
    try:
        parts = urlsplit(origin.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.netloc or parts.path not in ("", "/"):
        return None
    if parts.query or parts.fragment or "@" in parts.netloc:
        return None
    return f"{scheme}://{_host_port(parts.netloc, scheme)}"


def foreign_origin(origin: str, host: str, allowed: Collection[str]) -> bool:
    """True when a browser page at ``origin`` is neither the API's own (the ``Host`` it
    was asked for) nor one of the configured ``allowed`` (normalized) origins."""
    canonical = normalize_origin(origin)
    if canonical is None:
        return True
    if canonical in allowed:
        return False
    scheme = canonical.split("://", 1)[0]
    # Scheme aside: behind a TLS proxy the API sees http while the page is https.
    return canonical.split("://", 1)[1] != _host_port(host, scheme)


JSON_TYPES = ("application/json",)


def is_json_media_type(content_type: str) -> bool:
    """``application/json`` or ``application/*+json``, parameters (charset) aside."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in JSON_TYPES:
        return True
    kind, _, subtype = media.partition("/")
    return kind == "application" and subtype.endswith("+json") and len(subtype) > len("+json")
