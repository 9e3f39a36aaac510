"""The variables of the optional integrations, checked as the libraries read them.

opentelemetry-python and sentry-sdk fall back silently on a bad value (an
unknown ``OTEL_TRACES_SAMPLER`` becomes ``parentbased_always_on`` with a
warning, a bad ``OTEL_EXPORTER_OTLP_TIMEOUT`` 10 s, a malformed header is
dropped), or fail in every worker at start (``OTEL_BSP_SCHEDULE_DELAY=0``, a
DSN with a trailing slash). :func:`problems` turns each into a
:class:`~common.config.Problem` naming the variable, so app-entrypoint exits 78
before anything starts; so are a tracing variable set without an endpoint
(traces asked for, never sent) and an integration asked for but not installed.

The rules, and where they come from:

- an empty ``OTEL_*`` variable is unset (OpenTelemetry specification, *SDK
  environment variables*);
- endpoints are http(s) URLs with a host and a numeric port, if any;
  ``OTEL_EXPORTER_OTLP_TIMEOUT`` is in seconds, finite and above 0, as
  opentelemetry-python reads it; headers and resource attributes are
  ``key=value`` lists, with the characters ``opentelemetry.util.re`` accepts;
  the sampler is lowercased but not stripped, and propagator names are exact
  (opentelemetry-python 1.4x);
- ``OTEL_BSP_*`` are integers, the delay above 0 and the batch no larger than
  the queue (2048 and 512 by default: the SDK's ``BatchSpanProcessor``);
- ``SENTRY_DSN`` is ``{scheme}://{public_key}@{host}[:port]/[path/]{project_id}``,
  parsed as sentry-sdk's ``Dsn`` parses it (``urlsplit``), its key never echoed.

Standard library only, and only when a variable is set: app-entrypoint
becomes PID 1 and keeps every import.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from common.observability import ENDPOINTS, sentry_on, tracing_on, tracing_turned_off

if TYPE_CHECKING:
    from urllib.parse import SplitResult

    from common.config import Problem

Check = Callable[[str], "str | None"]
SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
BSP_DEFAULTS = {"OTEL_BSP_MAX_QUEUE_SIZE": 2048, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": 512}
# opentelemetry.util.re's _KEY_FORMAT and _LIBERAL_VALUE_FORMAT (what the exporter keeps).
HEADER_KEY = r"[\x21\x23-\x27\x2a\x2b\x2d\x2e\x30-\x39\x41-\x5a\x5e-\x7a\x7c\x7e]+"
HEADER_VALUE = r"[\x20\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*"


def _extra(name: str) -> str:
    return (
        f"the {name} extra: pip install '.[{name}]', "
        f"or build the image with --build-arg EXTRAS={name}"
    )


def _number(low: float, *, integer: bool = False, above: bool = False) -> Check:
    """A number ``>= low`` (``> low`` if ``above``), finite; an integer if ``integer``."""

    def check(value: str) -> str | None:
        try:
            number: float | None = int(value) if integer else float(value)
        except ValueError:
            number = None
        if number is None or not math.isfinite(number) or number < low or (above and number == low):
            kind = "an integer" if integer else "a number"
            return f"expected {kind} {'>' if above else '>='} {low:g}, got {value!r}"
        return None

    return check


def _one_of(*choices: str, strip: bool = True) -> Check:
    """One of ``choices``, in any case (and with spaces around it if ``strip``)."""

    def check(value: str) -> str | None:
        if (value.strip() if strip else value).lower() in choices:
            return None
        return f"expected one of {', '.join(choices)}, got {value!r}"

    return check


def _propagators(value: str) -> str | None:
    """Names separated by commas, exact (entry-point names), spaces around them allowed."""
    for name in (part.strip() for part in value.split(",")):
        if name not in ("tracecontext", "baggage") and name.lower() != "none":
            return f"expected tracecontext, baggage or none (exact names), got {name!r}"
    return None


def _pairs(value: str) -> str | None:
    """``key=value`` pairs separated by commas, with the characters the exporter keeps."""
    import re  # only when the variable is set

    pair = re.compile(rf"[ \t]*{HEADER_KEY}[ \t]*=[ \t]*{HEADER_VALUE}[ \t]*")
    for item in re.split(r"[ \t]*,[ \t]*", value):
        if item and not pair.fullmatch(item):
            return (
                f"expected key=value pairs separated by commas (printable ASCII, no spaces "
                f'in keys, no " ; \\ in values: URL-encode them), got {item!r}'
            )
    return None


def _split(value: str) -> SplitResult | None:
    """``value`` split as a URL (``urlsplit``); None if its port is not a number."""
    from urllib.parse import urlsplit  # only when a variable is set

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return None
    return parts


def _url(value: str) -> str | None:
    expected = f"expected an http:// or https:// URL with a host, got {value!r}"
    if any(c.isspace() for c in value):
        return expected
    parts = _split(value)
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        return expected
    return None


def _sampler_arg(value: str) -> str | None:
    try:
        ratio = float(value)
    except ValueError:
        ratio = math.nan
    return None if 0 <= ratio <= 1 else f"expected a ratio from 0 to 1, got {value!r}"


def _dsn(value: str) -> str | None:
    """None if sentry-sdk's ``Dsn`` accepts ``value``; else why, without the key."""
    shape = "expected https://<public key>@<host>/<project id> (the DSN of a Sentry project)"
    parts = _split(value)
    if parts is None:
        return shape + ": the port is not a number"
    if parts.scheme not in ("http", "https") or not parts.hostname or not parts.username:
        return shape
    project = parts.path.rsplit("/", 1)[-1]
    try:
        int(project)
    except ValueError:
        return f"expected a numeric project id at the end of the DSN, got {project!r}"
    return None


