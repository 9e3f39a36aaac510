"""Error reports to Sentry (the ``sentry`` extra), imported only when ``SENTRY_DSN`` is set.

What is reported, through sentry-sdk's documented integrations (logging,
threading, excepthook):

- every record logged at ERROR or above, with its exception: a ``run_once``
  that raised (``iteration_failed``), a crash (``crashed``: a ``serve`` or a
  lifespan that raised, a broken worker module), and whatever your code logs
  at ERROR (``ctx.log.exception(...)``); the record's own keys (``event``,
  your ``extra``) come with it, and the INFO lines before it as breadcrumbs;
- an exception that ends one of your threads.

Not the OpenTelemetry SDK's own errors (a collector that is down), nor text
written to ``sys.stderr``: those stay log lines.

Every event carries the environment (``SENTRY_ENVIRONMENT``, else the ``env``
setting), the release (``SENTRY_RELEASE``, else ``<service_name>@<version>``,
with ``+<commit>`` when known) and the tags ``program``, ``service``,
``instance`` and ``commit``. Events are sent by sentry-sdk's background
thread; at a stop or a crash they are flushed, waiting
:data:`common.observability.FLUSH_SECONDS` at most (and :data:`EXIT_SECONDS`
at the exit, which logs how many were dropped), so an unreachable Sentry
cannot hold a stop.
"""

from __future__ import annotations

import logging
import os

import sentry_sdk
from sentry_sdk.integrations.atexit import AtexitIntegration
from sentry_sdk.integrations.logging import ignore_logger

from common.config import Settings

log = logging.getLogger("error_reports")
EXIT_SECONDS = 0.05


def release(settings: Settings) -> str:
    """``SENTRY_RELEASE``, else ``<service_name>@<version>[+<commit>]`` (Sentry's naming)."""
    given = os.environ.get("SENTRY_RELEASE", "").strip()
    if given:
        return given
    build = "" if settings.commit in ("", "unknown") else f"+{settings.commit}"
    return f"{settings.service_name}@{settings.version}{build}"


def _still_pending(pending: int, timeout: float) -> None:
    """At exit, instead of sentry-sdk's default print to stderr (not a JSON line)."""
    log.warning("%d error reports not sent in %g s: dropped", pending, timeout)


class ErrorReports:
    """The started client; :meth:`flush` is what a stop or a crash calls."""

    def flush(self, seconds: float) -> None:
        """Send the queued events, waiting ``seconds`` at most."""
        sentry_sdk.flush(timeout=seconds)


def start(program: str, settings: Settings) -> ErrorReports:
    """Initialise sentry-sdk from ``SENTRY_DSN`` (checked by :mod:`common.integration_env`)."""
    sentry_sdk.init(
        dsn=os.environ["SENTRY_DSN"].strip(),
        environment=os.environ.get("SENTRY_ENVIRONMENT", "").strip() or settings.env,
        release=release(settings),
        server_name=settings.instance,
        # observability.finish() has flushed, within its bound, before the exit: the
        # interpreter's exit (sentry-sdk's atexit close) waits only long enough to say
        # how many reports are dropped (_still_pending; with 0 it would not call it).
        shutdown_timeout=EXIT_SECONDS,
        integrations=[AtexitIntegration(callback=_still_pending)],
    )
    # The OTLP exporter logs an ERROR for each batch it fails to send: while a collector
    # is down that is one event every few seconds, about telemetry, already in the logs.
    ignore_logger("opentelemetry.*")
    # Text written to sys.stderr (common.loglines: one ERROR record per line): a
    # traceback.print_exc() would be one event per line, and sentry-sdk's own debug
    # output (SENTRY_DEBUG) goes there, each line an event that writes more of it.
    ignore_logger("stderr")
    sentry_sdk.set_tags(
        {
            "program": program,
            "service": settings.service_name,
            "instance": settings.instance,
            "commit": settings.commit,
        }
    )
    return ErrorReports()
