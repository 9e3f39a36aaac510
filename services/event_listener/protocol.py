"""supervisord's event listener protocol, on the listener's stdin and stdout.

As documented in supervisor's docs ("Events", "Event Listener Notification
Protocol") and implemented by ``supervisor.childutils.listener``: the listener
writes ``READY`` and a newline; supervisord sends one header line of
``key:value`` tokens whose ``len`` is the payload's length in characters, then
the payload; the listener answers ``RESULT 2``, a newline and ``OK`` (or
``RESULT 4``... ``FAIL``) and is ready again.

Not ``supervisor.childutils`` itself: importing it loads supervisor's XML-RPC
and HTTP server modules, about 12 MB of memory in a process that needs none.
"""

from __future__ import annotations

from typing import TextIO

READY = "READY\n"


def headers(line: str) -> dict[str, str]:
    """``{"key": "value"}`` from a line of space-separated ``key:value`` tokens."""
    return dict(token.partition(":")[::2] for token in line.split())


def eventdata(payload: str) -> tuple[dict[str, str], str]:
    """Split a payload whose first line is headers (``PROCESS_LOG_*``): ``(headers, data)``."""
    header_line, _, data = payload.partition("\n")
    return headers(header_line), data


def wait(stdin: TextIO, stdout: TextIO) -> tuple[dict[str, str], str]:
    """Say READY, then read one event: ``(headers, payload)``.

    Raises :class:`KeyError` or :class:`ValueError` when stdin is closed
    (supervisord stopping) or the header line has no valid ``len``.
    """
    stdout.write(READY)
    stdout.flush()
    event = headers(stdin.readline())
    return event, stdin.read(int(event["len"]))


def ok(stdout: TextIO) -> None:
    """Acknowledge the event (``RESULT 2``, newline, ``OK``): supervisord sends the next one."""
    stdout.write("RESULT 2\nOK")
    stdout.flush()