# Variables that only mean something with an endpoint (the shared ones, such as
# OTEL_SERVICE_NAME or OTEL_RESOURCE_ATTRIBUTES, may be meant for other tools).
TRACING_CHECKS: dict[str, Check] = {
    "OTEL_TRACES_EXPORTER": _one_of("otlp", "none"),
    "OTEL_TRACES_SAMPLER": _one_of(*SAMPLERS, strip=False),  # the SDK does not strip it
    "OTEL_TRACES_SAMPLER_ARG": _sampler_arg,
    **{
        f"OTEL_EXPORTER_OTLP{signal}_{name}": check
        for signal in ("", "_TRACES")
        for name, check in (
            ("PROTOCOL", _one_of("http/protobuf")),  # the otel extra's exporter speaks only it
            ("TIMEOUT", _number(0, above=True)),  # seconds, as opentelemetry-python reads it
            ("COMPRESSION", _one_of("gzip", "deflate", "none")),
            ("HEADERS", _pairs),
        )
    },
    "OTEL_BSP_SCHEDULE_DELAY": _number(0, integer=True, above=True),  # milliseconds
    "OTEL_BSP_EXPORT_TIMEOUT": _number(0, integer=True),  # milliseconds
    "OTEL_BSP_MAX_QUEUE_SIZE": _number(1, integer=True),
    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": _number(1, integer=True),
}
SHARED_CHECKS: dict[str, Check] = {
    "OTEL_SDK_DISABLED": _one_of("true", "false"),
    "OTEL_RESOURCE_ATTRIBUTES": _pairs,
    "OTEL_PROPAGATORS": _propagators,
}


def _size(value: str | None, default: int) -> int | None:
    """``value`` as a size (``default`` if unset); None if it is no integer (said already)."""
    if value is None:
        return default
    size = int(value) if value.strip().isdecimal() else 0
    return size if size >= 1 else None


def _installed(module: str) -> bool:
    import importlib.util  # only when an integration is asked for

    try:
        return importlib.util.find_spec(module) is not None
    except ImportError:  # a parent package is missing
        return False


def problems(environ: Mapping[str, str]) -> list[Problem]:
    """Every bad tracing or error-report variable in ``environ``, as config problems."""
    from common.config import Problem

    environ = {k: v for k, v in environ.items() if not (k.startswith("OTEL_") and v == "")}
    found: list[Problem] = []

    def add(name: str, detail: str) -> None:
        found.append(Problem(name, f"env {name}", detail))

    endpoint = next((name for name in ENDPOINTS if name in environ), None)
    off = tracing_turned_off(environ)  # on purpose: the other variables may stay
    for name in ENDPOINTS:
        if name in environ and (detail := _url(environ[name])):
            add(name, detail)
    for name, check in (TRACING_CHECKS | SHARED_CHECKS).items():
        if name in environ and (detail := check(environ[name])):
            add(name, detail)
        elif name in environ and endpoint is None and name in TRACING_CHECKS and not off:
            add(name, f"set, but tracing is off: no {' or '.join(ENDPOINTS)}")
    queue, batch = (_size(environ.get(name), default) for name, default in BSP_DEFAULTS.items())
    if queue is not None and batch is not None and batch > queue:
        name = "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"
        add(name if name in environ else "OTEL_BSP_MAX_QUEUE_SIZE",
            f"the batch ({batch}) must not exceed the queue ({queue})")  # fmt: skip
    if tracing_on(environ) and not (
        _installed("opentelemetry.sdk") and _installed("opentelemetry.exporter.otlp.proto.http")
    ):
        add(endpoint or ENDPOINTS[1], "tracing needs " + _extra("otel"))
    if sentry_on(environ):
        if detail := _dsn(environ["SENTRY_DSN"].strip()):
            add("SENTRY_DSN", detail)
        elif not _installed("sentry_sdk"):
            add("SENTRY_DSN", "error reports need " + _extra("sentry"))
    return found
