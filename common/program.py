"""Run one program: settings, logging, exit codes.

Exit codes: 0 clean stop, 1 crash (logged with ``event: crashed``), 78 bad
config (``event: config_invalid``, sysexits.h EX_CONFIG). Imports nothing
heavy, so the entrypoint and the healthcheck stay fast.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from common import logs
from common.config import (
    EX_CONFIG,
    ConfigError,
    Settings,
    effective_settings,
    load_settings,
    unknown_env_names,
)
from common.errors import FatalError
from common.loglines import capture_std_streams

log = logging.getLogger("program")


def program_name(default: str) -> str:
    """The supervisord program name (``SUPERVISOR_PROCESS_NAME``), else ``default``."""
    return os.environ.get("SUPERVISOR_PROCESS_NAME") or default


def run_program(
    program: str,
    main: Callable[[Settings], None],
    *,
    warn_unknown_env: bool = False,
    log_fd: int = 1,
    capture_streams: bool = True,
) -> int:
    """Load settings, configure logging, run ``main(settings)``; return the exit code.

    A :class:`ConfigError` (from loading settings or from ``main``) logs one
    ``config_invalid`` line and returns 78; any exception escaping ``main`` logs
    one ``crashed`` line (exception_type, stack) and returns 1 (a
    :class:`FatalError` is logged without its stack). Once settings are valid,
    one ``config_loaded`` line lists every value and its source (secrets
    redacted). ``warn_unknown_env`` logs a warning per unknown ``APP_*``
    variable (the entrypoint does, so that its programs need not repeat them).
    Log lines go to ``log_fd``; ``capture_streams`` turns ``sys.stdout`` and
    ``sys.stderr`` writes into records too.
    """
    logs.configure_logging(program, fd=log_fd)
    if capture_streams:
        capture_std_streams()
    try:
        settings = load_settings()
        logs.configure_logging(
            program,
            service=settings.service_name,
            env=settings.env,
            instance=settings.instance,
            level=settings.log_level,
            fd=log_fd,
        )
        log.info(
            "configuration loaded",
            extra={"event": logs.CONFIG_LOADED, "settings": effective_settings(settings)},
        )
        for name in unknown_env_names() if warn_unknown_env else ():
            log.warning("ignoring unknown environment variable %s", name)
        main(settings)
    except ConfigError as exc:
        log.error(
            "invalid configuration: %s",
            exc,
            extra={"event": logs.CONFIG_INVALID, "problems": [str(p) for p in exc.problems]},
        )
        return EX_CONFIG
    except FatalError as exc:
        log.critical("%s", exc, extra={"event": logs.CRASHED, "exception_type": type(exc).__name__})
        return 1
    except Exception:
        log.critical("%s crashed", program, exc_info=True, extra={"event": logs.CRASHED})
        return 1
    return 0
