"""supervisord events in, JSON lines and metric-file upkeep out.

- ``PROCESS_STATE_*``: one lifecycle line per state change of any program
  (``event`` "process_state", ``program``, ``from_state``, ``to_state``,
  ``pid``, ``expected`` for exits); an exit is counted in
  ``app_process_exits_total{program, expected}``; when a process has gone
  (EXITED, STOPPED, BACKOFF, FATAL) the dead processes' metric files are
  compacted (:func:`common.multiproc.compact`).
- ``TICK_5``: the same compaction every 5 s, for processes that died without
  an event (killed while STARTING, say).
- ``REMOTE_COMMUNICATION`` from the watchdog (:mod:`entrypoint.workers`):
  ``watchdog_restart`` becomes one ERROR line on behalf of the hung program
  (``event`` "watchdog_restart", its ``age_seconds``...) and counts in
  ``app_watchdog_restarts_total{program}``; ``watchdog_kill`` one WARNING line.
- ``PROCESS_LOG_STDERR``: what a program's processes wrote to its file
  descriptors 1 and 2 (a subprocess's output, an interpreter traceback before
  logging is set up, a C extension's message, ``faulthandler``'s dump: see
  :func:`common.loglines.capture_std_streams`) becomes one record per event
  (``logger`` "stderr", ``event`` "stderr", ``pid``), never cutting a line.

Lines go to this listener's stderr, which supervisord copies to stdout; its
stdout carries the listener protocol (supervisor docs, "Events") through
:mod:`services.event_listener.protocol` and nothing else. A handler failure is
logged and the event still acknowledged, so supervisord never stalls.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from common.config import Settings
from common.loglines import split_record, write_all
from common.logs import fixed_fields
from services.event_listener import protocol

log = logging.getLogger("event_listener")
GONE = {"EXITED", "STOPPED", "BACKOFF", "FATAL"}
_LEVELS = {"FATAL": "ERROR", "BACKOFF": "WARNING"}
MAX_PARTIAL_CHARS = 65536  # a longer line without its newline is written as it is
WATCHDOG_MESSAGES = {
    "watchdog_restart": (
        "ERROR",
        "{program} made no progress for {age_seconds} s (watchdog_seconds {watchdog_seconds}):"
        " restarting it",
    ),
    "watchdog_kill": (
        "WARNING",
        "{program} still ran {after_seconds} s after its stop signal: SIGKILL",
    ),
}


def record(
    settings: Settings, program: str, level: str, logger: str, msg: str, **fields: Any
) -> dict[str, Any]:
    """A JSON record in the programs' shape, on behalf of ``program``."""
    identity = {
        "service": settings.service_name,
        "program": program,
        "instance": settings.instance,
        "env": settings.env,
    }
    return fixed_fields(time.time(), level, logger, msg, identity) | fields


def write_record(data: dict[str, Any], fd: int = 2) -> None:
    """Write ``data`` as JSON line(s) of at most 4096 bytes each to ``fd``."""
    for line in split_record(json.dumps(data, ensure_ascii=False), data):
        write_all(fd, line)


def _pid(headers: dict[str, str]) -> int | None:
    return int(headers["pid"]) if headers.get("pid", "").isdigit() else None


