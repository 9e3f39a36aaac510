"""``app-entrypoint``'s first step: block the stop signals, then import the rest.

In a container ``app-entrypoint`` is PID 1, and the kernel drops a signal sent
to PID 1 that has no handler for it (pid_namespaces(7)). Blocked, SIGTERM,
SIGINT and SIGQUIT stay pending instead, through validation and the exec, until
supervisord handles them (:mod:`entrypoint.supervisord`). This module imports
nothing but :mod:`signal`, so that they are blocked within milliseconds of the
interpreter's start; importing :mod:`entrypoint.__main__` (settings, logging)
first would leave them unprotected for about 50 ms more.
"""

from __future__ import annotations

import signal

from entrypoint import STOP_SIGNALS


def main() -> None:
    """Console-script entry point of ``app-entrypoint``."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    from entrypoint.__main__ import main as run  # only once they are blocked

    run()
