"""The entrypoint as PID 1: run supervisord as a child, forward signals, reap orphans.

In a container, PID 1 must pass ``docker stop``'s SIGTERM on and reap orphaned
processes the kernel hands to it (the jobs tini and dumb-init do). When the
entrypoint stays PID 1 (``fail_fast`` on), :func:`supervise` does both; outside
a container it makes itself a child subreaper (``prctl(PR_SET_CHILD_SUBREAPER)``,
Linux), so orphans come to it there too, and if supervisord dies abruptly
(``kill -9``) its programs are stopped rather than left running.

Fail-fast: every 2 s it also asks supervisord whether a program is FATAL (the
event listener's FATAL event is the fast path; this check also covers events
supervisord dropped and a FATAL listener). Then it writes exit code 1 to the
exit-code file and asks supervisord to shut down. It exits with that code,
else supervisord's own (0 after a requested stop; 128 + n if signal n killed
it). After a stop signal it never fails fast: a program that goes FATAL while
everything stops is no failure.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import logging
import os
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from common.procfs import children_by_parent

FORWARDED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
STOPS = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT}
PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
CHECK_SECONDS = 2.0  # fail-fast check interval
log = logging.getLogger("entrypoint")


def append_to_regular_stdout() -> None:
    """If stdout is a regular file (``make run > out.log``), make every write append.

    supervisord opens ``/dev/stdout`` anew (its own file offset, in append mode);
    without O_APPEND on ours, our later lines would overwrite its output.
    """
    if stat.S_ISREG(os.fstat(1).st_mode):
        fcntl.fcntl(1, fcntl.F_SETFL, fcntl.fcntl(1, fcntl.F_GETFL) | os.O_APPEND)


def become_subreaper() -> None:
    """Adopt orphaned descendants (Linux; a no-op where prctl is unavailable)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def reap() -> dict[int, int]:
    """Reap every exited child; ``{pid: exit code}``."""
    done: dict[int, int] = {}
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return done
        if pid == 0:
            return done
        done[pid] = os.waitstatus_to_exitcode(status)


def stop_leftovers(grace: float = 5.0) -> None:
    """SIGTERM the children still here (orphans of a killed supervisord), then SIGKILL."""
    deadline = time.monotonic() + grace
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for pid in children_by_parent().get(os.getpid(), []):
            os.kill(pid, signum)
        while children_by_parent().get(os.getpid()) and time.monotonic() < deadline:
            reap()
            time.sleep(0.05)
        reap()


def supervise(
    argv: list[str],
    environ: Mapping[str, str],
    exit_code_file: Path,
    fatal_program: Callable[[], str | None] | None = None,
    shutdown: Callable[[], None] | None = None,
) -> int:
    """Run ``argv`` until it exits, as its PID-1 parent; return the exit code to use.

    ``fatal_program`` (every 2 s) names a FATAL program or returns None;
    ``shutdown`` then asks supervisord to stop everything.
    """
    append_to_regular_stdout()
    become_subreaper()
    # Its own process group: Ctrl-C reaches it once, forwarded from here.
    child = subprocess.Popen(argv, env=dict(environ), process_group=0)
    stopping = False
    failing = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = stopping or signum in STOPS
        if child.returncode is None:
            os.kill(child.pid, signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    # Blocked (after the spawn: supervisord keeps its own mask), SIGCHLD stays pending
    # for sigtimedwait, which returns the moment a child exits.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    while True:
        done = reap()
        if child.pid in done:
            child.returncode = done[child.pid]
            break
        if signal.sigtimedwait({signal.SIGCHLD}, CHECK_SECONDS) is not None:
            continue  # a child exited: reap it first
        if fatal_program and not (stopping or failing):
            program = fatal_program()
            if program is not None:
                failing = True
                exit_code_file.write_text("1\n")
                log.error(
                    "%s is FATAL: stopping (fail_fast)", program, extra={"event": "fail_fast"}
                )
                if shutdown is not None:
                    shutdown()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
    stop_leftovers()
    code = child.returncode
    code = 128 - code if code < 0 else code
    if stopping:
        return code
    try:
        return int(exit_code_file.read_text().strip())
    except (OSError, ValueError):
        return code
