"""Optional traces (OpenTelemetry) and error reports (Sentry), set by their standard variables.

Both are off unless asked for, and then nothing of them is imported (no memory,
no time):

- **Traces** are on when ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (and ``OTEL_SDK_DISABLED`` is not
  ``true``, ``OTEL_TRACES_EXPORTER`` not ``none``): the ``otel`` extra
  (:mod:`common.tracing`) exports spans over OTLP/HTTP.
- **Error reports** are on when ``SENTRY_DSN`` is set and not empty (Sentry's
  own rule): the ``sentry`` extra (:mod:`common.error_reports`).

:func:`common.integration_env.problems` checks their variables first, as the
libraries read them (app-entrypoint exits 78 naming a bad one).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from common.config import Settings

ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
FLUSH_SECONDS = 0.5  # at most, at a stop or a crash: a dead collector or Sentry cannot hold it


def tracing_turned_off(environ: Mapping[str, str]) -> bool:
    """True when ``OTEL_SDK_DISABLED`` is ``true`` or ``OTEL_TRACES_EXPORTER`` is ``none``."""
    return (
        environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
        or environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none"
    )


def tracing_on(environ: Mapping[str, str]) -> bool:
    """True when an OTLP endpoint is set and tracing is not :func:`tracing_turned_off`.

    An empty variable counts as unset (the OpenTelemetry specification's rule).
    """
    return any(environ.get(name) for name in ENDPOINTS) and not tracing_turned_off(environ)


def sentry_on(environ: Mapping[str, str]) -> bool:
    """True when ``SENTRY_DSN`` is set and not empty nor blank."""
    return bool(environ.get("SENTRY_DSN", "").strip())


class Telemetry(Protocol):
    """What the lifecycle asks of the tracer (:class:`common.tracing.Tracing`)."""

    def unit(self, name: str, parent: object) -> AbstractContextManager[Outcome]:
        """Enter one unit of work (a span) and yield its :class:`Outcome`."""
        ...

    def headers(self) -> dict[str, str]:
        """The current context as W3C ``traceparent`` headers, for a message sent on."""
        ...

    def flush(self, seconds: float) -> None:
        """Send what is buffered, waiting ``seconds`` at most."""
        ...


class Outcome(Protocol):
    """The unit of work in flight: told when it failed without raising (``run_once``'s)."""

    def failed(self, exc: BaseException) -> None:
        """Record ``exc`` on the unit and mark it an error."""
        ...


_started: list[Any] = []  # the integrations started in this process, flushed by finish()


def start(
    program: str, settings: Settings, environ: Mapping[str, str] | None = None
) -> Telemetry | None:
    """Start what ``environ`` asks for (checked before: :mod:`common.integration_env`).

    Error reports start first, so that a crash while the tracer starts is
    reported too. Returns the tracer (None when traces are off).
    """
    environ = os.environ if environ is None else environ
    if sentry_on(environ):
        from common import error_reports

        _started.append(error_reports.start(program, settings))
    if not tracing_on(environ):
        return None
    from common import tracing

    tracer = tracing.start(program, settings)
    _started.append(tracer)
    return tracer


def finish(seconds: float = FLUSH_SECONDS) -> None:
    """Flush every integration started here, ``seconds`` at most in all (a stop, a crash)."""
    import time

    deadline = time.monotonic() + seconds
    for integration in reversed(_started):  # spans first, then the reports of a crash
        integration.flush(max(0.0, deadline - time.monotonic()))
