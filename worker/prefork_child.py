"""The loop a prefork pool child runs: receive a task, call the job function, reply.

This module imports only the standard library and orjson, so a child starts fast. Its
stdout and stderr are pipes the pool reads per task; the reply travels on a socket.

Protocol (orjson documents, one per message):
- task: ``{"function": "module:function", "parameters": {...}}``
- reply: ``{"status": "succeeded", "result": <JSON>}`` or
  ``{"status": "failed", "error": "...", "exit_code": <int or null>}``
"""

from __future__ import annotations

import importlib
import inspect
import os
import signal
import sys
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any

import orjson

RESULT_LIMIT = 64 * 1024  # bytes of JSON a job may return, like one output stream

JobFunction = Callable[..., Any]

_IMPORTLIB_FILES = ("<frozen importlib", os.path.dirname(importlib.__file__) + os.sep)


class Terminated(BaseException):
    """Raised in the job by SIGTERM so its ``finally`` blocks run; the child then exits."""


def parse_function_ref(ref: str) -> tuple[str, str]:
    """Split ``module:qualname`` or ``module.function`` into module and attribute path."""
    module, sep, qualname = ref.partition(":")
    if not sep:
        module, _, qualname = ref.rpartition(".")
    if not module or not qualname:
        raise ValueError(f"function {ref!r} is not 'module:function' or 'module.function'")
    return module, qualname


def load_function(ref: str) -> JobFunction:
    """Import the module named by ``ref`` and return the callable it names."""
    module_name, qualname = parse_function_ref(ref)
    target: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise TypeError(f"{ref!r} is a {type(target).__name__}, not a function")
    return target  # type: ignore[no-any-return]


class TaskRunner:
    """Runs tasks in this process, importing each job function once."""

    def __init__(self) -> None:
        self._functions: dict[str, JobFunction] = {}

    def run(self, task: dict[str, Any]) -> bytes:
        """Run one task and return the encoded reply, with the job's output flushed."""
        try:
            return self._run(task["function"], task["parameters"])
        finally:
            _restore_streams()

    def _run(self, ref: str, parameters: dict[str, Any]) -> bytes:
        try:
            function = self._function(ref)
        except Exception as exc:
            _print_job_traceback(exc)
            return _failure(f"cannot load job function {ref!r}: {_describe(exc)}")
        try:
            value = _call(function, parameters)
        except SystemExit as exc:
            return _exit_reply(exc)
        except Exception as exc:
            _print_job_traceback(exc)
            return _failure(_describe(exc))
        return _success(value)

    def _function(self, ref: str) -> JobFunction:
        function = self._functions.get(ref)
        if function is None:
            function = self._functions[ref] = load_function(ref)
        return function


def serve(conn: Connection) -> None:
    """Answer tasks on ``conn`` until the pool closes it."""
    runner = TaskRunner()
    while True:
        try:
            message = conn.recv_bytes()
        except EOFError:
            return
        reply = runner.run(orjson.loads(message))
        conn.send_bytes(reply)


def main(fd: int) -> None:
    """Entry point of a pool child; ``fd`` is its end of the control socket."""
    signal.signal(signal.SIGTERM, _raise_terminated)
    # Pipes are block-buffered by default: line buffering keeps the output of a job that
    # is killed (a timeout) up to its last complete line.
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    try:
        serve(Connection(fd))
    except Terminated:
        sys.exit(128 + signal.SIGTERM)


def _call(function: JobFunction, parameters: dict[str, Any]) -> Any:
    value = function(**parameters)
    if inspect.iscoroutine(value):
        import asyncio  # only for async jobs: keeps child start-up fast

        value = asyncio.run(value)
    return value


def _success(value: Any) -> bytes:
    try:
        encoded = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        kind = type(value).__name__
        return _failure(f"the return value ({kind}) is not JSON-serialisable: {exc}")
    if len(encoded) > RESULT_LIMIT:
        return _failure(
            f"the return value is {len(encoded)} bytes of JSON; at most {RESULT_LIMIT} are kept"
        )
    return b'{"status":"succeeded","result":' + encoded + b"}"


def _failure(error: str, exit_code: int | None = None) -> bytes:
    return orjson.dumps({"status": "failed", "error": error, "exit_code": exit_code})


def _exit_reply(exc: SystemExit) -> bytes:
    # sys.exit() from a job ends the job, not the pool child: judge it like a process exit.
    if exc.code is None or exc.code == 0:
        return _success(None)
    code = exc.code if isinstance(exc.code, int) else 1
    return _failure(f"the job called sys.exit({exc.code!r})", exit_code=code)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _print_job_traceback(exc: Exception) -> None:
    """Print the traceback to the job's stderr, without the pool's and importlib's frames."""
    report = traceback.TracebackException.from_exception(exc)
    job_frames = [frame for frame in report.stack if not _is_internal(frame.filename)]
    report.stack = traceback.StackSummary.from_list(job_frames)
    sys.__stderr__.write("".join(report.format()))  # type: ignore[union-attr]


def _is_internal(filename: str) -> bool:
    return filename == __file__ or filename.startswith(_IMPORTLIB_FILES)


def _restore_streams() -> None:
    # A job may have swapped sys.stdout/sys.stderr; flush what it printed and put the
    # pipes back, so everything is in the pipe before the reply is sent.
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # the job closed it: nothing left to flush
            pass
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated
