"""What a worker agrees to run: job types, python modules, and where HTTP jobs may connect.

Pure decisions, no I/O: the settings parse their values here (so a bad value refuses to
start with the fix in the message), and executors ask here before they run anything.
A refusal is a sentence for people: what was refused, by which rule, and what to set
to allow it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

JOB_TYPES = ("python", "shell", "http")
# Shell runs any command as the worker's user: only where the operator says so (and on
# `chronolog up`'s embedded first run, which turns it on for its own workers).
DEFAULT_JOB_TYPES = ("python", "http")
ANY_MODULE = "*"

JOB_TYPES_SETTING = "CHRONOLOG_WORKER_JOB_TYPES"
MODULES_SETTING = "CHRONOLOG_WORKER_PYTHON_MODULES"
ALLOW_SETTING = "CHRONOLOG_HTTP_ALLOW"

_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\.?$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,62})(\.[a-z0-9_][a-z0-9_-]{0,62})*$")
_SHARED = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: private in practice
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the last 32 bits are an IPv4 address


class PolicyError(ValueError):
    """A policy setting that cannot be used; the message says what to write instead."""


# --- parsing the settings ------------------------------------------------------------


def _items(raw: str) -> list[str]:
    return [item.strip() for item in raw.split(",") if item.strip()]


def parse_job_types(raw: str) -> tuple[str, ...]:
    """``python,http`` -> ("python", "http"); unknown types are errors."""
    types = [t.lower() for t in _items(raw)]
    if not types:
        raise PolicyError(
            f"names no job type; write some of {','.join(JOB_TYPES)}, e.g. python,http"
        )
    unknown = [t for t in types if t not in JOB_TYPES]
    if unknown:
        raise PolicyError(
            f"{unknown[0]!r} is not a job type; write some of {','.join(JOB_TYPES)}, "
            "e.g. python,http"
        )
    return tuple(dict.fromkeys(types))


def parse_module_prefixes(raw: str) -> tuple[str, ...]:
    """``jobs.,reports.`` -> ("jobs", "reports"); ``*`` alone allows every module."""
    items = _items(raw)
    if items == [ANY_MODULE]:
        return (ANY_MODULE,)
    if not items:
        raise PolicyError("names no module; write package prefixes, e.g. jobs.,reports. (or *)")
    for item in items:
        if not _MODULE.match(item):
            raise PolicyError(
                f"{item!r} is not a module prefix; write dotted package names, e.g. "
                "jobs.,reports. (or * alone for any module)"
            )
    return tuple(dict.fromkeys(item.rstrip(".") for item in items))


@dataclass(frozen=True, slots=True)
class AllowEntry:
    """One ``CHRONOLOG_HTTP_ALLOW`` entry: a host name, or a network; a port or any."""

    text: str
    host: str | None = None
    network: IPNetwork | None = None
    port: int | None = None

    def allows(self, host: str, port: int, address: IPAddress) -> bool:
        if self.port is not None and self.port != port:
            return False
        if self.host is not None:
            return self.host == host
        assert self.network is not None
        return plain(address) in self.network or address in self.network


def parse_allow(raw: str) -> tuple[AllowEntry, ...]:
    """``api.internal,10.1.0.0/16,127.0.0.1:8080,[::1]:9000`` -> entries; bad ones are errors."""
    return tuple(_allow_entry(item) for item in _items(raw))


def _allow_entry(item: str) -> AllowEntry:
    example = "e.g. api.internal,api.internal:8080,10.1.0.0/16,127.0.0.1:8080,[::1]:9000"
    if "://" in item or "@" in item:
        raise PolicyError(f"{item!r}: write a host, host:port or CIDR, not a URL; {example}")
    if "/" in item:
        try:
            return AllowEntry(item, network=ipaddress.ip_network(item, strict=True))
        except ValueError as exc:
            raise PolicyError(f"{item!r} is not a CIDR network ({exc}); {example}") from None
    host, port = _split_port(item, example)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        name = host.lower().rstrip(".")
        if not _HOSTNAME.match(name):
            raise PolicyError(f"{item!r} is not a host name or address; {example}") from None
        return AllowEntry(item, host=name, port=port)
    return AllowEntry(item, network=ipaddress.ip_network(address), port=port)


def _split_port(item: str, example: str) -> tuple[str, int | None]:
    if item.startswith("["):  # [v6] or [v6]:port
        host, _, rest = item[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise PolicyError(f"{item!r} is not [ADDRESS] or [ADDRESS]:PORT; {example}")
        return host, _port(item, rest[1:], example) if rest else None
    if item.count(":") == 1:
        host, _, port = item.partition(":")
        return host, _port(item, port, example)
    return item, None  # a name, an IPv4 address, or a bare IPv6 address


def _port(item: str, raw: str, example: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise PolicyError(f"{item!r}: {raw!r} is not a TCP port (1-65535); {example}")
    return int(raw)


# --- the SSRF rules -------------------------------------------------------------------


def plain(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 form carries (mapped, 6to4, NAT64), else the address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address in _NAT64:
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address


def address_rule(address: IPAddress) -> str | None:
    """Which rule refuses ``address`` (a phrase), or None for a public address."""
    carried = plain(address)
    rule = _rule(carried)
    if rule is not None and carried != address:
        return f"{rule} ({carried}, in the IPv6 form {address})"
    return rule or _rule(address)


# In order: the first that matches names the rule in the refusal.
_RULES: tuple[tuple[Callable[[IPAddress], bool], str], ...] = (
    (lambda ip: ip.is_loopback, "a loopback address"),
    (
        lambda ip: ip.is_link_local,
        "a link-local address (169.254.0.0/16 or fe80::/10; cloud metadata lives there)",
    ),
    (lambda ip: ip.is_unspecified, "the unspecified address"),
    (lambda ip: ip.is_multicast, "a multicast address"),
    (lambda ip: ip in _SHARED, "a shared (carrier-grade NAT, 100.64.0.0/10) address"),
    (lambda ip: ip.is_reserved, "a reserved address"),
    (lambda ip: ip.is_private, "a private address"),
    (lambda ip: not ip.is_global, "an address that is not publicly routable"),
)


def _rule(ip: IPAddress) -> str | None:
    return next((phrase for matches, phrase in _RULES if matches(ip)), None)


@dataclass(frozen=True, slots=True)
class Target:
    """Where one HTTP request goes: the URL's host and port, and what the host resolved to."""

    host: str
    port: int
    addresses: Sequence[str]


