"""supervisord itself, run in this process; exit 1 if fail-fast stopped it.

``app-entrypoint`` execs ``python -m entrypoint.supervisord --nodaemon -c
supervisord.conf`` once the settings are valid, so supervisord is PID 1 in a
container: it handles ``docker stop``'s SIGTERM and reaps orphaned processes
(its main loop waits for any child). supervisord always exits 0; this module
exits 1 instead when :mod:`entrypoint.pid1` shut it down because a process
went FATAL, and says so in one ``fail_fast`` JSON line; 78 if supervisord
refuses ``supervisord.conf``.

A stop signal is never lost while PID 1 starts. The kernel drops a signal sent
to a namespace's PID 1 that has no handler for it (pid_namespaces(7)), and
supervisord installs its handlers only once its config is loaded. So
``app-entrypoint`` blocks SIGTERM, SIGINT and SIGQUIT before the exec (blocked
signals stay pending across ``execve``); here they get
:func:`entrypoint.pid1.remember_stop` as handler and are unblocked. One that
came before supervisord starts ends the process at once (exit 0); one that
comes while supervisord loads makes it stop before it spawns anything.

Nothing else is imported until supervisord has stopped: this process stays as
small as supervisord alone.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from supervisor import supervisord

from entrypoint import STOP_SIGNALS, pid1


def log_line(level: str, message: str, **fields: Any) -> None:
    """Log one JSON line as the entrypoint, with the identity it resolved before the exec.

    The identity comes from ``APP_SUPERVISORD_IDENTITY``, not from the settings
    again: fail-fast typically follows a config file that went bad meanwhile.
    """
    import json
    import logging

    from common.config import SUPERVISORD_IDENTITY_ENV
    from common.logs import configure_logging

    identity = json.loads(os.environ.get(SUPERVISORD_IDENTITY_ENV) or "{}")
    configure_logging(
        "entrypoint",
        service=identity.get("service", "app"),
        env=identity.get("env", "unknown"),
        instance=identity.get("instance", "unknown"),
    )
    logging.getLogger("entrypoint").log(logging.getLevelName(level), message, extra=fields)


def main(argv: list[str]) -> int:
    """Run supervisord with ``argv`` until it stops; return 1 after fail-fast, else 0.

    78 (EX_CONFIG) if supervisord exits at start because it refuses its
    config (it has printed why on stderr); 1, with one ``crashed`` JSON line
    (exception type, message, stack) instead of a bare traceback, if it raises.
    """
    # supervisord's HTTP server code (medusa) print()s some errors, e.g. "uncaptured
    # python exception" when an RPC client hangs up: stdout carries JSON lines only.
    sys.stdout = sys.stderr
    for signum in STOP_SIGNALS:
        signal.signal(signum, pid1.remember_stop)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # pending ones arrive now
    if pid1.early_stop:
        return 0  # stopped before anything started
    try:
        supervisord.main(argv)
    except SystemExit as exc:  # supervisord's usage(): a bad supervisord.conf or argument
        if not exc.code:
            return 0
        log_line(
            "ERROR",
            f"supervisord refused to start (exit {exc.code}): see its message above",
            event="config_invalid",
        )
        return 78
    except Exception as exc:  # e.g. no writable temporary directory (tempfile.gettempdir)
        import traceback

        log_line(
            "CRITICAL",
            f"supervisord crashed: {type(exc).__name__}: {exc}",
            event="crashed",
            exception_type=type(exc).__name__,
            stack=traceback.format_exc(),
        )
        return 1
    if not pid1.fatal:
        return 0
    process = pid1.fatal[0]
    log_line(
        "ERROR",
        f"{process} went FATAL: everything stopped (fail_fast); exit code 1",
        event="fail_fast",
        fatal_program=process.partition(":")[2],
        code=1,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
