"""A supervisord plugin for PID 1: shut down when supervisord alone would not.

supervisord stops everything on SIGTERM, SIGINT or SIGQUIT (supervisor docs,
"Signals"). Two cases it misses, both handled here by setting its mood to
SHUTDOWN, as ``supervisorctl shutdown`` does
(``supervisor.rpcinterface.SupervisorNamespaceRPCInterface.shutdown``), and one
race it loses:

- **fail-fast**: supervisord never stops on its own when a process goes FATAL
  (it gave up restarting it), and it always exits 0. With ``fail_fast`` on, the
  first FATAL process while supervisord is RUNNING shuts it down; its name is
  kept in :data:`fatal`, which :mod:`entrypoint.supervisord` turns into exit
  code 1, so the container stops and its restart policy takes over. A FATAL
  process while supervisord already stops (``docker stop`` during a restart
  loop) is no failure.
- **a stop signal during start-up**: supervisord installs its signal handlers
  only after loading its config and plugins. Until then :func:`remember_stop`
  handles the stop signals (:mod:`entrypoint.supervisord` installs it); one
  that came before this plugin was loaded makes supervisord stop before it
  spawns anything.
- **a stop signal lost by a program just forked**: supervisord signals a
  program it forked in the same loop iteration before the child has exec'd
  (the child still has supervisord's handlers, or no process group yet), so the
  program never sees it and is killed after ``stopwaitsecs`` (10 s). While
  supervisord stops, every process still STOPPING :data:`RESEND_AFTER_SECONDS`
  later gets its stop signal once more (harmless for one that got it: a stop
  request is a flag).

And one report: a process that has not exited ``stopwaitsecs`` after its stop
signal is SIGKILLed by supervisord, which says so only in its own log file;
here one ``stop_timeout`` JSON line on stdout names it (:func:`_report_kills`).

supervisord loads this through its documented ``[rpcinterface:x]`` extension
point, which calls the factory with the supervisord instance each time the
main loop starts, after supervisord cleared its event subscriptions. The
factory subscribes to ``ProcessStateFatalEvent`` in-process
(``supervisor.events``), so unlike an event listener it cannot miss the event
when a listener's buffer overflows. The interface adds one read-only XML-RPC
method, ``pid1.getFatalProcess``.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from typing import Any

from supervisor import events
from supervisor.datatypes import boolean
from supervisor.states import ProcessStates, SupervisorStates

RESEND_AFTER_SECONDS = 0.3
fatal: list[str] = []  # "group:name" of the FATAL process that stopped supervisord
early_stop: list[int] = []  # stop signals received before supervisord's own handlers
_supervisord: list[Any] = []  # the running supervisord instance, once the factory ran


def remember_stop(signum: int, _frame: Any) -> None:
    """Signal handler until supervisord's: shut it down now, or as soon as it is loaded."""
    early_stop.append(signum)
    if _supervisord:
        _supervisord[-1].options.mood = SupervisorStates.SHUTDOWN


class Pid1Interface:
    """XML-RPC namespace ``pid1``: reports whether fail-fast stopped supervisord."""

    def __init__(self, fail_fast: bool) -> None:
        self.fail_fast = fail_fast

    def getFatalProcess(self) -> str:  # noqa: N802 - XML-RPC method names are camelCase
        """Return ``"group:name"`` of the process that triggered fail-fast, else ``""``."""
        return fatal[0] if fatal else ""


def make_interface(supervisord: Any, **config: str) -> Pid1Interface:
    """Shut ``supervisord`` down on an early stop signal, and on the first FATAL if ``fail_fast``.

    Raises :class:`ValueError` (supervisord then refuses to start) if
    ``fail_fast`` is missing or not a supervisor boolean.
    """
    value = config.get("fail_fast", "")
    try:
        fail_fast = bool(boolean(value))
    except ValueError:
        raise ValueError(f"fail_fast must be true or false, got {value!r}") from None
    _supervisord[:] = [supervisord]
    if early_stop:
        supervisord.options.mood = SupervisorStates.SHUTDOWN  # fenced: tests/test_fences.py

    def on_fatal(event: Any) -> None:
        options = supervisord.options
        if fatal or options.mood < SupervisorStates.RUNNING:
            return
        process = event.process
        group = process.group.config.name if process.group is not None else ""
        fatal.append(f"{group}:{process.config.name}")
        options.mood = SupervisorStates.SHUTDOWN  # as supervisorctl shutdown does
        options.logger.critical(f"{fatal[0]} is FATAL: shutting down (fail_fast)")

    if fail_fast:
        events.subscribe(events.ProcessStateFatalEvent, on_fatal)  # fenced: tests/test_fences.py
    _resend_stop_signals_while_stopping(supervisord)
    _report_kills(supervisord)
    return Pid1Interface(fail_fast)


def processes(supervisord: Any) -> Iterator[Any]:
    """Every process (``Subprocess``) of every group supervisord runs."""
    for group in supervisord.process_groups.values():  # fenced: tests/test_fences.py
        yield from group.processes.values()


def signal_process(process: Any, pid: int, signum: int) -> None:
    """Send ``signum`` to ``pid``, or to its process group if the program says ``stopasgroup``.

    A process that exited meanwhile is no error.
    """
    with contextlib.suppress(OSError):
        os.kill(-pid if process.config.stopasgroup else pid, signum)


def _stopping(supervisord: Any) -> Iterator[Any]:
    """Each process supervisord has STOPPING, with a pid."""
    for process in processes(supervisord):
        if process.pid and process.get_state() == ProcessStates.STOPPING:
            yield process


def _report_kills(supervisord: Any) -> None:
    """Wrap the main loop's poll: log each process that supervisord is about to SIGKILL.

    supervisord's ``Subprocess.transition`` (run right after the poll) sends
    SIGKILL to a STOPPING process once ``time.time()`` passes its ``delay``
    (stop signal + ``stopwaitsecs``); checking the same condition after the poll
    names it first. Each pid is reported once.
    """
    poller = supervisord.options.poller
    poll = poller.poll
    reported: set[int] = set()

    def poll_and_report(timeout: float) -> Any:
        result = poll(timeout)
        now = time.time()
        for process in _stopping(supervisord):
            if process.pid not in reported and process.delay and now >= process.delay:
                reported.add(process.pid)
                _log_kill(process)
        return result

    poller.poll = poll_and_report


def _log_kill(process: Any) -> None:
    from entrypoint.supervisord import log_line  # the JSON logging stack, only when needed

    name = process.config.name
    wait = process.config.stopwaitsecs
    log_line(
        "ERROR",
        f"{name} did not exit within stopwaitsecs ({wait} s) of its stop signal:"
        " supervisord kills it with SIGKILL",
        event="stop_timeout",
        stopped_program=name,
        pid=process.pid,
        stopwaitsecs=wait,
    )


def _resend_stop_signals_while_stopping(supervisord: Any) -> None:
    """Wrap the main loop's poll: once, RESEND_AFTER_SECONDS into a stop, signal again."""
    poller = supervisord.options.poller
    poll = poller.poll
    due: list[float] = []  # when to send again; 0 once done

    def poll_and_resend(timeout: float) -> Any:
        if supervisord.options.mood < SupervisorStates.RUNNING:
            now = time.monotonic()
            if not due:
                due.append(now + RESEND_AFTER_SECONDS)
            elif due[0] and now >= due[0]:
                due[0] = 0
                for process in _stopping(supervisord):
                    signal_process(process, process.pid, process.config.stopsignal)
        return poll(timeout)

    poller.poll = poll_and_resend
