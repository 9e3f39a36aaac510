"""The workers' loops and the stop signal every long-running program shares.

SIGTERM and SIGINT request a stop: the iteration in flight finishes, then the
loop logs ``shutting_down`` and ``shutdown_complete`` and the program exits 0.
The wait between iterations wakes at once on a stop request, whatever
``loop_sleep_seconds`` is.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import time
from collections.abc import Awaitable, Callable, Iterator

from common import heap, logs
from common.config import Settings
from common.metrics import WorkerMetrics

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
log = logging.getLogger("lifecycle")


class StopSignal:
    """Turns SIGTERM/SIGINT into a stop request that also wakes :meth:`sleep`.

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

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` or until a stop is requested, whichever comes first."""
        deadline = time.monotonic() + seconds
        while self.requested is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            select.select([self._read_fd], [], [], remaining)
            with contextlib.suppress(BlockingIOError):
                os.read(self._read_fd, 512)


def _started(program: str, settings: Settings) -> WorkerMetrics:
    metrics = WorkerMetrics(program, settings.metrics_enabled)
    metrics.started()
    log.info("%s started", program, extra={"event": logs.STARTUP_SUCCESS})
    heap.trim()  # start-up's garbage: every import is done
    return metrics


def _stopped(program: str, metrics: WorkerMetrics) -> None:
    log.info("%s shutting down", program, extra={"event": logs.SHUTTING_DOWN})
    metrics.stopped()
    log.info("%s stopped", program, extra={"event": logs.SHUTDOWN_COMPLETE})


@contextlib.contextmanager
def _iteration(metrics: WorkerMetrics) -> Iterator[None]:
    """Time and count one ``run_once`` call; log and swallow an exception it raises."""
    started = time.perf_counter()
    failed = False
    try:
        yield
    except Exception:
        failed = True
        log.exception("iteration failed", extra={"event": "iteration_failed"})
    metrics.iteration_finished(time.perf_counter() - started, failed)


def run_sync_loop(program: str, settings: Settings, run_once: Callable[[], None]) -> None:
    """Call ``run_once()`` every ``loop_sleep_seconds`` until SIGTERM/SIGINT.

    An exception from ``run_once`` is logged and counted; the loop goes on.
    Anything else escaping (a bug in the loop itself) sets ``app_up`` to 0 and
    propagates: the program crashes with exit code 1.
    """
    stop = StopSignal()
    metrics = _started(program, settings)
    try:
        while stop.requested is None:
            with _iteration(metrics):
                run_once()
            stop.sleep(settings.loop_sleep_seconds)
    except BaseException:
        metrics.stopped()
        raise
    _stopped(program, metrics)


def run_async_loop(
    program: str, settings: Settings, run_once: Callable[[], Awaitable[None]]
) -> None:
    """Await ``run_once()`` every ``loop_sleep_seconds`` in an asyncio loop until a stop.

    Same contract as :func:`run_sync_loop`; the call in flight is never cancelled.
    """
    import asyncio  # here: the blocking worker and the exporter need not load it

    asyncio.run(_async_loop(program, settings, run_once))


async def _async_loop(
    program: str, settings: Settings, run_once: Callable[[], Awaitable[None]]
) -> None:
    import asyncio

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    metrics = _started(program, settings)
    try:
        while not stop.is_set():
            with _iteration(metrics):
                await run_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), settings.loop_sleep_seconds)
    except BaseException:
        metrics.stopped()
        raise
    _stopped(program, metrics)
