"""The loop a prefork pool child runs: receive a task, call the job function, reply.

This module imports only the standard library, orjson and ``worker.context``, so a child
starts fast. Its stdout and stderr are pipes the pool reads per task; the reply travels
on a socket.

Protocol (orjson documents, one per message):
- task: ``{"function": "module:function", "parameters": {...}, "context": {...},
  "defined_in": ["package", ...]}`` (``context``: ``RunContext.to_wire()``, optional;
  ``defined_in``: the packages the function must be defined in, optional: any)
- reply: ``{"status": "succeeded", "result": <JSON>}`` or
  ``{"status": "failed", "error": "...", "exit_code": <int or null>, "retryable": <bool>}``;
  either may carry ``"watch": {path: mtime_ns}``, the job-code files the task imported,
  so the pool can recycle this child once one of them changes on disk.
"""

from __future__ import annotations

import importlib
import inspect
import os
import signal
import sys
import sysconfig
import traceback
from collections.abc import Callable, Iterable
from multiprocessing.connection import Connection
from types import FrameType, ModuleType
from typing import Any

import orjson

from worker.context import CONVERT_ATTRIBUTE, RunContext, switch_to, traced

RESULT_LIMIT = 64 * 1024  # bytes of JSON a job may return, like one output stream

JobFunction = Callable[..., Any]

_IMPORTLIB_FILES = ("<frozen importlib", os.path.dirname(importlib.__file__) + os.sep)
# Installed code (the standard library, site-packages) changes only with a new release of
# the worker's environment, and Chronolog's own packages (also when installed editable,
# as run.sh does) only with a worker restart; everything else a job imports is job code,
# watched for edits. Not watching Chronolog's own files keeps the check before each task
# to the job's few files (a job importing chronolog would otherwise add dozens of stats).
_CHRONOLOG_PACKAGES = ("api", "chronolog", "events", "leases", "projector", "scheduler", "worker")
_INSTALLED = tuple(
    {
        os.path.join(sysconfig.get_paths()[name], "")
        for name in ("stdlib", "platstdlib", "purelib", "platlib")
    }
    | {
        os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), package, "")
        for package in _CHRONOLOG_PACKAGES
    }
)


class Terminated(BaseException):
    """Raised in the job by SIGTERM so its ``finally`` blocks run; the child then exits."""


class CannotLoad(Exception):
    """The job cannot be called as configured; another attempt would fail the same way."""


def parse_function_ref(ref: str) -> tuple[str, str]:
    """Split ``module:qualname`` or ``module.function`` into module and attribute path."""
    module, sep, qualname = ref.partition(":")
    if not sep:
        module, _, qualname = ref.rpartition(".")
    if not module or not qualname:
        raise ValueError(f"function {ref!r} is not 'module:function' or 'module.function'")
    return module, qualname


def load_function(ref: str) -> JobFunction:
    """Import the module named by ``ref`` and return the callable it names.

    ``CannotLoad`` when the reference, the module or the function is wrong; whatever
    else the module raises while it is imported propagates (it may be transient).
    """
    try:
        module_name, qualname = parse_function_ref(ref)
    except ValueError as exc:
        raise CannotLoad(str(exc)) from exc
    target: Any = _import(module_name)
    for part in qualname.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as exc:
            raise CannotLoad(f"cannot load job function {ref!r}: {exc}") from exc
    if not callable(target):
        raise CannotLoad(
            f"cannot load job function {ref!r}: it is a {type(target).__name__}, not a function"
        )
    return target  # type: ignore[no-any-return]


def _import(module_name: str) -> ModuleType:
    if module_name not in sys.modules:
        importlib.invalidate_caches()  # a module file created since this child started
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise CannotLoad(f"cannot import module {module_name!r}: {exc}") from exc
    except (ImportError, SyntaxError) as exc:
        raise CannotLoad(f"cannot import module {module_name!r}: {_describe(exc)}") from exc


def signature_of(function: JobFunction) -> inspect.Signature | None:
    """The signature to check parameters against; None when there is none to read."""
    try:
        return inspect.signature(function)
    except (TypeError, ValueError):
        return None  # some builtins: the call itself will tell


class LoadedFunctions:
    """Job functions by reference, each loaded once per child, with its signature."""

    def __init__(self) -> None:
        self._loaded: dict[str, tuple[JobFunction, inspect.Signature | None]] = {}

    def get(self, ref: str) -> tuple[JobFunction, inspect.Signature | None]:
        loaded = self._loaded.get(ref)
        if loaded is None:
            function = load_function(ref)
            loaded = self._loaded[ref] = (function, signature_of(function))
        return loaded


def check_defined_in(ref: str, function: JobFunction, packages: list[str] | None) -> None:
    """``CannotLoad`` unless ``function`` is defined in one of ``packages`` (None: any).

    The worker's policy checks the module a reference names; this checks where the
    object found there comes from, so ``reports:subprocess.run`` (a module the job's
    module imported) does not pass for a function of ``reports``.
    """
    if packages is None:
        return
    module = getattr(function, "__module__", None) or ""
    if any(module == p or module.startswith(p + ".") for p in packages):
        return
    allowed = ", ".join(p + "." for p in packages)
    raise CannotLoad(
        f"{ref!r} is defined in module {module!r}, outside this worker's python modules "
        f"({allowed}); refer to a function defined in them (CHRONOLOG_WORKER_PYTHON_MODULES)"
    )


