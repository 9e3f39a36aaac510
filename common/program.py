"""Run one program: settings, logging, exit codes; and every worker's ``__main__``.

Exit codes: 0 clean stop, 1 crash (logged with ``event: crashed``), 78 bad
config (``event: config_invalid``, sysexits.h EX_CONFIG). Imports nothing
heavy, so the entrypoint and the healthcheck stay fast.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from common import logs
from common.config import (
    EX_CONFIG,
    ConfigError,
    Settings,
    effective_settings,
    load_settings,
    unknown_env_names,
)
from common.errors import EarlyExitError, FatalError
from common.loglines import capture_std_streams, release_std_streams

__all__ = ["run_worker"]  # a worker's __main__.py; run_program... are the runtime's

log = logging.getLogger("program")
Declarations = Mapping[str, type | None]


def program_name(default: str) -> str:
    """The supervisord program name (``SUPERVISOR_PROCESS_NAME``), else ``default``."""
    return os.environ.get("SUPERVISOR_PROCESS_NAME") or default


def run_program(
    program: str,
    main: Callable[[Settings], None],
    *,
    declarations: Callable[[], Declarations] | None = None,
    log_programs: tuple[str, ...] | None = (),
    warn_unknown_env: bool = False,
    log_fd: int = 1,
    capture_streams: bool = True,
) -> int:
    """Load settings, configure logging, run ``main(settings)``; return the exit code.

    ``declarations()`` names the worker programs whose sections are read, with
    their declared settings classes (:func:`common.config.load_settings`); an
    exception while importing them is a crash. A :class:`ConfigError` (from
    loading settings or from ``main``) logs one ``config_invalid`` line and
    returns 78; any exception escaping ``main`` logs one ``crashed`` line
    (exception_type, stack) and returns 1 (a :class:`FatalError` is logged
    without its stack). Once settings are valid, one ``config_loaded`` line
    lists every value and its source (secrets redacted; the sections of
    ``log_programs``, None: all). ``warn_unknown_env`` logs a warning per
    unknown ``APP_*`` variable. Log lines go to ``log_fd``; ``capture_streams``
    turns ``sys.stdout`` and ``sys.stderr`` writes into records too (not with
    ``log_format: console``, so that ``breakpoint()`` works).
    """
    # Until the settings are loaded, APP_LOG_FORMAT alone says how a config_invalid line reads.
    early = "console" if os.environ.get("APP_LOG_FORMAT") == "console" else "json"
    logs.configure_logging(program, fd=log_fd, log_format=early)
    if capture_streams and early == "json":
        capture_std_streams()
    try:
        settings = load_settings(declarations=declarations() if declarations else None)
        logs.configure_logging(
            program,
            service=settings.service_name,
            env=settings.env,
            instance=settings.instance,
            level=settings.log_level,
            fd=log_fd,
            log_format=settings.log_format,
        )
        if settings.log_format == "console":
            release_std_streams()
        report = effective_settings(settings, log_programs)
        log.info("configuration loaded", extra={"event": logs.CONFIG_LOADED, "settings": report})
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
    except EarlyExitError as exc:
        return exc.code
    except FatalError as exc:
        log.critical("%s", exc, extra={"event": logs.CRASHED, "exception_type": type(exc).__name__})
        return 1
    except BaseException as exc:  # SystemExit, KeyboardInterrupt, CancelledError: a crash too
        log.critical(
            "%s crashed: %s: %s",
            program,
            type(exc).__name__,
            exc,
            exc_info=True,
            extra={"event": logs.CRASHED},
        )
        return 1
    return 0


def declared_settings(package: str) -> type | None:
    """The ``Settings`` class of ``<package>.settings``, or None if there is no such module."""
    import importlib
    import importlib.util

    if importlib.util.find_spec(package + ".settings") is None:
        return None
    module = importlib.import_module(package + ".settings")
    found = getattr(module, "Settings", None)
    if not isinstance(found, type):
        raise FatalError(f"{package}.settings must define a dataclass named Settings")
    return found


def run_worker(package: str) -> None:
    """A worker's ``__main__``: run ``<package>.worker`` as its program; exit 0, 1 or 78.

    The program name comes from supervisord (``SUPERVISOR_PROCESS_NAME``), else
    the folder's name. Run alone (``python -m services.<name>``), metrics go to
    a temporary directory, removed at exit, unless ``PROMETHEUS_MULTIPROC_DIR``
    is set.
    """
    from common.lifecycle import EXIT_WITHIN_SECONDS, catch_early_stop, exit_within

    catch_early_stop()  # before the imports: a stop while they run is kept
    program = program_name(package.rpartition(".")[2])

    def main(settings: Settings) -> None:
        _run_worker(program, package, settings)

    code = run_program(
        program,
        main,
        declarations=lambda: {program: declared_settings(package)},
        log_programs=(program,),
    )
    exit_within(EXIT_WITHIN_SECONDS, code)  # a config error or crash before the loop, too
    from common import observability

    observability.finish()  # spans and error reports still queued: half a second at most
    sys.exit(code)


def _run_worker(program: str, package: str, settings: Settings) -> None:
    import importlib

    from common import observability
    from common.lifecycle import is_async, run_async, run_sync, worker_shape
    from common.metrics import MULTIPROC_ENV, WorkerMetrics
    from common.worker import AsyncContext, Context, NoSettings

    telemetry = observability.start(program, settings)  # before the import: its crash is reported
    module = importlib.import_module(package + ".worker")  # an error in it is logged as JSON
    shape, work = worker_shape(module)
    lifespan = getattr(module, "lifespan", None)
    temporary = None
    alone = not os.environ.get("SUPERVISOR_ENABLED")  # supervisord sets it for its children
    if settings.metrics_enabled and alone and not os.environ.get(MULTIPROC_ENV):
        temporary = _temporary_metrics_dir(program)
    try:
        own: Any = settings.program(program).own or NoSettings()
        metrics = WorkerMetrics(program, settings.metrics_enabled, shape == "long-running")
        asynchronous = is_async(work)
        kind = AsyncContext if asynchronous else Context
        ctx = kind(program, own, settings, logging.getLogger(program), metrics, None, telemetry)
        if asynchronous:
            run_async(ctx, shape, work, lifespan)  # type: ignore[arg-type]
        else:
            run_sync(ctx, shape, work, lifespan)  # type: ignore[arg-type]
    finally:
        if temporary is not None:
            import shutil

            shutil.rmtree(temporary, ignore_errors=True)


def _temporary_metrics_dir(program: str) -> str:
    import tempfile

    from common.metrics import MULTIPROC_ENV

    path = tempfile.mkdtemp(prefix=f"{program}-metrics-")
    os.environ[MULTIPROC_ENV] = path  # before prometheus_client is first imported
    log.info("metrics go to %s (removed at exit): run alone", path, extra={"event": "metrics_dir"})
    return path
