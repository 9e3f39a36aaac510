"""Writing JSON records to stdout so that no line is ever torn or interleaved.

supervisord copies each program's output to the container's stdout in chunks,
not lines. A pipe write of at most ``PIPE_BUF`` (4096 bytes on Linux, POSIX
``write(2)``) is atomic, so a line written with one ``write()`` of at most
4096 bytes reaches stdout whole. :class:`JsonLineHandler` therefore writes each
line with one ``os.write`` of at most :data:`MAX_LINE_BYTES`.

A record whose JSON text is longer is written in *parts*, each a JSON line of
its own that a log pipeline can join::

    {"ts": ..., "level": ..., "service": ..., "program": ..., "logger": ...,
     "instance": ..., "env": ..., "msg": "<the first 200 characters>",
     "record_id": "<32 hex digits>", "part": 1, "parts": 3, "chunk": "<text>"}

Concatenating ``chunk`` of parts 1..``parts`` with the same ``record_id`` gives
the record's full JSON text. Parts of one record are written one after
another, but another program's lines may come between them.

:class:`StreamToLog` turns ``print()`` and other writes to ``sys.stdout`` /
``sys.stderr`` into records, so that they do not break the JSON stream.
"""

from __future__ import annotations

import codecs
import faulthandler
import io
import json
import logging
import os
import sys
import threading
from typing import Any, TextIO

from common.logs import FIXED_KEYS, JsonLineFormatter, clean_text

