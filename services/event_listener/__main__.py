"""Run the event listener: ``app-events`` or ``python -m services.event_listener``.

supervisord starts it from ``[eventlistener:event_listener]``. Its stdout is
the listener protocol, so its own log lines go to stderr (fd 2).
"""

from __future__ import annotations

import contextlib
import io
import logging
import signal
import sys

from common import heap, logs
from common.config import Settings
from common.metrics import check_multiproc_dir
from common.program import program_name, run_program
from services.event_listener.listener import Handler, serve

PROGRAM = program_name("event_listener")
log = logging.getLogger("event_listener")


class StopRequested(BaseException):
    """Raised by the SIGTERM/SIGINT handler to leave the blocking read.

    A BaseException, so that ``except Exception`` around an event's handling
    cannot swallow it (the listener would then never stop).
    """


_requested: list[int] = []  # the stop signal that came, once one did


def _stop(signum: int, frame: object) -> None:
    """Leave the blocking read at once; and say so where no exception can be lost.

    Raised from a signal handler, the exception lands wherever the main
    thread is: inside a weakref callback or a ``__del__`` run by the garbage
    collector, Python prints it ("Exception ignored in") and drops it. Then
    :data:`_requested` stops :func:`serve` before its next wait (a TICK_5
    comes every 5 s), instead of the listener waiting for SIGKILL.
    """
    for stop_signal in (signal.SIGTERM, signal.SIGINT):  # one stop is enough
        signal.signal(stop_signal, signal.SIG_IGN)
    _requested.append(signum)
    raise StopRequested


def _unraisable(unraisable: sys.UnraisableHookArgs) -> None:
    """A stop dropped as an unraisable exception is expected (see :func:`_stop`): no text."""
    if not isinstance(unraisable.exc_value, StopRequested):
        sys.__unraisablehook__(unraisable)


def _main(settings: Settings) -> None:
    sys.unraisablehook = _unraisable
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    with contextlib.suppress(StopRequested):  # a stop may come at any point from here on
        # Binary-exact streams: the envelope's len counts characters of UTF-8 text.
        stdin = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace", newline="")
        stdout = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
        handler = Handler(settings, check_multiproc_dir() if settings.metrics_enabled else None)
        log.info("%s started", PROGRAM, extra={"event": logs.STARTUP_SUCCESS})
        heap.trim()  # start-up's garbage: every import is done
        serve(stdin, stdout, handler, stopping=lambda: bool(_requested))
    log.info("%s stopped", PROGRAM, extra={"event": logs.SHUTDOWN_COMPLETE})


def main() -> None:
    """Console-script entry point; exits 0 (stopped), 1 (crashed) or 78 (bad config)."""
    sys.exit(run_program(PROGRAM, _main, log_fd=2, capture_streams=False))


if __name__ == "__main__":
    main()
