"""The entrypoint as PID 1: run supervisord as a child, forward signals, reap orphans.

In a container, PID 1 must pass ``docker stop``'s SIGTERM on and reap orphaned
processes the kernel hands to it (the jobs tini and dumb-init do). When the
entrypoint stays PID 1 (``fail_fast`` on), :func:`supervise` does both, then
exits with the code the event listener left in the exit-code file, or else
supervisord's own (0 after a requested stop; 128 + n if a signal n killed it).
"""

from __future__ import annotations

import fcntl
import os
import signal
import stat
import subprocess
from collections.abc import Mapping
from pathlib import Path

FORWARDED = (
    signal.SIGTERM,
    signal.SIGINT,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)


def append_to_regular_stdout() -> None:
    """If stdout is a regular file (``make run > out.log``), make every write append.

    supervisord opens ``/dev/stdout`` anew (its own file offset, in append mode);
    without O_APPEND on ours, our later lines would overwrite its output.
    """
    if stat.S_ISREG(os.fstat(1).st_mode):
        fcntl.fcntl(1, fcntl.F_SETFL, fcntl.fcntl(1, fcntl.F_GETFL) | os.O_APPEND)


def supervise(argv: list[str], environ: Mapping[str, str], exit_code_file: Path) -> int:
    """Run ``argv`` until it exits, as its PID-1 parent; return the exit code to use."""
    append_to_regular_stdout()
    # Its own process group: Ctrl-C reaches it once, forwarded from here.
    child = subprocess.Popen(argv, env=dict(environ), process_group=0)

    def forward(signum: int, _frame: object) -> None:
        if child.returncode is None:
            os.kill(child.pid, signum)

    for signum in FORWARDED:
        signal.signal(signum, forward)
    while True:
        pid, status = os.wait()  # also reaps orphans adopted by PID 1
        if pid == child.pid:
            code = child.returncode = os.waitstatus_to_exitcode(status)
            break
    code = 128 - code if code < 0 else code
    try:
        return int(exit_code_file.read_text().strip())
    except (OSError, ValueError):
        return code