MAX_LINE_BYTES = 4096  # PIPE_BUF on Linux, newline included
PREVIEW_CHARS = 200


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def split_record(text: str, head: dict[str, Any]) -> list[bytes]:
    """``text`` (one record's JSON) as newline-terminated lines of at most MAX_LINE_BYTES.

    ``head`` holds the fixed keys copied into every part. Raises nothing.
    """
    data = text.encode("utf-8")
    if len(data) < MAX_LINE_BYTES:
        return [data + b"\n"]
    # Each copied value is cut to PREVIEW_CHARS, so the head leaves room for a chunk.
    head = {key: str(clean_text(head.get(key)) or "")[:PREVIEW_CHARS] for key in FIXED_KEYS}
    head.update(record_id=os.urandom(16).hex(), part=9_999_999, parts=9_999_999, chunk="")
    budget = MAX_LINE_BYTES - 1 - len(_dumps(head).encode("utf-8"))
    chunks: list[str] = []
    start = 0
    while start < len(text):
        size = budget
        while True:
            chunk = text[start : start + size]
            encoded = len(_dumps(chunk).encode("utf-8")) - 2
            if encoded <= budget:
                break
            size = max(1, size * budget // encoded - 1)
        chunks.append(chunk)
        start += len(chunk)
    lines = []
    for number, chunk in enumerate(chunks, 1):
        head.update(part=number, parts=len(chunks), chunk=chunk)
        lines.append(_dumps(head).encode("utf-8") + b"\n")
    return lines


class JsonLineHandler(logging.Handler):
    """Writes each record as JSON line(s) to file descriptor ``fd`` (default stdout).

    Each line goes out in one ``os.write`` (all parts of a record under the
    handler's lock). If ``fd`` is 1 but ``sys.stdout`` has no file descriptor
    when the handler is made (a test's capture), lines go to that stream instead.
    """

    def __init__(self, fd: int = 1) -> None:
        super().__init__()
        self.fd = fd
        stdout = sys.stdout
        captured = fd == 1 and not isinstance(stdout, StreamToLog) and not _has_fileno(stdout)
        self._stream: TextIO | None = stdout if captured else None

    def emit(self, record: logging.LogRecord) -> None:
        """Format and write ``record``; a failure writes a short error line instead."""
        try:
            formatter = self.formatter
            assert isinstance(formatter, JsonLineFormatter)  # noqa: S101 - set by configure
            if getattr(formatter, "console", False):  # log_format: console, for a terminal
                self._write(formatter.format(record).encode("utf-8", "backslashreplace") + b"\n")
                return
            text, data = formatter.format_data(record)
            for line in split_record(text, data):
                self._write(line)
        except RecursionError:
            raise
        except Exception as exc:
            self._write(_emergency_line(record, exc))

    def _write(self, data: bytes) -> None:
        if self._stream is not None:
            self._stream.write(data.decode("utf-8", "replace"))
            self._stream.flush()
            return
        write_all(_records_fd[0] if self.fd == 1 and _records_fd else self.fd, data)


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until all of ``data`` is out (one call for a pipe write <= PIPE_BUF)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _has_fileno(stream: TextIO) -> bool:
    try:
        stream.fileno()
    except (AttributeError, OSError, ValueError):
        return False
    return True


def _emergency_line(record: logging.LogRecord, exc: Exception) -> bytes:
    """A minimal, always-valid line saying that a record could not be written."""
    text = _dumps(
        {
            "level": "ERROR",
            "logger": "common.loglines",
            "msg": f"a {record.levelname} record from {record.name} could not be written",
            "exception_type": type(exc).__name__,
            "error": repr(exc)[:500],
        }
    )
    return text.encode("utf-8", "backslashreplace") + b"\n"


class StreamToLog(io.TextIOBase):
    """A text stream whose complete lines become log records of ``logger`` at ``level``.

    Replace ``sys.stdout``/``sys.stderr`` with it; a partial line waits for its
    newline (or :meth:`flush`). Writes made while a record is being emitted
    (an error inside logging itself) go to file descriptor 2 unchanged.

    It behaves like a real text stream for common code: ``encoding`` "utf-8",
    ``errors`` "replace", ``isatty()`` False, ``buffer`` (bytes written there
    are decoded as UTF-8 with replacement and logged the same way) and
    ``fileno()``, the descriptor ``fd`` it stands for: what is written there
    (``subprocess.run(..., stdout=sys.stdout)``, ``faulthandler``) is raw
    output, wrapped as JSON by the event listener (see :func:`capture_std_streams`).
    """

    _busy = threading.local()
    encoding = "utf-8"
    errors = "replace"

    def __init__(self, logger: str, level: int, fd: int = 1) -> None:
        super().__init__()
        self.logger = logging.getLogger(logger)
        self.level = level
        self.fd = fd
        self._pending = ""
        self._lock = threading.Lock()
        self.buffer = _BytesToText(self)

    def writable(self) -> bool:
        """Return True: this is an output stream."""
        return True

    def isatty(self) -> bool:
        """Return False: lines become JSON records, not terminal output."""
        return False

    def fileno(self) -> int:
        """The descriptor this stream stands for (1 or 2): raw bytes there become JSON too."""
        return self.fd

    def write(self, text: str) -> int:
        """Log each complete line of ``text``; keep the rest for the next write."""
        if getattr(self._busy, "active", False):
            os.write(2, text.encode("utf-8", "backslashreplace"))
            return len(text)
        with self._lock:
            lines = (self._pending + text).split("\n")
            self._pending = lines.pop()
        for line in lines:
            if line.strip():  # a blank line is no record
                self._emit(line)
        return len(text)

    def flush(self) -> None:
        """Log a pending partial line, if any."""
        with self._lock:
            line, self._pending = self._pending, ""
        if line.strip():
            self._emit(line)

    def _emit(self, line: str) -> None:
        self._busy.active = True
        try:
            self.logger.log(self.level, "%s", line.rstrip("\r"))
        finally:
            self._busy.active = False


class _BytesToText(io.RawIOBase):
    """``StreamToLog.buffer``: bytes decoded as UTF-8 (with replacement) into the text stream."""

    def __init__(self, text: StreamToLog) -> None:
        super().__init__()
        self._text = text
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def writable(self) -> bool:
        """Return True: this is an output stream."""
        return True

    def fileno(self) -> int:
        """The text stream's descriptor."""
        return self._text.fd

    def write(self, data: Any) -> int:
        """Decode ``data`` (a character split across writes waits) and write it as text."""
        chunk = bytes(data)
        self._text.write(self._decoder.decode(chunk))
        return len(chunk)

    def flush(self) -> None:
        """Flush the text stream."""
        self._text.flush()


# Where log records go once capture_std_streams() moved fd 1 (None: fd 1 itself).
_records_fd: list[int] = []


def capture_std_streams() -> None:
    """Route ``sys.stdout`` and ``sys.stderr`` text through logging (loggers "stdout"/"stderr").

    Under supervisord (``SUPERVISOR_ENABLED``) also file descriptor 1 itself:
    log records keep a duplicate of the original fd 1 (the program's stdout,
    JSON lines only), and fd 1 becomes a copy of fd 2, whose bytes supervisord
    hands to the event listener as ``PROCESS_LOG_STDERR`` events, one JSON
    record per line. So what a subprocess that inherits fd 1 or 2 prints, what
    a C extension or the interpreter writes there, and ``faulthandler``'s dump,
    all reach stdout as JSON, even if the process dies right after. There,
    ``faulthandler`` is on (every thread, to fd 2): a fatal signal (SIGSEGV,
    SIGBUS, SIGFPE, SIGABRT, SIGILL) writes "Fatal Python error: ..." and each
    thread's stack before the process dies, so the cause of such a death is in
    the logs (the Python docs: faulthandler.enable).
    """
    if os.environ.get("SUPERVISOR_ENABLED") and not _records_fd:
        _records_fd.append(os.dup(1))
        os.set_inheritable(_records_fd[0], False)  # children get the raw channel only
        os.dup2(2, 1)
        faulthandler.enable(file=2, all_threads=True)
    sys.stdout = StreamToLog("stdout", logging.INFO, 1)
    sys.stderr = StreamToLog("stderr", logging.ERROR, 2)


def release_std_streams() -> None:
    """Undo :func:`capture_std_streams` (``log_format: console``: a terminal reads fd 1)."""
    if _records_fd:
        os.dup2(_records_fd[0], 1)
        os.close(_records_fd.pop())
    sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__
