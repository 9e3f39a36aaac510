"""Set-up steps before any program starts: the ``prestart`` commands, in order.

What s6-overlay's ``cont-init.d`` scripts and the FastAPI template's
``prestart.sh`` are for: database migrations, a cache warm-up, a wait for a
dependency. ``app-entrypoint`` runs them once the settings are valid and the
runtime dir is ready, right before it execs supervisord, with the environment
supervisord gets (so a Python step's ``load_settings()`` reads the resolved
snapshot, ``APP_RESOLVED_SETTINGS``).

- Each command is split into words (:func:`shlex.split`, ``#`` comments
  dropped) and run without a shell, in its own process group, stdin closed,
  stop signals unblocked.
- What it writes to stdout and stderr becomes JSON lines: a line that already
  is a log record (a strict JSON object with ``ts``, ``level`` and ``msg``: a
  step using this project's logging) passes through unchanged, any other is
  one ``prestart_output`` record (``step``, ``stream``).
- Each step has ``prestart_timeout_seconds``. The first that exits non-zero,
  cannot be run, or times out stops everything: one ``prestart_failed`` line
  names it, and ``app-entrypoint`` exits with its code (126 not executable,
  127 not found, 124 timed out as ``timeout(1)`` says, 128+N killed by
  signal N). supervisord never starts.
- A step must not leave processes behind: once it exited (and its output was
  read, for at most :data:`DRAIN_SECONDS` more), what is left of its process
  group is killed, with one ``prestart_leftovers`` warning. Long-running
  processes belong in ``supervisord.conf``.
- A stop signal (SIGTERM, SIGINT, SIGQUIT) during a step is passed to its
  process group; ``app-entrypoint`` then exits 0, like any stop. A step still
  running :data:`KILL_AFTER_SECONDS` after a stop or a timeout gets SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import shlex
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from common.errors import EarlyExitError
from common.loglines import write_all
from entrypoint import STOP_SIGNALS

KILL_AFTER_SECONDS = 5.0
POLL_SECONDS = 0.1
DRAIN_SECONDS = 1.0  # after a step exits, how long what it started may hold its output open
TIMED_OUT, NOT_EXECUTABLE, NOT_FOUND = 124, 126, 127
MAX_PASSTHROUGH_BYTES = 4096  # a line up to this size arrives whole (supervisord's chunks)
MAX_LINE_BYTES = 65536  # a longer line without a newline is written in parts
PASSTHROUGH_KEYS = {"ts", "level", "msg"}  # a JSON line with these is a log record already
log = logging.getLogger("prestart")


@dataclass
class Outcome:
    """How one step ended: its exit ``code``, and whether a stop or the timeout ended it."""

    code: int
    stopped: bool = False
    timed_out: bool = False


def run_steps(commands: Sequence[str], timeout: float, environ: Mapping[str, str]) -> None:
    """Run every command in order; raise :class:`EarlyExitError` on the first failure or a stop.

    ``EarlyExitError.code`` is the step's code (see the module docstring), or 0 after
    a stop signal. Every outcome is logged first.
    """
    for step, command in enumerate(commands, 1):
        if _stop_pending():
            _stopped(step, command)
        fields = {"step": step, "command": command}
        log.info(
            "prestart step %d: %s", step, command, extra={"event": "prestart_started", **fields}
        )
        started = time.monotonic()
        outcome = _run(step, shlex.split(command, comments=True), timeout, environ)
        seconds = round(time.monotonic() - started, 3)
        if outcome.stopped:
            _stopped(step, command)
        if outcome.code != 0:
            why = f"timed out after {timeout:g} s" if outcome.timed_out else f"exit {outcome.code}"
            log.error(
                "prestart step %d failed (%s): %s; nothing starts",
                step,
                why,
                command,
                extra={"event": "prestart_failed", "code": outcome.code, "seconds": seconds,
                       "timed_out": outcome.timed_out, **fields},
            )  # fmt: skip
            raise EarlyExitError(outcome.code)
        log.info(
            "prestart step %d done in %.3f s",
            step,
            seconds,
            extra={"event": "prestart_finished", "seconds": seconds, **fields},
        )


def _stopped(step: int, command: str) -> None:
    log.info(
        "stop signal during prestart step %d: nothing starts",
        step,
        extra={"event": "prestart_stopped", "step": step, "command": command},
    )
    raise EarlyExitError(0)


def _stop_pending() -> bool:
    """Consume one pending (blocked) stop signal, if any."""
    return signal.sigtimedwait(STOP_SIGNALS, 0) is not None


def _unblock_stop_signals() -> None:  # in the child, before exec: it must see SIGTERM
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)


def _run(step: int, argv: list[str], timeout: float, environ: Mapping[str, str]) -> Outcome:
    try:
        child = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(environ),
            start_new_session=True,
            preexec_fn=_unblock_stop_signals,  # noqa: PLW1509 - single-threaded here
        )
    except FileNotFoundError:
        log.error("prestart step %d: %s not found", step, argv[0])
        return Outcome(NOT_FOUND)
    except PermissionError:
        log.error("prestart step %d: %s is not executable", step, argv[0])
        return Outcome(NOT_EXECUTABLE)
    outcome = Outcome(0)
    deadline, kill_at = time.monotonic() + timeout, float("inf")
    exited_at = 0.0
    lines = _Lines(step)
    with selectors.DefaultSelector() as selector:
        selector.register(child.stdout, selectors.EVENT_READ, "stdout")  # type: ignore[arg-type]
        selector.register(child.stderr, selectors.EVENT_READ, "stderr")  # type: ignore[arg-type]
        while selector.get_map() or child.poll() is None:
            for key, _ in selector.select(POLL_SECONDS):
                data = os.read(key.fd, 65536)
                if not data:
                    selector.unregister(key.fileobj)
                lines.feed(key.data, data)
            now = time.monotonic()
            if child.poll() is not None and selector.get_map():
                exited_at = exited_at or now
                if now > exited_at + DRAIN_SECONDS:  # what it started holds the pipes open
                    break
            if kill_at == float("inf") and (_stop_pending() or now > deadline):
                outcome.stopped, outcome.timed_out = now <= deadline, now > deadline
                _signal_group(child.pid, signal.SIGTERM)
                kill_at = now + KILL_AFTER_SECONDS  # a stopped step gets KILL_AFTER to exit
            if now > kill_at:
                _signal_group(child.pid, signal.SIGKILL)
                kill_at = float("nan")  # once
    lines.close()
    code = child.wait()
    if _group_alive(child.pid):
        _signal_group(child.pid, signal.SIGKILL)
        log.warning(
            "prestart step %d left processes running: killed them",
            step,
            extra={"event": "prestart_leftovers", "step": step},
        )
    outcome.code = TIMED_OUT if outcome.timed_out else (128 - code if code < 0 else code)
    return outcome


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # the group is gone
        os.killpg(pid, signum)


class _Lines:
    """Splits a step's output into lines and writes each as JSON to stdout."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.partial: dict[str, bytes] = {"stdout": b"", "stderr": b""}

    def feed(self, stream: str, data: bytes) -> None:
        """Add ``data`` read from ``stream``; empty ``data`` (end of file) flushes the rest.

        A line longer than :data:`MAX_LINE_BYTES` is written in parts of that size
        (each then split into records of at most 4096 bytes by the logging).
        """
        buffered = self.partial[stream] + data
        *complete, self.partial[stream] = buffered.split(b"\n")
        if len(self.partial[stream]) >= MAX_LINE_BYTES:
            complete.append(self.partial[stream])
            self.partial[stream] = b""
        if not data and self.partial[stream]:
            complete.append(self.partial[stream])
            self.partial[stream] = b""
        for line in complete:
            self._write(stream, line.rstrip(b"\r"))

    def close(self) -> None:
        """Write what is left without a final newline."""
        for stream in self.partial:
            self.feed(stream, b"")

    def _write(self, stream: str, line: bytes) -> None:
        if not line.strip():
            return
        if line.startswith(b"{") and len(line) < MAX_PASSTHROUGH_BYTES and _is_object(line):
            write_all(1, line + b"\n")
            return
        text = line.decode("utf-8", "replace")
        log.info(text, extra={"event": "prestart_output", "step": self.step, "stream": stream})


def _is_object(line: bytes) -> bool:
    """True for a strict JSON object with ``ts``, ``level`` and ``msg``, no repeated key.

    Strict: no NaN or Infinity (Python's json accepts them, many consumers do not).
    """

    def no_constants(name: str) -> Any:
        raise ValueError(name)

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        if len({key for key, _ in pairs}) != len(pairs):
            raise ValueError("repeated key")
        return dict(pairs)

    try:
        data = json.loads(line, parse_constant=no_constants, object_pairs_hook=unique)
    except ValueError:  # also UnicodeDecodeError
        return False
    return isinstance(data, dict) and data.keys() >= PASSTHROUGH_KEYS
