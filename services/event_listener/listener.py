"""Turn supervisord ``PROCESS_LOG_STDERR`` events into JSON log lines.

Every program's Python-level ``sys.stderr`` is already a logger
(:func:`common.loglines.capture_std_streams`); what reaches file descriptor 2
itself -- an interpreter traceback before logging is set up, a C extension's
message, ``faulthandler`` -- is captured by supervisord
(``stderr_events_enabled``) and sent here as events. Each event's text becomes
one record (``level`` ERROR, ``logger`` "stderr", ``event`` "stderr",
``program`` the program that wrote it, ``pid``), written to this listener's
own stderr, which supervisord copies to the container's stdout.

The listener protocol (supervisor docs, "Events") runs on stdin/stdout via
``supervisor.childutils.listener``: nothing else may be written to stdout. A
handler failure is logged and the event still acknowledged, so supervisord
never stalls.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any, TextIO

from supervisor import childutils

from common.config import Settings
from common.loglines import split_record
from common.logs import rfc3339

log = logging.getLogger("event_listener")


def stderr_record(settings: Settings, headers: dict[str, str], data: str) -> dict[str, Any]:
    """The JSON record for ``data`` that ``headers["processname"]`` wrote to its fd 2."""
    return {
        "ts": rfc3339(time.time()),
        "level": "ERROR",
        "service": settings.service_name,
        "program": headers.get("processname", "unknown"),
        "logger": "stderr",
        "instance": settings.instance,
        "env": settings.env,
        "msg": data.rstrip("\n"),
        "event": "stderr",
        "pid": int(headers["pid"]) if headers.get("pid", "").isdigit() else None,
    }


def write_record(record: dict[str, Any], fd: int = 2) -> None:
    """Write ``record`` as JSON line(s) of at most 4096 bytes each to ``fd``."""
    for line in split_record(json.dumps(record, ensure_ascii=False), record):
        os.write(fd, line)


def handle(settings: Settings, headers: dict[str, str], payload: str) -> None:
    """Handle one event (``headers`` from the envelope, ``payload`` its body)."""
    if headers.get("eventname") == "PROCESS_LOG_STDERR":
        event_headers, data = childutils.eventdata(payload)
        if data:
            write_record(stderr_record(settings, event_headers, data))


def serve(
    settings: Settings,
    stdin: TextIO,
    stdout: TextIO,
    handler: Callable[[Settings, dict[str, str], str], None] = handle,
) -> None:
    """Answer events until stdin closes; every event is acknowledged, even if handling fails."""
    while True:
        try:
            headers, payload = childutils.listener.wait(stdin, stdout)
        except (KeyError, ValueError):  # stdin closed (supervisord stopping) or garbled
            return
        try:
            handler(settings, headers, payload)
        except Exception:
            log.exception("could not handle %s", headers.get("eventname"))
        childutils.listener.ok(stdout)