def check_target(target: Target, allow: Iterable[AllowEntry]) -> tuple[tuple[str, ...], str | None]:
    """(the addresses it may connect to, None) or ((), why it is refused).

    Every resolved address must pass, not only the one used: a name that resolves to a
    public and a private address could otherwise be steered to either.
    """
    allow = tuple(allow)
    host = target.host.lower().rstrip(".")
    if not target.addresses:
        return (), f"{target.host} resolved to no address"
    for text in target.addresses:
        address = ipaddress.ip_address(text.partition("%")[0])
        rule = address_rule(address)
        if rule is None or any(entry.allows(host, target.port, address) for entry in allow):
            continue
        return (), _refusal(target, address, rule)
    return tuple(target.addresses), None


def _refusal(target: Target, address: IPAddress, rule: str) -> str:
    literal = _literal(target.host) == address
    subject = f"{address} is" if literal else f"{target.host} resolves to {address},"
    shown = f"[{address}]" if address.version == 6 else str(address)
    alternatives = "a CIDR" if literal else f"{target.host}, or a CIDR"
    where = f"[{target.host}]" if ":" in target.host else target.host
    return (
        f"refused to connect to {where}:{target.port}: {subject} {rule}. HTTP jobs do "
        "not reach loopback, link-local, private or reserved addresses; to allow this one, "
        f"add {shown}:{target.port} (or {alternatives}) to {ALLOW_SETTING} on the worker"
    )


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


# --- the worker's policy ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ExecutorPolicy:
    """What one worker runs. Empty ``python_modules``: the modules of its app dir."""

    job_types: tuple[str, ...] = DEFAULT_JOB_TYPES
    python_modules: tuple[str, ...] = ()
    http_allow: tuple[AllowEntry, ...] = field(default=())

    def type_refusal(self, job_type: str) -> str | None:
        if job_type in self.job_types:
            return None
        wanted = ",".join([*self.job_types, job_type])
        return (
            f"this worker does not run {job_type} jobs (it runs {', '.join(self.job_types)}); "
            f"to run them, start a worker with {JOB_TYPES_SETTING}={wanted} "
            "(or --job-types)"
        )

    def module_refusal(self, function: str, in_app_dir: bool) -> str | None:
        """Why the python job ``function`` may not run here; ``in_app_dir`` says whether
        its top-level package is a module or package in the worker's app dir."""
        module = module_of(function)
        if self.python_modules == (ANY_MODULE,):
            return None
        if self.python_modules:
            if any(module == p or module.startswith(p + ".") for p in self.python_modules):
                return None
            allowed = ", ".join(p + "." for p in self.python_modules)
            return (
                f"module {module!r} of {function!r} is outside this worker's python modules "
                f"({allowed}); to run it, add {module.split('.')[0]}. to {MODULES_SETTING}"
            )
        if in_app_dir:
            return None
        return (
            f"module {module!r} of {function!r} is not in this worker's app dir, and "
            f"{MODULES_SETTING} is not set, so only app-dir modules run; to run it, set "
            f"{MODULES_SETTING}={module.split('.')[0]}. (package prefixes, comma-separated)"
        )


def defined_in(python_modules: tuple[str, ...], function: str) -> list[str] | None:
    """The packages ``function`` must be defined in once loaded (None: any): the allowed
    prefixes, or by default the top-level package its reference names."""
    if python_modules == (ANY_MODULE,):
        return None
    return list(python_modules) or [module_of(function).split(".")[0]]


def module_of(function: str) -> str:
    """``reports.daily:run`` and ``reports.daily.run`` -> ``reports.daily``."""
    if ":" in function:
        return function.partition(":")[0]
    return function.rpartition(".")[0] or function
