"""Python jobs: call ``module:function`` with the parameters as keyword arguments.

The call happens in a child of the prefork pool (see ``worker.prefork``), so a timeout or
a cancel can kill it, and whatever it spawned, without touching the worker. The pool
starts its children only when plain functions first need them.

On the worker's event loop (``execute_async``), an ``async def`` function runs instead as
a coroutine in the async pool's child (``worker.async_pool``), thousands at once. Which
kind a function is, the async child finds when it loads it; a plain function is then
remembered and goes to the prefork pool from there on (one round trip to learn it).
A job with ``pool: "thread"`` never goes to the prefork pool there: its plain function
runs on a thread of the async pool's child (see ``worker.async_pool``).
"""

from __future__ import annotations

import time

from worker.async_pool import AsyncPool
from worker.execution import CancelSignal, ExecutionRequest, ExecutionResult, Executor, RunCancel
from worker.policy import defined_in
from worker.prefork import DEFAULT_GRACE, ChildOptions, PreforkPool
from worker.results import failed


class PythonExecutor(Executor):
    """Runs python jobs on its own prefork pool of ``processes`` children.

    ``modules``: the worker's ``CHRONOLOG_WORKER_PYTHON_MODULES``; the child refuses a
    function defined outside them (``worker.policy.defined_in``).
    """

    def __init__(
        self,
        processes: int = 2,
        grace: float = DEFAULT_GRACE,
        options: ChildOptions | None = None,
        modules: tuple[str, ...] = (),
    ) -> None:
        # No child until the first plain (sync) function: a worker whose jobs are all
        # ``async def`` never pays their memory (~17 MiB each).
        self.pool = PreforkPool(processes, grace, options, prestart=0)
        self.async_pool = AsyncPool(grace, options)
        self.modules = modules
        self._sync_functions: set[str] = set()  # learnt from the async child: not async

    def execute(self, request: ExecutionRequest, cancel: CancelSignal) -> ExecutionResult:
        function = request.spec.function
        if not function:
            error = f"python job {request.job_id} names no function"
            return failed(error, time.monotonic(), retryable=False)
        return self.pool.run(
            function,
            request.parameters,
            request.timeout,
            cancel,
            on_output=request.on_output,
            context=request.context(),
            defined_in=defined_in(self.modules, function),
        )

    async def execute_async(self, request: ExecutionRequest, cancel: RunCancel) -> ExecutionResult:
        function = request.spec.function
        thread = request.spec.pool == "thread"
        if not function or (function in self._sync_functions and not thread):
            return await super().execute_async(request, cancel)
        result = await self.async_pool.run(
            function,
            request.parameters,
            request.timeout,
            cancel,
            on_output=request.on_output,
            context=request.context(),
            defined_in=defined_in(self.modules, function),
            thread=thread,
        )
        if result is None:
            self._sync_functions.add(function)
            return await super().execute_async(request, cancel)
        return result

    async def aclose(self) -> None:
        await self.async_pool.aclose()

    def close(self) -> None:
        self.async_pool.close()
        self.pool.close()

    def __enter__(self) -> PythonExecutor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
