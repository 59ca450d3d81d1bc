"""What an HTTP job's URL must look like, wherever it is checked: the API refuses it at
create and update time, and a worker refuses it again (an old event may hold one)."""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import SplitResult, urlsplit

SCHEMES = ("http", "https")
_LABEL = r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?"
_HOST = re.compile(rf"^{_LABEL}(\.{_LABEL})*\.?$")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


def http_url_problem(url: str) -> str | None:
    """Why ``url`` can never be sent by an HTTP job, or None when its shape is fine."""
    if _CONTROL.search(url):
        return f"{url!r} contains spaces or control characters; percent-encode them"
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError for a port that is not 0-65535
    except ValueError as exc:
        return f"{url!r} is not a valid URL: {exc}"
    if parts.scheme.lower() not in SCHEMES:
        scheme = f"the scheme {parts.scheme!r}" if parts.scheme else "no scheme"
        return f"{url!r} has {scheme}; HTTP jobs call http:// or https:// URLs only"
    if not parts.hostname:
        return f"{url!r} names no host, e.g. https://api.example.com/hook"
    if port == 0:
        return f"{url!r}: port 0 cannot be connected to"
    return _host_problem(url, parts)


def _host_problem(url: str, parts: SplitResult) -> str | None:
    host = parts.hostname or ""
    if "[" in parts.netloc:
        try:
            ipaddress.IPv6Address(host.partition("%")[0])
        except ValueError:
            return f"{url!r}: {host!r} in brackets is not an IPv6 address"
        return None
    try:
        ascii_host = host.encode("idna").decode()
    except UnicodeError:
        ascii_host = ""
    if not _HOST.match(ascii_host):
        return f"{url!r}: {host!r} is not a valid host name"
    return None
