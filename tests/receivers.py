"""Stand-ins, on 127.0.0.1, for the services the optional integrations send to.

- :class:`OtlpReceiver`: an OTLP/HTTP trace receiver (``POST /v1/traces``)
  decoding each request with opentelemetry-proto's own generated classes.
- :class:`SentryIngest`: Sentry's envelope endpoint (``POST
  /api/<project>/envelope/``), decoding each envelope (gzip or not) into its
  items, as Sentry's ingest documents the format: one JSON header line, then
  per item a JSON item header line and its payload.
- :func:`black_hole`: a socket that accepts connections and never answers.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


class _Server:
    """A threaded HTTP server on a free port of 127.0.0.1 calling ``handle(path, body)``."""

    def __init__(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                status, content_type, reply = owner.handle(self.path, body)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.lock = threading.Lock()

    def handle(self, path: str, body: bytes) -> tuple[int, str, bytes]:
        """``(status, content type, body)`` of the answer to one POST."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


class OtlpReceiver(_Server):
    """Collects the spans of every ``ExportTraceServiceRequest`` posted to ``/v1/traces``."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[Any] = []

    @property
    def endpoint(self) -> str:
        """What ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set to (the exporter adds ``/v1/traces``)."""
        return f"http://127.0.0.1:{self.port}"

    def handle(self, path: str, body: bytes) -> tuple[int, str, bytes]:
        """Decode one export request; answer as a collector does (an empty response)."""
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
            ExportTraceServiceResponse,
        )

        if path != "/v1/traces":
            return 404, "text/plain", b"not found"
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        with self.lock:
            self.requests.append(request)
        return 200, "application/x-protobuf", ExportTraceServiceResponse().SerializeToString()

    def spans(self) -> list[dict[str, Any]]:
        """Every span received: name, ids (hex), attributes, status, events and its resource."""
        found = []
        with self.lock:
            requests = list(self.requests)
        for request in requests:
            for resource_spans in request.resource_spans:
                resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    for span in scope_spans.spans:
                        found.append(
                            {
                                "name": span.name,
                                "trace_id": span.trace_id.hex(),
                                "span_id": span.span_id.hex(),
                                "parent_span_id": span.parent_span_id.hex(),
                                "attributes": {a.key: _value(a.value) for a in span.attributes},
                                "status": span.status.code,
                                "events": [
                                    {
                                        "name": e.name,
                                        **{a.key: _value(a.value) for a in e.attributes},
                                    }
                                    for e in span.events
                                ],
                                "resource": resource,
                                "scope": scope_spans.scope.name,
                            }
                        )
        return found


def _value(value: Any) -> Any:
    """An OTLP ``AnyValue`` as a Python value."""
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


class SentryIngest(_Server):
    """Collects every envelope item posted to ``/api/<project>/envelope/``."""

    PROJECT = "42"

    def __init__(self) -> None:
        super().__init__()
        self.items: list[tuple[dict[str, Any], Any]] = []  # (item header, payload)
        self.paths: list[str] = []

    @property
    def dsn(self) -> str:
        """A DSN that points the SDK here."""
        return f"http://public-key@127.0.0.1:{self.port}/{self.PROJECT}"

    def handle(self, path: str, body: bytes) -> tuple[int, str, bytes]:
        """Split one envelope into its items; answer 200 as Sentry does."""
        self.paths.append(path)
        if path != f"/api/{self.PROJECT}/envelope/":
            return 404, "text/plain", b"not found"
        lines = body.split(b"\n")
        items = []
        index = 1  # line 0 is the envelope's header
        while index < len(lines) and lines[index].strip():
            header = json.loads(lines[index])
            payload = lines[index + 1]
            items.append((header, json.loads(payload) if payload.startswith(b"{") else payload))
            index += 2
        with self.lock:
            self.items += items
        return 200, "application/json", b"{}"

    def events(self) -> list[dict[str, Any]]:
        """The payloads of the ``event`` items (errors and messages)."""
        with self.lock:
            return [payload for header, payload in self.items if header.get("type") == "event"]


@contextmanager
def black_hole() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections and never reads or answers them."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()
