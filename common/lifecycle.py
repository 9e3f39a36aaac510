"""Running a worker: its shape, its lifespan, its loop, and the stop every program shares.

SIGTERM and SIGINT request a stop. A periodic worker finishes the call in
flight, then stops; the wait between calls wakes at once, whatever
``loop_sleep_seconds`` is. A long-running worker's ``serve`` sees ``ctx.stop``
set (an async one is cancelled if it still runs :data:`CANCEL_AFTER_SECONDS`
later). Then the worker logs ``shutting_down``, its lifespan exits, it logs
``shutdown_complete`` and exits 0. See :mod:`common.worker` for the contract.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import time
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

from common import heap, logs
from common.errors import FatalError
from common.metrics import WorkerMetrics
from common.worker import AsyncContext, BaseContext, Context

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
CANCEL_AFTER_SECONDS = 1.0
log = logging.getLogger("lifecycle")


class StopSignal:
    """Turns SIGTERM/SIGINT into a stop request that also wakes :meth:`wait`.

    Uses :func:`signal.set_wakeup_fd` and a pipe: the C-level handler writes a
    byte, so a ``select`` on the pipe returns at once. Create it in the main thread.
    """

    def __init__(self) -> None:
        self.requested: int | None = None
        self._read_fd, write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(write_fd, False)
        signal.set_wakeup_fd(write_fd)
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = signum

    def is_set(self) -> bool:
        """True once a stop was requested."""
        return self.requested is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Wait ``timeout`` seconds (None: no limit) or until a stop; return :meth:`is_set`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.requested is None:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            select.select([self._read_fd], [], [], remaining)
            with contextlib.suppress(BlockingIOError):
                os.read(self._read_fd, 512)
        return self.is_set()

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` or until a stop is requested, whichever comes first."""
        self.wait(seconds)


def is_async(function: Callable[..., Any]) -> bool:
    """True for an ``async def`` function (also through ``functools.partial``)."""
    import inspect  # already loaded: dataclasses imports it

    return inspect.iscoroutinefunction(function)


def worker_shape(module: ModuleType) -> tuple[str, Callable[..., Any]]:
    """``("periodic", run_once)`` or ``("long-running", serve)``; :class:`FatalError` otherwise."""
    found = [(shape, getattr(module, name, None)) for shape, name in
             (("periodic", "run_once"), ("long-running", "serve"))]  # fmt: skip
    defined = [(shape, fn) for shape, fn in found if fn is not None]
    if len(defined) != 1 or not callable(defined[0][1]):
        raise FatalError(
            f"{module.__name__} must define exactly one of run_once(ctx) or serve(ctx)"
        )
    return defined[0]


def _started(ctx: BaseContext[Any]) -> None:
    ctx.metrics.started()
    log.info("%s started", ctx.program, extra={"event": logs.STARTUP_SUCCESS})
    heap.trim()  # start-up's garbage: every import is done


def _shutting_down(ctx: BaseContext[Any], returned_early: bool) -> None:
    if returned_early:
        log.warning(
            "serve returned before a stop was requested; supervisord restarts %s",
            ctx.program,
            extra={"event": "serve_returned"},
        )
    log.info("%s shutting down", ctx.program, extra={"event": logs.SHUTTING_DOWN})


def _stopped(ctx: BaseContext[Any]) -> None:
    ctx.metrics.stopped()
    log.info("%s stopped", ctx.program, extra={"event": logs.SHUTDOWN_COMPLETE})


@contextlib.contextmanager
def _iteration(metrics: WorkerMetrics) -> Iterator[None]:
    """Time and count one ``run_once`` call; log and swallow an exception it raises."""
    started = time.perf_counter()
    failed = False
    try:
        yield
    except Exception as exc:
        failed = True
        log.exception(
            "iteration failed: %s: %s", type(exc).__name__, exc, extra={"event": "iteration_failed"}
        )
    metrics.iteration_finished(time.perf_counter() - started, failed)


def _no_lifespan(ctx: object) -> contextlib.AbstractContextManager[None]:
    return contextlib.nullcontext()


def run_sync(ctx: Context[Any], shape: str, work: Callable[..., Any], lifespan: Any) -> None:
    """Run a blocking worker until a stop; an escaping exception crashes it (``app_up`` 0)."""
    ctx.stop = stop = StopSignal()
    manager = (lifespan or _no_lifespan)(ctx)
    if not hasattr(manager, "__enter__"):
        raise FatalError("lifespan of a blocking worker must be a @contextmanager (not async)")
    try:
        with manager as ctx.state:
            _started(ctx)
            if shape == "periodic":
                while not stop.is_set():
                    with _iteration(ctx.metrics):
                        work(ctx)
                    stop.sleep(ctx.loop_sleep_seconds)
            else:
                work(ctx)
            _shutting_down(ctx, not stop.is_set())
    except BaseException:
        ctx.metrics.stopped()
        raise
    _stopped(ctx)


def run_async(ctx: AsyncContext[Any], shape: str, work: Callable[..., Any], lifespan: Any) -> None:
    """Run an asyncio worker in :func:`asyncio.run` until a stop; see :func:`run_sync`."""
    import asyncio  # here: the blocking worker and the exporter need not load it

    asyncio.run(_run_async(ctx, shape, work, lifespan))


async def _run_async(
    ctx: AsyncContext[Any], shape: str, work: Callable[..., Any], lifespan: Any
) -> None:
    import asyncio

    ctx.stop = stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    manager: Any = (lifespan or _no_lifespan)(ctx)
    if not hasattr(manager, "__aenter__"):
        manager = _async_of(manager)
    try:
        async with manager as ctx.state:
            _started(ctx)
            if shape == "periodic":
                while not stop.is_set():
                    with _iteration(ctx.metrics):
                        await work(ctx)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), ctx.loop_sleep_seconds)
            else:
                await _serve(ctx, work)
            _shutting_down(ctx, not stop.is_set())
    except BaseException:
        ctx.metrics.stopped()
        raise
    _stopped(ctx)


@contextlib.asynccontextmanager
async def _async_of(manager: Any) -> Any:
    """A sync lifespan used by an async worker."""
    with manager as state:
        yield state


async def _serve(ctx: AsyncContext[Any], serve: Callable[..., Any]) -> None:
    """Await ``serve(ctx)``; after a stop, cancel it if it still runs 1 s later."""
    import asyncio

    task = asyncio.ensure_future(serve(ctx))
    stopped = asyncio.ensure_future(ctx.stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not task.done():
        await asyncio.wait({task}, timeout=CANCEL_AFTER_SECONDS)
    if not task.done():
        log.warning(
            "serve still runs %g s after the stop request: cancelling it",
            CANCEL_AFTER_SECONDS,
            extra={"event": "serve_cancelled"},
        )
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return
    task.result()  # re-raises what serve raised
