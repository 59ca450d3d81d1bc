"""Secrets a worker fills into a run just before it executes, and redacts from what the
run produced.

A job refers to a secret as ``{"secret": "NAME"}`` (header values, and anywhere inside
its parameters or JSON body); only the name is ever in an event. The worker looks NAME
up in its secrets file (``CHRONOLOG_SECRETS_FILE``, a JSON object of names to values)
and then in its environment. Values are resolved once per run, in ``SecretExecutor``, so
the executors see an ordinary spec; every value resolved is then replaced by ``***`` in
the run's output, live output, error and result before any of it leaves the worker.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import stat
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Final

from events.errors import ChronologError
from events.secret_refs import SECRET_NAME, secret_name
from worker.execution import (
    CancelSignal,
    ExecutionRequest,
    ExecutionResult,
    Executor,
    OutputListener,
    RunCancel,
    ready,
)
from worker.output import truncation_marker
from worker.results import failed

log = logging.getLogger(__name__)

MASK: Final = "***"
# Chronolog's own settings (a database URL with its password...) are not for jobs to read.
RESERVED_PREFIX: Final = "CHRONOLOG_"
_TRUNCATED = re.compile(re.escape(truncation_marker(0)).replace("0", r"\d+"))


class SecretsFileError(ChronologError):
    """The secrets file cannot be used; the message says why and what to do."""


class SecretNotFound(ChronologError):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.name = name


class Secrets:
    """Where a worker finds secret values: its secrets file first, then its environment."""

    def __init__(self, environ: Mapping[str, str], from_file: Mapping[str, str]) -> None:
        self._environ = environ
        self._from_file = dict(from_file)

    def get(self, name: str) -> str:
        """The value of ``name``; ``SecretNotFound`` if it is unset or empty."""
        value = self._from_file.get(name)
        if value is None and not name.startswith(RESERVED_PREFIX):
            value = self._environ.get(name)
        if not value:
            raise SecretNotFound(name)
        return value


def read_secrets_file(path: Path) -> dict[str, str]:
    """The secrets in ``path``: a JSON object of names to non-empty strings.

    Checked when the worker starts, so a broken file stops it with the reason instead of
    failing runs one by one. A file others can read is used, with a warning.
    """
    try:
        mode = path.stat().st_mode
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise SecretsFileError(f"cannot read the secrets file {str(path)!r}: {e.strerror}") from e
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise SecretsFileError(  # the message of a JSONDecodeError quotes no content
            f"the secrets file {str(path)!r} is not JSON ({e}); write an object such as "
            '{"REPORTS_TOKEN": "..."}'
        ) from None
    if not isinstance(data, dict):
        raise SecretsFileError(
            f"the secrets file {str(path)!r} must hold a JSON object of names to values"
        )
    for name, value in data.items():
        if not SECRET_NAME.match(name):
            raise SecretsFileError(
                f"the secrets file {str(path)!r} has the name {name!r}; names are letters, "
                "digits and _ (not starting with a digit), at most 128"
            )
        if not isinstance(value, str) or not value:
            raise SecretsFileError(
                f"the secrets file {str(path)!r}: {name!r} must be a non-empty string"
            )
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning(
            "the secrets file can be read by others than its owner; chmod 600 it",
            extra={"path": str(path), "mode": oct(stat.S_IMODE(mode))},
        )
    return data


def load_secrets(path: Path | None, environ: Mapping[str, str]) -> Secrets:
    return Secrets(environ, read_secrets_file(path) if path is not None else {})


# --- resolving -----------------------------------------------------------------------


def _resolve_value(value: Any, lookup: Callable[[str], str]) -> Any:
    if (name := secret_name(value)) is not None:
        return lookup(name)
    if isinstance(value, dict):
        return {k: _resolve_value(v, lookup) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_value(v, lookup) for v in value]
    return value


def resolve_request(
    request: ExecutionRequest, secrets: Secrets
) -> tuple[ExecutionRequest, set[str]]:
    """``request`` with every reference replaced by its value, and the values used.

    ``SecretNotFound`` names the first reference that has no value here.
    """
    used: set[str] = set()

    def lookup(name: str) -> str:
        value = secrets.get(name)
        used.add(value)
        return value

    spec = request.spec
    headers = {**spec.headers, **{h: lookup(n) for h, n in spec.secret_headers.items()}}
    json_body = _resolve_value(spec.json_body, lookup)
    parameters = _resolve_value(request.parameters, lookup)
    if not used:
        return request, used
    spec = dataclasses.replace(spec, headers=headers, secret_headers={}, json_body=json_body)
    return dataclasses.replace(request, spec=spec, parameters=parameters), used


# --- redacting -----------------------------------------------------------------------


class Redactor:
    """Replaces the resolved values of one run by ``***``: longest first, so a value that
    contains another is masked whole."""

    def __init__(self, values: Iterable[str]) -> None:
        self.values = sorted({v for v in values if v}, key=len, reverse=True)
        if not self.values:
            raise ValueError("nothing to mask: a Redactor needs at least one non-empty value")
        self._text = re.compile("|".join(re.escape(v) for v in self.values))
        encoded = [v.encode() for v in self.values]
        self._bytes = re.compile(b"|".join(re.escape(v) for v in encoded))
        self._encoded = encoded

    def text(self, text: str) -> str:
        """``text`` masked. After a truncation marker, a value's cut-off end is masked too."""
        masked = self._text.sub(MASK, text)
        head = _TRUNCATED.match(masked)
        if head is None:
            return masked
        rest = masked[head.end() :]
        cut = max((len(s) for s in self._suffixes() if rest.startswith(s)), default=0)
        return masked if cut == 0 else head.group() + MASK + rest[cut:]

    def _suffixes(self) -> Iterable[str]:
        return (v[i:] for v in self.values for i in range(1, len(v)))

    def value(self, value: Any) -> Any:
        """A JSON value with every string in it (keys too) masked."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(str(k)): self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(v) for v in value]
        return value

    def result(self, result: ExecutionResult) -> ExecutionResult:
        error = self.text(result.error) if result.error is not None else None
        return dataclasses.replace(
            result,
            stdout=self.text(result.stdout),
            stderr=self.text(result.stderr),
            error=error,
            result=self.value(result.result),
        )

    def stream(self) -> StreamRedactor:
        return StreamRedactor(self._bytes, self._encoded)


class StreamRedactor:
    """Masks values in a byte stream fed chunk by chunk, also when a value is split across
    chunks: bytes that may be the start of a value wait for the next chunk (or ``flush``)."""

    def __init__(self, pattern: re.Pattern[bytes], values: list[bytes]) -> None:
        self._pattern = pattern
        self._values = values
        self._longest = max(len(v) for v in values)
        self._held = b""

    def feed(self, chunk: bytes) -> bytes:
        data = self._held + chunk
        # A value starting before ``safe`` lies whole inside ``data``: what the pattern did
        # not match there is no value. From ``safe`` on, a value may still be arriving.
        safe = len(data) - (self._longest - 1)
        out: list[bytes] = []
        pos = 0
        for match in self._pattern.finditer(data):
            if match.start() >= safe:
                break
            out += [data[pos : match.start()], MASK.encode()]
            pos = match.end()
        hold_from = self._hold_from(data, max(pos, safe))
        out.append(data[pos:hold_from])
        self._held = data[hold_from:]
        return b"".join(out)

    def _hold_from(self, data: bytes, start: int) -> int:
        """The first position from ``start`` where a value starts, or may start."""
        for i in range(start, len(data)):
            tail = data[i:]
            if any(v.startswith(tail) or tail.startswith(v) for v in self._values):
                return i
        return len(data)

    def flush(self) -> bytes:
        data, self._held = self._held, b""
        return self._pattern.sub(MASK.encode(), data)


# --- the executor ------------------------------------------------------------------------


class SecretExecutor(Executor):
    """Resolves a run's secret references before ``inner`` executes it, and masks the
    values in everything the run produced. A reference this worker cannot resolve fails
    the run at once, not retryable: another attempt on the same worker cannot help."""

    def __init__(self, inner: Executor, secrets: Secrets, worker_id: str) -> None:
        self._inner = inner
        self._secrets = secrets
        self._worker_id = worker_id

    def execute(self, request: ExecutionRequest, cancel: CancelSignal) -> ExecutionResult:
        prepared = self._prepare(request)
        if isinstance(prepared, ExecutionResult):
            return prepared
        resolved, redactor, flush = prepared
        if redactor is None:
            return self._inner.execute(resolved, cancel)
        try:
            result = self._inner.execute(resolved, cancel)
        finally:
            flush()
        return redactor.result(result)

    def execute_async(
        self, request: ExecutionRequest, cancel: RunCancel
    ) -> Awaitable[ExecutionResult]:
        prepared = self._prepare(request)
        if isinstance(prepared, ExecutionResult):
            return ready(prepared)
        resolved, redactor, flush = prepared
        if redactor is None:
            return self._inner.execute_async(resolved, cancel)
        return self._redacted(resolved, cancel, redactor, flush)

    async def _redacted(
        self,
        resolved: ExecutionRequest,
        cancel: RunCancel,
        redactor: Redactor,
        flush: Callable[[], None],
    ) -> ExecutionResult:
        try:
            result = await self._inner.execute_async(resolved, cancel)
        finally:
            flush()
        return redactor.result(result)

    def _prepare(
        self, request: ExecutionRequest
    ) -> ExecutionResult | tuple[ExecutionRequest, Redactor | None, Callable[[], None]]:
        """The failure of a reference this worker cannot resolve, or the resolved request
        (masking its live output), its redactor (None: no secrets) and the output flush."""
        started = time.monotonic()
        try:
            resolved, values = resolve_request(request, self._secrets)
        except SecretNotFound as e:
            log.warning("secret not found", extra={"run_id": request.run_id, "secret": e.name})
            return failed(
                f"secret {e.name!r} is not set on worker {self._worker_id}: set it in the "
                "worker's environment or its secrets file (CHRONOLOG_SECRETS_FILE)",
                started,
                retryable=False,
            )
        if not values:
            return request, None, lambda: None
        redactor = Redactor(values)
        listener, flush = _masked_listener(request.on_output, redactor)
        return dataclasses.replace(resolved, on_output=listener), redactor, flush

    def close(self) -> None:
        self._inner.close()

    async def aclose(self) -> None:
        await self._inner.aclose()


def _masked_listener(
    on_output: OutputListener | None, redactor: Redactor
) -> tuple[OutputListener | None, Callable[[], None]]:
    """A live-output listener that masks each stream, and what flushes what it holds."""
    if on_output is None:
        return None, lambda: None
    streams: dict[str, StreamRedactor] = {}

    def listener(stream: str, chunk: bytes) -> None:
        masked = streams.setdefault(stream, redactor.stream()).feed(chunk)
        if masked:
            on_output(stream, masked)

    def flush() -> None:
        for stream, redacting in streams.items():
            if rest := redacting.flush():
                on_output(stream, rest)

    return listener, flush
