"""A supervisord plugin for the worker programs: start the chosen ones, restart hung ones.

Loaded through supervisord's ``[rpcinterface:workers]`` extension point, like
:mod:`entrypoint.pid1`, with ``programs`` = ``APP_SUPERVISORD_PROGRAMS``
(``{program: {"start": bool, "watchdog_seconds": float}}``, written by
``app-entrypoint`` from the ``workers`` and ``watchdog_seconds`` settings). It
wraps the main loop's poll; the checks below run right after each poll, before
supervisord's own ``transition()`` of the processes.

- **Which workers start.** Every worker block says ``autostart=false`` (the
  entrypoint refuses one that does not), so the table never has to change per
  deployment; here each program with ``start`` is spawned once, the way
  supervisord's autostart does it (``Subprocess.spawn()`` when the process is
  STOPPED and was never started). The others stay STOPPED, startable with
  ``supervisorctl start``. No public API serves: autostart is read from the
  config only, and changing the config objects would make every later
  ``supervisorctl update`` see a changed group and restart it.
- **Watchdog.** Once a second, each RUNNING worker with ``watchdog_seconds`` > 0
  is judged by its freshness stamp (:func:`common.stamps.stamp`: last heartbeat
  or last iteration, from its own metric file). The age is measured on this
  process's monotonic clock from when the stamp last changed (or the process
  was first seen RUNNING: a new process gets the full ``watchdog_seconds``),
  so a wall-clock step restarts nothing. Older than ``watchdog_seconds``: the
  process (its process group with ``stopasgroup``) gets its ``stopsignal``, and
  SIGKILL ``kill_after_seconds`` later (default :data:`KILL_AFTER_SECONDS`) if
  it still runs (SIGSTOPped, blocked in C code, an event loop blocked by a
  sync call). supervisord sees an exit and restarts it (``autorestart=true``).
  Each restart is sent to the event listener as a ``REMOTE_COMMUNICATION``
  event ``watchdog_restart`` (one JSON line, and
  ``app_watchdog_restarts_total{program}``), the SIGKILL as ``watchdog_kill``.
- **Hangs count as failed starts.** A restart of a process that never made
  progress (its stamp never moved) counts like a crash within ``startsecs``;
  after ``startretries`` + 1 of them in a row the program goes FATAL instead of
  being restarted (``Subprocess.give_up()``, from BACKOFF as supervisord does),
  which with ``fail_fast`` stops the container (:mod:`entrypoint.pid1`). A
  process that made progress resets the count. ``tests/test_watchdog.py``
  drives a real supervisord through these paths: it fails if the internals
  used here (``spawn``, ``laststart``, ``change_state``, ``give_up``) change.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from pathlib import Path
from typing import Any

from supervisor import events
from supervisor.states import ProcessStates, SupervisorStates

from entrypoint.pid1 import processes, signal_process

CHECK_EVERY_SECONDS = 1.0
# The supervisord instance of the current main loop: ``supervisorctl reload`` starts
# a new one with the same poller, so an older wrapper must step aside.
_current: list[Any] = []
KILL_AFTER_SECONDS = 5.0  # default stop signal -> SIGKILL; a worker that reacts exits in ~3 s


class _Watch:
    """What the watchdog knows of one process (``pid``) of a program.

    A plain class: ``dataclasses`` would import ``inspect`` and ``ast`` into PID 1
    (about 1 MB for the container's life).
    """

    __slots__ = ("changed", "pid", "progressed", "stamp")

    def __init__(self, pid: int, stamp: float, changed: float, progressed: bool) -> None:
        self.pid = pid
        self.stamp = stamp  # the last freshness stamp read (Unix seconds), 0 for none
        self.changed = changed  # monotonic time it last changed, or the process was first seen
        self.progressed = progressed  # the stamp moved (or was set) since the process started


def parse_programs(value: str) -> dict[str, dict[str, Any]]:
    """``programs`` as a mapping; raises :class:`ValueError` (supervisord refuses to start)."""
    try:
        programs = json.loads(value)
        checked = {
            str(name): {
                "start": bool(entry["start"]),
                "watchdog_seconds": float(entry["watchdog_seconds"]),
            }
            for name, entry in programs.items()
        }
    except (ValueError, TypeError, KeyError, AttributeError):
        raise ValueError(f"programs must be app-entrypoint's JSON, got {value!r}") from None
    return checked


class WorkersInterface:
    """XML-RPC namespace ``workers``: the programs this plugin starts and watches."""

    def __init__(self, programs: dict[str, dict[str, Any]]) -> None:
        self.programs = programs

    def getPrograms(self) -> dict[str, dict[str, Any]]:  # noqa: N802 - XML-RPC camelCase
        """``{program: {"start": bool, "watchdog_seconds": float}}``."""
        return self.programs


def make_interface(supervisord: Any, **config: str) -> WorkersInterface:
    """Start the chosen workers and watch them; see the module docstring."""
    programs = parse_programs(config.get("programs", ""))
    value = config.get("kill_after_seconds", str(KILL_AFTER_SECONDS))
    try:
        kill_after = float(value)
    except ValueError:
        kill_after = -1.0
    if not 0 < kill_after <= 3600:  # an hour: more than any stop needs
        raise ValueError(f"kill_after_seconds must be a number in (0, 3600], got {value!r}")
    directory = Path(os.environ.get("PROMETHEUS_MULTIPROC_DIR") or ".")
    watchdog = Watchdog(supervisord, programs, directory, kill_after)
    poller = supervisord.options.poller  # internals (poller, mood): tests/test_fences.py
    poll = poller.poll
    _current[:] = [supervisord]

    def poll_and_manage(timeout: float) -> Any:
        result = poll(timeout)
        if _current[0] is not supervisord:  # a reload's older instance
            return result
        if supervisord.options.mood == SupervisorStates.RUNNING:
            _start_chosen(supervisord, programs)
        watchdog.check(time.monotonic())
        return result

    poller.poll = poll_and_manage
    return WorkersInterface(programs)


def _start_chosen(supervisord: Any, programs: dict[str, dict[str, Any]]) -> None:
    """Spawn each chosen worker never started yet (what ``autostart=true`` would do)."""
    for process in processes(supervisord):
        entry = programs.get(process.config.name)
        never_started = process.get_state() == ProcessStates.STOPPED and not process.laststart
        if entry and entry["start"] and never_started:
            process.spawn()  # internal, fenced: tests/test_fences.py


class Watchdog:
    """Restarts RUNNING workers whose freshness stamp has not moved for ``watchdog_seconds``."""

    def __init__(
        self,
        supervisord: Any,
        programs: dict[str, dict[str, Any]],
        directory: Path,
        kill_after: float = KILL_AFTER_SECONDS,
    ) -> None:
        self.supervisord = supervisord
        self.kill_after = kill_after
        self.bounds = {
            n: e["watchdog_seconds"] for n, e in programs.items() if e["watchdog_seconds"]
        }
        self.directory = directory
        self.watches: dict[str, _Watch] = {}
        self.hangs: dict[str, int] = {}  # restarts in a row without progress
        self.killing: dict[str, tuple[int, float]] = {}  # program -> (pid, SIGKILL due)
        self.giving_up: dict[str, int] = {}  # program -> pid whose exit must end FATAL
        self.next_check = 0.0

    def check(self, now: float) -> None:
        """Escalate and give up on every poll while pending; judge freshness once a second."""
        pending = self.killing or self.giving_up
        if not self.bounds or (now < self.next_check and not pending):
            return  # most polls (10 a second): nothing to do, not even a walk of the processes
        by_name = {
            p.config.name: p for p in processes(self.supervisord) if p.config.name in self.bounds
        }
        self._escalate(by_name, now)
        self._give_up(by_name)
        if now < self.next_check or self.supervisord.options.mood != SupervisorStates.RUNNING:
            return
        self.next_check = now + CHECK_EVERY_SECONDS
        from common.stamps import stamp  # first check: after start-up

        for name, process in by_name.items():
            if process.get_state() != ProcessStates.RUNNING or name in self.killing:
                self.watches.pop(name, None)
                continue
            value = stamp(self.directory, process.pid, name)
            watch = self.watches.get(name)
            if watch is None or watch.pid != process.pid:
                watch = self.watches[name] = _Watch(process.pid, value, now, value > 0)
            elif value > 0 and value != watch.stamp:
                watch.stamp, watch.changed, watch.progressed = value, now, True
                self.hangs.pop(name, None)
            age = now - watch.changed
            if age > self.bounds[name]:
                self._restart(process, watch, age, now)

    def _restart(self, process: Any, watch: _Watch, age: float, now: float) -> None:
        name = process.config.name
        hangs = 1 if watch.progressed else self.hangs.get(name, 0) + 1
        gives_up = hangs > process.config.startretries
        self.hangs[name] = 0 if gives_up else hangs
        if gives_up:
            self.giving_up[name] = watch.pid
        del self.watches[name]
        self.killing[name] = (watch.pid, now + self.kill_after)
        _notify(
            "watchdog_restart",
            program=name,
            pid=watch.pid,
            age_seconds=round(age, 1),
            watchdog_seconds=self.bounds[name],
            progressed=watch.progressed,
            hangs_in_a_row=hangs,
            startretries=process.config.startretries,
            gives_up=gives_up,
            kill_after_seconds=self.kill_after,
        )
        signal_process(process, watch.pid, process.config.stopsignal)

    def _escalate(self, by_name: dict[str, Any], now: float) -> None:
        for name, (pid, due) in list(self.killing.items()):
            process = by_name.get(name)
            if process is None or process.pid != pid:
                del self.killing[name]  # it exited
            elif now >= due:
                self.killing[name] = (pid, math.inf)  # once
                _notify("watchdog_kill", program=name, pid=pid, after_seconds=self.kill_after)
                signal_process(process, pid, signal.SIGKILL)

    def _give_up(self, by_name: dict[str, Any]) -> None:
        for name, pid in list(self.giving_up.items()):
            process = by_name.get(name)
            if process is None or process.pid == pid:
                continue  # still running
            del self.giving_up[name]
            if process.get_state() == ProcessStates.EXITED:  # not respawned yet: see docstring
                process.change_state(ProcessStates.BACKOFF)  # fenced: tests/test_fences.py
                process.give_up()


def _notify(kind: str, **fields: Any) -> None:
    """Hand a watchdog action to the event listener (it logs the line and counts)."""
    # internal, fenced: tests/test_fences.py
    events.notify(events.RemoteCommunicationEvent(kind, json.dumps(fields)))
