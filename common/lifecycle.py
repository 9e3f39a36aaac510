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
from common.worker import AsyncContext, BaseContext, Context, traced

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
CANCEL_AFTER_SECONDS = 1.0
EXIT_WITHIN_SECONDS = 2.0  # after shutdown_complete (or a crash), see exit_within
log = logging.getLogger("lifecycle")


class StopSignal:
    """Turns SIGTERM/SIGINT into a stop request that wakes every :meth:`wait`, in any thread.

    Two pipes: the C-level handler writes a byte to the wakeup pipe
    (:func:`signal.set_wakeup_fd`), so a ``select`` in the main thread returns
    at once and the Python-level handler runs; that handler sets
    :attr:`requested` and writes to the stop pipe, which is never read, so it
    stays readable: every waiter, whichever thread and whenever it looks, sees
    the stop. Create it in the main thread. A stop that came before (see
    :func:`catch_early_stop`) counts as requested.
    """

    def __init__(self) -> None:
        self.requested: int | None = None
        self._wakeup_fd, wakeup_write = os.pipe()
        self._stop_fd, self._stop_write = os.pipe()
        for fd in (self._wakeup_fd, wakeup_write, self._stop_write):
            os.set_blocking(fd, False)
        signal.set_wakeup_fd(wakeup_write)
        for signum in STOP_SIGNALS:
            signal.signal(signum, self._handle)
        if _early:
            self._handle(_early[0], None)

    def _handle(self, signum: int, frame: object) -> None:
        self.requested = signum
        with contextlib.suppress(BlockingIOError):
            os.write(self._stop_write, b"x")  # readable from now on, for every waiter

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
            ready, _, _ = select.select([self._wakeup_fd, self._stop_fd], [], [], remaining)
            if self._wakeup_fd in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wakeup_fd, 512)
        return self.is_set()

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` or until a stop is requested, whichever comes first."""
        self.wait(seconds)


_early: list[int] = []  # a stop signal that came before the worker's own handlers


def catch_early_stop() -> None:
    """Keep a SIGTERM/SIGINT that arrives while the worker starts (imports, settings).

    Without this, a stop during a slow import kills the program by the signal's
    default action, with no line; with it, the worker starts, sees the stop at
    once and stops cleanly.
    """
    for signum in STOP_SIGNALS:
        signal.signal(signum, lambda signum, _frame: _early.append(signum))


def exit_within(seconds: float, code: int) -> None:
    """Make sure the process ends ``seconds`` from now with ``code``, whatever still runs.

    A daemon thread waits, then names the non-daemon threads still alive (an
    executor's, the worker's own) in one ``exit_forced`` line and calls
    :func:`os._exit`: after ``shutdown_complete`` or a crash, no thread, no
    executor join and no swallowed cancellation keeps a worker from exiting.
    Further stop signals are ignored: the program is already on its way out.
    """
    import threading

    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)

    def force() -> None:
        time.sleep(seconds)
        alive = [t.name for t in threading.enumerate() if not t.daemon and t.is_alive()]
        log.warning(
            "still running %g s after the end (threads: %s): exiting now",
            seconds,
            ", ".join(alive) or "none",
            extra={"event": "exit_forced", "threads": alive},
        )
        os._exit(code)

    threading.Thread(target=force, name="exit-within", daemon=True).start()


def is_async(function: Callable[..., Any]) -> bool:
    """True for an ``async def`` function (also through a ``partial`` or a decorator).

    Also for a decorator that keeps ``__wrapped__``, or an object whose class's
    ``__call__`` is ``async def``.
    """
    import inspect  # already loaded: dataclasses imports it

    return any(
        inspect.iscoroutinefunction(candidate)
        for candidate in (
            function,
            inspect.unwrap(function),
            type(function).__dict__.get("__call__"),
        )
    )


def worker_shape(module: ModuleType) -> tuple[str, Callable[..., Any]]:
    """``("periodic", run_once)`` or ``("long-running", serve)``; :class:`FatalError` otherwise."""
    import inspect

    found = [(shape, getattr(module, name, None)) for shape, name in
             (("periodic", "run_once"), ("long-running", "serve"))]  # fmt: skip
    defined = [(shape, fn) for shape, fn in found if fn is not None]
    if len(defined) != 1 or not callable(defined[0][1]):
        raise FatalError(
            f"{module.__name__} must define exactly one of run_once(ctx) or serve(ctx)"
        )
    function = inspect.unwrap(defined[0][1])
    if inspect.isgeneratorfunction(function) or inspect.isasyncgenfunction(function):
        name = "run_once" if defined[0][0] == "periodic" else "serve"
        raise FatalError(f"{module.__name__}.{name} is a generator: use return, not yield")
    return defined[0]


def _not_awaitable(result: object, name: str) -> None:
    """A blocking worker's call returned a coroutine: it was never run; say so and stop."""
    if result is None:  # the usual case: nothing to import or check on the hot path
        return
    import inspect

    if inspect.isawaitable(result):
        close = getattr(result, "close", None)
        if close is not None:
            close()  # no "never awaited" warning on top
        raise FatalError(f"{name} returned an awaitable that nothing awaits: make it async def")


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
def _iteration(ctx: BaseContext[Any]) -> Iterator[None]:
    """Time and count one ``run_once`` call; log and swallow an exception it raises.

    With traces on, the call is a span ``run_once``, and the failure's line is
    written inside it (with its ``trace_id``).
    """
    started = time.perf_counter()
    failed = False
    with traced(ctx, "run_once") as outcome:
        try:
            yield
        except Exception as exc:
            failed = True
            if outcome is not None:
                outcome.failed(exc)
            log.exception(
                "iteration failed: %s: %s",
                type(exc).__name__,
                exc,
                extra={"event": "iteration_failed"},
            )
    ctx.metrics.iteration_finished(time.perf_counter() - started, failed)


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
                    result = None
                    with _iteration(ctx):
                        result = work(ctx)
                    _not_awaitable(result, "run_once")
                    stop.sleep(ctx.loop_sleep_seconds)
            else:
                _not_awaitable(work(ctx), "serve")
            _shutting_down(ctx, not stop.is_set())
    except BaseException:
        ctx.metrics.stopped()
        exit_within(EXIT_WITHIN_SECONDS, 1)
        raise
    _stopped(ctx)
    exit_within(EXIT_WITHIN_SECONDS, 0)


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
    if _early:
        stop.set()
    manager: Any = (lifespan or _no_lifespan)(ctx)
    if not hasattr(manager, "__aenter__"):
        manager = _async_of(manager)
    try:
        async with manager as ctx.state:
            _started(ctx)
            if shape == "periodic":
                while not stop.is_set():
                    with _iteration(ctx):
                        await work(ctx)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), ctx.loop_sleep_seconds)
            else:
                await _serve(ctx, work)
            _shutting_down(ctx, not stop.is_set())
    except BaseException:
        ctx.metrics.stopped()
        _end_async(loop, 1)
        raise
    _stopped(ctx)
    _end_async(loop, 0)


def _end_async(loop: Any, code: int) -> None:
    """Take the stop signals back from asyncio, then :func:`exit_within`.

    asyncio's close would restore SIG_DFL; after this, asyncio.run's executor
    join or a task that swallows its cancellation cannot hold the process.
    ``remove_signal_handler`` itself sets SIG_DFL, so the stop signals stay
    blocked until :func:`exit_within` has set SIG_IGN: a second SIGTERM (PID 1
    re-sends one) in between is discarded, never the process's end.
    """
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    for signum in STOP_SIGNALS:
        loop.remove_signal_handler(signum)
    exit_within(EXIT_WITHIN_SECONDS, code)
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


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
        await asyncio.wait({task}, timeout=CANCEL_AFTER_SECONDS)
        if not task.done():
            log.error(
                "serve ignored its cancellation: leaving it behind",
                extra={"event": "serve_cancelled"},
            )
        elif not task.cancelled() and task.exception() is not None:
            task.result()  # what it raised while being cancelled
        return
    task.result()  # re-raises what serve raised
