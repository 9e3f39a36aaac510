"""Optional traces (OpenTelemetry) and error reports (Sentry), set by their standard variables.

Both are off unless asked for, and then nothing of them is imported (no memory,
no time):

- **Traces** are on when ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or
  ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (and ``OTEL_SDK_DISABLED`` is not
  ``true``, ``OTEL_TRACES_EXPORTER`` not ``none``): the ``otel`` extra
  (:mod:`common.tracing`) exports spans over OTLP/HTTP.
- **Error reports** are on when ``SENTRY_DSN`` is set and not empty (Sentry's
  own rule): the ``sentry`` extra (:mod:`common.error_reports`).

:func:`problems` checks every such variable the way the libraries read them,
because they fall back silently on a bad value (an unknown
``OTEL_TRACES_SAMPLER`` becomes ``parentbased_always_on`` with a warning, a bad
timeout becomes 10 s): a bad value, a tracing variable without an endpoint,
or an integration asked for but not installed is a :class:`~common.config.Problem`,
so app-entrypoint exits 78 naming the variable. The rules are the OpenTelemetry
specification's (*SDK environment variables*, *OTLP exporter configuration*)
as opentelemetry-python reads them, and Sentry's DSN format
(``{scheme}://{public_key}@{host}/{project_id}``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from common.config import Problem, Settings

ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
FLUSH_SECONDS = 0.5  # at most, at a stop or a crash: a dead collector or Sentry cannot hold it


def _extra(name: str) -> str:
    return (
        f"the {name} extra: pip install '.[{name}]', "
        f"or build the image with --build-arg EXTRAS={name}"
    )


def _number(low: float, integer: bool = False) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        try:
            number = int(value) if integer else float(value)
        except ValueError:
            number = None
        if number is None or number < low:
            kind = "an integer" if integer else "a number"
            return f"expected {kind} >= {low:g}, got {value!r}"
        return None

    return check


def _one_of(*choices: str) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if value.strip().lower() in choices:
            return None
        return f"expected one of {', '.join(choices)}, got {value!r}"

    return check


def _pairs(value: str) -> str | None:
    """``key=value,key2=value2`` (W3C baggage-like, as OTEL_*_HEADERS and attributes are)."""
    for item in value.split(","):
        key, equals, _ = item.partition("=")
        if item.strip() and (not equals or not key.strip()):
            return f"expected key=value pairs separated by commas, got {item.strip()!r}"
    return None


def _url(value: str) -> str | None:
    scheme, sep, rest = value.partition("://")
    if scheme not in ("http", "https") or not sep or not rest.split("/", 1)[0]:
        return f"expected an http:// or https:// URL, got {value!r}"
    return None


def _sampler_arg(value: str) -> str | None:
    try:
        ratio = float(value)
    except ValueError:
        ratio = -1.0
    return None if 0 <= ratio <= 1 else f"expected a ratio from 0 to 1, got {value!r}"


def _dsn(value: str) -> str | None:
    """Sentry's ``{scheme}://{public_key}@{host}/{project_id}``; the key is never echoed."""
    scheme, sep, rest = value.partition("://")
    key, at, location = rest.rpartition("@")
    host, _, path = location.partition("/")
    project = path.rstrip("/").rpartition("/")[2]
    if scheme not in ("http", "https") or not sep or not at or not key or not host:
        return "expected https://<public key>@<host>/<project id> (the DSN of a Sentry project)"
    if not project.isdigit():
        return f"expected a numeric project id at the end of the DSN, got {project!r}"
    return None