def check_arguments(
    ref: str, signature: inspect.Signature | None, parameters: dict[str, Any]
) -> None:
    """``CannotLoad`` unless ``parameters`` bind to ``signature``: checked before the
    call, so a TypeError raised inside the job stays an ordinary (retryable) failure."""
    if signature is None:
        return
    try:
        signature.bind(**parameters)
    except TypeError as exc:
        plain = signature.replace(
            parameters=[p.replace(annotation=p.empty) for p in signature.parameters.values()],
            return_annotation=signature.empty,
        )
        raise CannotLoad(
            f"the parameters do not fit {ref}{plain}: {exc} (given: {sorted(parameters)})"
        ) from exc


def converted(ref: str, function: JobFunction, parameters: dict[str, Any]) -> dict[str, Any]:
    """The parameters as a ``@chronolog.job`` function takes them: its converter (pydantic,
    set by the decorator) turns JSON values into the annotated types (``"2026-12-03"`` ->
    a ``date``). A plain function gets them as they are. ``CannotLoad`` when they do not
    fit: another attempt would fail the same way."""
    convert = getattr(function, CONVERT_ATTRIBUTE, None)
    if convert is None:
        return parameters
    try:
        value: dict[str, Any] = convert(parameters)
    except ValueError as exc:
        raise CannotLoad(f"the parameters do not fit {ref}: {exc}") from exc
    return value


def watched_files(modules: Iterable[ModuleType]) -> dict[str, int]:
    """The job-code files among ``modules`` (not installed code), with their mtimes."""
    files: dict[str, int] = {}
    for module in modules:
        path = getattr(module, "__file__", None)
        if not isinstance(path, str) or path.startswith(_INSTALLED):
            continue
        try:
            files[path] = os.stat(path).st_mtime_ns
        except OSError:
            continue  # not a file (a zip import): nothing to watch
    return files


class TaskRunner:
    """Runs tasks in this process, importing each job function once."""

    def __init__(self) -> None:
        self._functions = LoadedFunctions()
        self._known_modules = set(sys.modules)

    def run(self, task: dict[str, Any]) -> bytes:
        """Run one task and return the encoded reply, with the job's output flushed."""
        raw_context = task.get("context")
        parameters: dict[str, Any] = task["parameters"]
        context = None if raw_context is None else RunContext.from_wire(raw_context, parameters)
        switch_to(context)
        try:
            with traced(context):
                reply = self._run(task["function"], parameters, task.get("defined_in"))
        finally:
            _restore_streams()
        return self._with_new_modules(reply)

    def _run(
        self, ref: str, parameters: dict[str, Any], defined_in: list[str] | None
    ) -> dict[str, Any]:
        try:
            function, signature = self._functions.get(ref)
            check_defined_in(ref, function, defined_in)
            check_arguments(ref, signature, parameters)
            parameters = converted(ref, function, parameters)
        except CannotLoad as exc:
            if isinstance(exc.__cause__, (ImportError, SyntaxError)):
                _print_job_traceback(exc.__cause__)  # points at the job's broken line
            return _failure(str(exc), retryable=False)
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
        return {"status": "succeeded", "result": value}

    def _with_new_modules(self, reply: dict[str, Any]) -> bytes:
        if len(sys.modules) != len(self._known_modules):
            new = sys.modules.keys() - self._known_modules
            self._known_modules = set(sys.modules)
            watch = watched_files(sys.modules[name] for name in new)
            if watch:
                reply["watch"] = watch
        return _encode(reply)


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
    # A .pyc is trusted when its source has the same size and mtime to the second: job
    # code rewritten within a second would run stale. Children compile job code afresh.
    sys.dont_write_bytecode = True
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


def _encode(reply: dict[str, Any]) -> bytes:
    if reply["status"] != "succeeded":
        return orjson.dumps(reply)
    value = reply["result"]
    try:
        encoded = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        kind = type(value).__name__
        error = f"the return value ({kind}) is not JSON-serialisable: {exc}"
        return orjson.dumps({**reply, **_failure(error)})
    if len(encoded) > RESULT_LIMIT:
        error = f"the return value is {len(encoded)} bytes of JSON; at most {RESULT_LIMIT} are kept"
        return orjson.dumps({**reply, **_failure(error)})
    watch = b',"watch":' + orjson.dumps(reply["watch"]) if "watch" in reply else b""
    return b'{"status":"succeeded","result":' + encoded + watch + b"}"


def _failure(error: str, exit_code: int | None = None, *, retryable: bool = True) -> dict[str, Any]:
    return {
        "status": "failed",
        "error": error,
        "exit_code": exit_code,
        "retryable": retryable,
        "result": None,
    }


def _exit_reply(exc: SystemExit) -> dict[str, Any]:
    # sys.exit() from a job ends the job, not the pool child: judge it like a process exit.
    if exc.code is None or exc.code == 0:
        return {"status": "succeeded", "result": None}
    code = exc.code if isinstance(exc.code, int) else 1
    return _failure(f"the job called sys.exit({exc.code!r})", exit_code=code)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _print_job_traceback(exc: BaseException) -> None:
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
