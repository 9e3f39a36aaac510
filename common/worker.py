"""What your worker's code receives: the context ``ctx`` (one place documents it all).

A worker is a folder ``services/<program>/`` with a ``worker.py`` that defines
exactly one of:

- ``run_once(ctx)`` (periodic): called every ``loop_sleep_seconds`` of that
  program; the call in flight is never interrupted. An exception is logged
  (``iteration_failed``), counted, and the loop goes on.
- ``serve(ctx)`` (long-running): runs until a stop is requested; it checks or
  waits on ``ctx.stop`` and calls ``ctx.heartbeat()`` while it is healthy. An
  async ``serve`` still running 1 s after the stop request is cancelled
  (``CancelledError`` at its current ``await``). Returning before a stop ends
  the program (exit 0, logged ``serve_returned``), raising crashes it (exit 1);
  supervisord restarts it either way.

Either may be ``async def`` (detected from the function). ``worker.py`` may also
define ``lifespan(ctx)``, a context manager (``@contextmanager``, or
``@asynccontextmanager`` for an async worker) entered before the first call
and exited after the last one, on a clean stop and on a crash; what it yields
is ``ctx.state``. ``services/<program>/settings.py`` may declare the worker's
own ``Settings`` (:mod:`common.settings`); they are ``ctx.settings``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from common.config import ProgramSettings, Settings
from common.metrics import WorkerMetrics

if TYPE_CHECKING:
    import asyncio

    from common.lifecycle import StopSignal
    from common.observability import Telemetry

S = TypeVar("S")
__all__ = ["AsyncContext", "Context", "NoSettings", "make_async_context", "make_context"]


@dataclass(frozen=True)
class NoSettings:
    """``ctx.settings`` of a worker that declares no ``Settings`` of its own."""


@dataclass
class BaseContext(Generic[S]):
    """The attributes every worker's ``ctx`` has; see :class:`Context` and :class:`AsyncContext`.

    - ``program``: the supervisord program name (``sync_worker``).
    - ``settings``: the worker's own declared settings (a frozen dataclass).
    - ``shared``: the settings every program shares (:class:`common.config.Settings`).
    - ``log``: a logger named after the program; every record is one JSON line.
    - ``state``: what ``lifespan`` yielded (None without a lifespan).
    - ``telemetry``: the tracer when traces are on (:mod:`common.observability`), else None.
    """

    program: str
    settings: S
    shared: Settings
    log: logging.Logger
    metrics: WorkerMetrics = dataclasses.field(repr=False)
    state: Any = None
    telemetry: Telemetry | None = dataclasses.field(default=None, repr=False)

    @property
    def section(self) -> ProgramSettings:
        """The program's resolved built-ins (``loop_sleep_seconds``...) and their sources."""
        return self.shared.program(self.program)

    @property
    def loop_sleep_seconds(self) -> float:
        """Seconds between two ``run_once`` calls, for this program."""
        return self.section.loop_sleep_seconds

    def heartbeat(self) -> None:
        """Say "alive and healthy": stamps ``app_last_heartbeat_timestamp_seconds`` (µs)."""
        self.metrics.heartbeat()

    @contextlib.contextmanager
    def work(self, name: str = "work", *, parent: object = None) -> Iterator[None]:
        """Count and time one unit of work: ``with ctx.work(): handle(message)``.

        Counts ``app_iterations_total`` and observes
        ``app_iteration_duration_seconds``; an exception is counted in
        ``app_iteration_errors_total`` and re-raised. A unit done is a heartbeat.
        With traces on, the unit is a span ``name`` (its log lines carry
        ``trace_id``), a child of the trace in ``parent`` (the message's
        headers holding a W3C ``traceparent``: a mapping, or name/value pairs
        as Kafka clients give them, ``str`` or ``bytes``) when given; with
        them off, ``name`` and ``parent`` cost nothing.
        """
        started = time.perf_counter()
        with traced(self, name, parent):
            try:
                yield
            except Exception:
                self.metrics.iteration_finished(time.perf_counter() - started, True)
                raise
            except BaseException:  # cancelled at a stop, or an exit: not a unit done nor failed
                raise
        self.metrics.iteration_finished(time.perf_counter() - started, False)
        self.metrics.heartbeat()

    def trace_headers(self) -> dict[str, str]:
        """The current span as W3C ``traceparent`` headers, for a message you send on.

        ``{}`` when traces are off: ``publish(body, headers=ctx.trace_headers())``
        is right either way.
        """
        return self.telemetry.headers() if self.telemetry else {}


def traced(ctx: BaseContext[Any], name: str, parent: object = None) -> Any:
    """The span of one unit of work (its :class:`~common.observability.Outcome`), or a no-op.

    ``ctx.telemetry.unit(name, parent)`` with traces on; else a
    :func:`contextlib.nullcontext`, whose ``with ... as`` value is None.
    """
    return ctx.telemetry.unit(name, parent) if ctx.telemetry else contextlib.nullcontext()


@dataclass
class Context(BaseContext[S]):
    """``ctx`` of a blocking worker. ``stop``: ``stop.is_set()``, ``stop.wait(seconds)``.

    ``ctx.stop.wait(5)`` sleeps 5 s or until a stop is requested (then True).
    """

    stop: StopSignal = dataclasses.field(default=None, repr=False)  # type: ignore[assignment]


@dataclass
class AsyncContext(BaseContext[S]):
    """``ctx`` of an asyncio worker. ``stop`` is an :class:`asyncio.Event`.

    ``await ctx.stop.wait()`` returns once a stop is requested; race it against
    your own I/O (``asyncio.wait(..., return_when=FIRST_COMPLETED)``).
    """

    stop: asyncio.Event = dataclasses.field(default=None, repr=False)  # type: ignore[assignment]


def make_context(
    settings: S, *, program: str = "test_worker", shared: Settings | None = None, state: Any = None
) -> Context[S]:
    """A ``ctx`` for a blocking worker's unit tests: metrics off, a stop you can set.

    ``ctx.stop`` is a :class:`threading.Event`: ``ctx.stop.set()`` requests the stop.
    ``ctx.log``'s level is DEBUG, so a handler a test attaches sees every record.
    """
    import threading

    stop: Any = threading.Event()
    return Context(program, settings, *_test_parts(program, shared), state, stop=stop)


def make_async_context(
    settings: S, *, program: str = "test_worker", shared: Settings | None = None, state: Any = None
) -> AsyncContext[S]:
    """A ``ctx`` for an asyncio worker's unit tests; ``ctx.stop`` is an :class:`asyncio.Event`."""
    import asyncio

    return AsyncContext(
        program, settings, *_test_parts(program, shared), state, stop=asyncio.Event()
    )


def _test_parts(program: str, shared: Settings | None) -> tuple[Settings, logging.Logger, Any]:
    shared = shared if shared is not None else Settings(metrics_enabled=False)
    log = logging.getLogger(program)
    log.setLevel(logging.DEBUG)  # a handler a test attaches sees every record (root: WARNING)
    return shared, log, WorkerMetrics(program, enabled=False)