# Variables that only mean something with an endpoint (the shared ones, such as
# OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES, may be meant for other tools).
TRACING_CHECKS: dict[str, Callable[[str], str | None]] = {
    "OTEL_TRACES_EXPORTER": _one_of("otlp", "none"),
    "OTEL_TRACES_SAMPLER": _one_of(*SAMPLERS),
    "OTEL_TRACES_SAMPLER_ARG": _sampler_arg,
    **{
        f"OTEL_EXPORTER_OTLP{signal}_{name}": check
        for signal in ("", "_TRACES")
        for name, check in (
            ("PROTOCOL", _one_of("http/protobuf")),  # the otel extra's exporter speaks only it
            ("TIMEOUT", _number(0)),  # seconds, as opentelemetry-python reads it
            ("COMPRESSION", _one_of("gzip", "deflate", "none")),
            ("HEADERS", _pairs),
        )
    },
    "OTEL_BSP_SCHEDULE_DELAY": _number(0, integer=True),  # milliseconds
    "OTEL_BSP_EXPORT_TIMEOUT": _number(0, integer=True),  # milliseconds
    "OTEL_BSP_MAX_QUEUE_SIZE": _number(1, integer=True),
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": _number(1, integer=True),
}
SHARED_CHECKS: dict[str, Callable[[str], str | None]] = {
    "OTEL_SDK_DISABLED": _one_of("true", "false"),
    "OTEL_RESOURCE_ATTRIBUTES": _pairs,
    "OTEL_PROPAGATORS": lambda value: next(
        filter(None, map(_one_of("tracecontext", "baggage", "none"), value.split(","))), None
    ),
}


def tracing_on(environ: Mapping[str, str]) -> bool:
    """True when an OTLP endpoint is set and neither the SDK nor the exporter is turned off."""
    return (
        any(environ.get(name) for name in ENDPOINTS)
        and environ.get("OTEL_SDK_DISABLED", "").strip().lower() != "true"
        and environ.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() != "none"
    )


def sentry_on(environ: Mapping[str, str]) -> bool:
    """True when ``SENTRY_DSN`` is set and not empty."""
    return bool(environ.get("SENTRY_DSN", "").strip())


def _installed(module: str) -> bool:
    import importlib.util  # only when an integration is asked for

    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False


def problems(environ: Mapping[str, str]) -> list[Problem]:
    """Every bad tracing or error-report variable in ``environ``, as config problems."""
    from common.config import Problem

    found: list[Problem] = []

    def add(name: str, detail: str) -> None:
        found.append(Problem(name, f"env {name}", detail))

    endpoint = next((name for name in ENDPOINTS if name in environ), None)
    off = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none" or (
        environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    )  # turned off on purpose: the other variables may stay
    for name in ENDPOINTS:
        if name in environ and (detail := _url(environ[name])):
            add(name, detail)
    for name, check in (TRACING_CHECKS | SHARED_CHECKS).items():
        if name in environ and (detail := check(environ[name])):
            add(name, detail)
        elif name in environ and endpoint is None and name in TRACING_CHECKS and not off:
            add(name, f"set, but tracing is off: no {' or '.join(ENDPOINTS)}")
    if tracing_on(environ) and not (
        _installed("opentelemetry.sdk") and _installed("opentelemetry.exporter.otlp.proto.http")
    ):
        add(endpoint or ENDPOINTS[1], "tracing needs " + _extra("otel"))
    if "SENTRY_DSN" in environ and sentry_on(environ):
        if detail := _dsn(environ["SENTRY_DSN"].strip()):
            add("SENTRY_DSN", detail)
        elif not _installed("sentry_sdk"):
            add("SENTRY_DSN", "error reports need " + _extra("sentry"))
    return found


class Telemetry(Protocol):
    """What the lifecycle asks of the tracer (:class:`common.tracing.Tracing`)."""

    def unit(self, name: str, parent: Mapping[str, str] | None) -> AbstractContextManager[Outcome]:
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
    """Start what ``environ`` asks for (validated before, by :func:`problems`).

    Error reports start first, so that a crash while the tracer starts is
    reported too. Returns the tracer (None when traces are off).
    """
    environ = os.environ if environ is None else environ
    if sentry_on(environ):
        from common import error_reports

        _started.append(error_reports.start(program, settings, FLUSH_SECONDS))
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
