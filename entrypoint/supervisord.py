"""supervisord itself, run in this process; exit 1 if fail-fast stopped it.

``app-entrypoint`` execs ``python -m entrypoint.supervisord --nodaemon -c
supervisord.conf`` once the settings are valid, so supervisord is PID 1 in a
container: it handles ``docker stop``'s SIGTERM and reaps orphaned processes
(its main loop waits for any child). supervisord always exits 0; this module
exits 1 instead when :mod:`entrypoint.failfast` shut it down because a process
went FATAL, and says so in one ``fail_fast`` JSON line. Nothing else is
imported until supervisord has stopped: this process stays as small as
supervisord alone.
"""

from __future__ import annotations

import sys

from supervisor import supervisord

from entrypoint import failfast


def log_fail_fast(process: str) -> None:
    """Log one ``fail_fast`` line (identity fields from the settings, if still valid)."""
    import logging

    from common.config import ConfigError, load_settings
    from common.logs import configure_logging

    try:
        settings = load_settings()
    except ConfigError:
        configure_logging("entrypoint")
    else:
        configure_logging(
            "entrypoint",
            service=settings.service_name,
            env=settings.env,
            instance=settings.instance,
        )
    logging.getLogger("entrypoint").error(
        "%s went FATAL: everything stopped (fail_fast); exit code 1",
        process,
        extra={"event": "fail_fast", "fatal_program": process.partition(":")[2], "code": 1},
    )


def main(argv: list[str]) -> int:
    """Run supervisord with ``argv`` until it stops; return 1 after fail-fast, else 0."""
    supervisord.main(argv)
    if not failfast.fatal:
        return 0
    log_fail_fast(failfast.fatal[0])
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
