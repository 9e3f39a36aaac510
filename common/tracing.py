"""Traces over OTLP/HTTP (the ``otel`` extra): one span per unit of work, ids in the log lines.

Imported only when :func:`common.observability.tracing_on`. The SDK reads its
standard variables itself (endpoint, headers, timeout, compression,
``OTEL_TRACES_SAMPLER``, ``OTEL_BSP_*``: opentelemetry-python's documented
behaviour); :mod:`common.integration_env` has checked them first. The resource
says ``service.name`` (``OTEL_SERVICE_NAME``, else the ``service_name``
setting), ``service.version``, ``service.instance.id`` and
``deployment.environment.name`` from the settings; ``OTEL_RESOURCE_ATTRIBUTES``
overrides any of them.

Each unit (a ``run_once`` call, a ``with ctx.work():`` block) is a span named
after it, with the attributes ``program`` and ``outcome`` (``ok``, ``error``,
or ``cancelled`` for a stop or an exit inside it); an error is recorded on it
as an exception event, status ERROR. While a span is current, every log
record of that thread or task carries ``trace_id`` and ``span_id`` (32 and 16
hex digits, as W3C Trace Context writes them), so the lines join the trace.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Status, StatusCode

from common.config import Settings

SCOPE = "supervised-service-template"  # the instrumentation scope of our spans


class _Unit:
    """The :class:`~common.observability.Outcome` of one span."""

    def __init__(self, span: trace.Span) -> None:
        self.span = span
        self.outcome = "ok"

    def failed(self, exc: BaseException) -> None:
        self.outcome = "error" if isinstance(exc, Exception) else "cancelled"
        self.span.record_exception(exc)
        if self.outcome == "error":
            self.span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))


class Tracing:
    """The started tracer provider and what the lifecycle asks of it."""

    def __init__(self, program: str, provider: TracerProvider) -> None:
        self.program = program
        self.provider = provider
        self.tracer = provider.get_tracer(SCOPE)

    @contextlib.contextmanager
    def unit(self, name: str, parent: object = None) -> Iterator[_Unit]:
        """A current span ``name``; a child of ``parent``'s ``traceparent`` when given.

        ``parent`` is a message's headers (:func:`carrier`); headers that hold
        no valid ``traceparent`` start a new trace, as W3C Trace Context says.
        """
        context = None
        if parent:
            headers = carrier(parent)
            try:
                context = propagate.extract(headers) if headers else None
            except Exception:  # a propagator's bug must not fail the unit of work
                log.warning("cannot read the trace context of %r", parent, exc_info=True)
        with self.tracer.start_as_current_span(
            name,
            context=context,
            attributes={"program": self.program},
            record_exception=False,  # _Unit.failed records it once, raised or not
            set_status_on_exception=False,
        ) as span:
            unit = _Unit(span)
            try:
                yield unit
            except BaseException as exc:
                unit.failed(exc)
                raise
            finally:
                span.set_attribute("outcome", unit.outcome)

    def headers(self) -> dict[str, str]:
        """``{"traceparent": ...}`` (and ``tracestate``) of the current span, to send on."""
        headers: dict[str, str] = {}
        propagate.inject(headers)
        return headers

    def flush(self, seconds: float) -> None:
        """Export the spans still queued, waiting ``seconds`` at most.

        ``BatchSpanProcessor.force_flush`` ignores its timeout and exports in
        the caller's thread, for as long as the exporter's own timeout (10 s)
        and retries take (opentelemetry-python#4568, open): it runs in a daemon
        thread here, left behind if the collector does not answer in time.
        """
        import threading

        flush = threading.Thread(target=self.provider.force_flush, name="otel-flush", daemon=True)
        flush.start()
        flush.join(seconds)


def carrier(parent: object) -> dict[str, str]:
    """``parent`` as headers extract() can read: names lowered, bytes values decoded.

    A mapping, or (name, value) pairs as Kafka clients give them; names and
    values as ``str`` or ``bytes`` (Latin-1, as HTTP reads header bytes).
    Anything else is ignored, with one warning: the same code runs with
    traces off, where ``parent`` is never looked at, so it must not raise here.
    """
    items = parent.items() if isinstance(parent, Mapping) else parent
    found: dict[str, str] = {}
    try:
        for pair in items:  # type: ignore[attr-defined]
            name, value = (v.decode("latin-1") if isinstance(v, bytes) else v for v in pair)
            if isinstance(name, str) and isinstance(value, str):
                found[name.lower()] = value
    except (TypeError, ValueError):
        if not _warned:
            _warned.append(True)
            log.warning(
                "ctx.work(parent=...) takes a message's headers (a mapping, or name/value "
                "pairs); got %s: a new trace is started",
                type(parent).__name__,
                extra={"event": "trace_parent_ignored"},
            )
        return {}
    return found


_warned: list[bool] = []
log = logging.getLogger("tracing")


class TraceIds(logging.Filter):
    """Adds ``trace_id`` and ``span_id`` to a record written while a span is current."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Never drops a record; only adds the two keys when there is a valid span."""
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True


def resource(settings: Settings) -> Resource:
    """The service's resource: ours from the settings, then the OTEL_* variables' over them."""
    from_env = OTELResourceDetector().detect().attributes
    ours: dict[str, Any] = {
        "service.name": settings.service_name,
        "service.version": settings.version,
        "service.instance.id": settings.instance,
        "deployment.environment.name": settings.env,
    }
    return Resource.create({k: v for k, v in ours.items() if k not in from_env})


def start(program: str, settings: Settings) -> Tracing:
    """Set the global tracer provider (spans batched, OTLP/HTTP) and the log filter."""
    provider = TracerProvider(resource=resource(settings), shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    for handler in logging.getLogger().handlers:
        handler.addFilter(TraceIds())
    return Tracing(program, provider)