class Handler:
    """Handles one event at a time; ``multiproc_dir`` None means metrics are off."""

    def __init__(self, settings: Settings, multiproc_dir: Path | None) -> None:
        self.settings = settings
        self.multiproc_dir = multiproc_dir
        self._bad_file: Callable[[Path], None] = lambda path: None
        self._partial: dict[tuple[str, int | None], str] = {}  # (program, pid) -> cut line
        if multiproc_dir is not None:
            from common.multiproc import quarantine_reporter

            self._bad_file = quarantine_reporter(log)

    def __call__(self, headers: dict[str, str], payload: str) -> None:
        """Dispatch on the event name."""
        name = headers.get("eventname", "")
        if name == "PROCESS_LOG_STDERR":
            event_headers, data = protocol.eventdata(payload)
            self.raw_output(event_headers.get("processname", "unknown"), _pid(event_headers), data)
        elif name.startswith("PROCESS_STATE_"):
            self.state_change(name.removeprefix("PROCESS_STATE_"), protocol.headers(payload))
        elif name == "TICK_5":
            self.flush_raw()
            self.compact()
        elif name == "REMOTE_COMMUNICATION":
            self.remote(payload)

    def raw_output(self, program: str, pid: int | None, data: str) -> None:
        """One record per event, cut after its last newline (a multi-line traceback stays whole).

        supervisord hands over what the pipe held, not whole lines: a partial
        last line is kept per process until the rest comes, the next TICK_5 or
        the process's end (:meth:`flush_raw`), or it reaches
        :data:`MAX_PARTIAL_CHARS`.
        """
        key = (program, pid)
        text = self._partial.pop(key, "") + data
        complete, newline, partial = text.rpartition("\n")
        if not newline:
            complete, partial = "", text
        if len(partial) >= MAX_PARTIAL_CHARS:
            complete, partial = text, ""
        if partial:
            self._partial[key] = partial
        self._write_raw(program, pid, complete)

    def flush_raw(self, program: str | None = None) -> None:
        """Write the kept partial lines (of ``program`` only, if given)."""
        for key in [k for k in self._partial if program is None or k[0] == program]:
            self._write_raw(*key, self._partial.pop(key))

    def _write_raw(self, program: str, pid: int | None, text: str) -> None:
        if text.strip():  # blank lines are no record
            fields = {"event": "stderr", "pid": pid}
            msg = text.rstrip("\r\n")
            write_record(record(self.settings, program, "ERROR", "stderr", msg, **fields))

    def remote(self, payload: str) -> None:
        """Log (and count) a watchdog action; other remote events are ignored."""
        first, _, data = payload.partition("\n")
        kind = first.removeprefix("type:")
        if kind not in WATCHDOG_MESSAGES:
            return
        fields = json.loads(data)
        program = str(fields.pop("program"))
        level, template = WATCHDOG_MESSAGES[kind]
        msg = template.format(program=program, **fields)
        write_record(record(self.settings, program, level, "watchdog", msg, event=kind, **fields))
        if kind == "watchdog_restart" and self.multiproc_dir is not None:
            from common.metrics import watchdog_restarts_counter

            watchdog_restarts_counter().labels(program).inc()

    def state_change(self, to_state: str, fields: dict[str, str]) -> None:
        """Log the change; count an exit; compact once a process has gone."""
        program = fields.get("processname", "unknown")
        expected = fields.get("expected")
        line: dict[str, Any] = {
            "event": "process_state",
            "group": fields.get("groupname"),
            "from_state": fields.get("from_state"),
            "to_state": to_state,
            "pid": _pid(fields),
        }
        level = _LEVELS.get(to_state, "INFO")
        if expected is not None:
            line["expected"] = expected == "1"
            level = "INFO" if line["expected"] else "WARNING"
            if self.multiproc_dir is not None:
                from common.metrics import process_exits_counter  # on the first exit

                process_exits_counter().labels(program, str(line["expected"]).lower()).inc()
        msg = f"{program}: {line['from_state']} -> {to_state}"
        write_record(record(self.settings, program, level, "supervisor", msg, **line))
        if to_state in GONE:
            self.flush_raw(program)
            self.compact()

    def compact(self) -> None:
        """Merge dead processes' metric files (see :mod:`common.multiproc`)."""
        if self.multiproc_dir is not None:
            from common import multiproc

            merged = multiproc.compact(self.multiproc_dir, self._bad_file)
            if merged:
                log.debug("compacted %d metric files", merged)


def serve(
    stdin: TextIO,
    stdout: TextIO,
    handler: Callable[[dict[str, str], str], None],
    stopping: Callable[[], bool] = lambda: False,
) -> None:
    """Answer events until stdin closes or ``stopping()``; every event is acknowledged.

    ``stopping()`` is asked before each wait for the next event (so a stop is
    seen within one TICK_5, 5 s, even when nothing else happens).
    """
    while not stopping():
        try:
            headers, payload = protocol.wait(stdin, stdout)
        except (KeyError, ValueError):  # stdin closed (supervisord stopping) or garbled
            return
        try:
            handler(headers, payload)
        except Exception:
            log.exception("could not handle %s", headers.get("eventname"))
        protocol.ok(stdout)
