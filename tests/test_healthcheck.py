"""app-health's pieces: finding the exporter, the request, what it says when it cannot."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest

from common import exporter_address
from healthcheck.__main__ import check, get
from tests.conftest import free_port


def test_wildcard_bind_address_is_written_as_loopback(tmp_path: Path) -> None:
    """The exporter listening on 0.0.0.0 or :: is reached on 127.0.0.1 or ::1."""
    exporter_address.write(tmp_path, "0.0.0.0", 9100)  # noqa: S104 - a bind address
    assert exporter_address.read(tmp_path) == ("127.0.0.1", 9100)
    exporter_address.write(tmp_path, "::", 9101)
    assert exporter_address.read(tmp_path) == ("::1", 9101)
    assert [p.name for p in tmp_path.iterdir()] == [exporter_address.FILE_NAME]


def serve_once(response: bytes) -> tuple[int, list[bytes]]:
    """A one-connection TCP server on 127.0.0.1 that answers ``response``; (port, requests)."""
    server = socket.create_server(("127.0.0.1", 0))
    requests: list[bytes] = []

    def answer() -> None:
        with server, server.accept()[0] as conn:
            requests.append(conn.recv(65536))
            conn.sendall(response)

    threading.Thread(target=answer, daemon=True).start()
    return server.getsockname()[1], requests


def test_get_sends_http_1_0_and_reads_until_close() -> None:
    """One GET with a Host header; the status and the body after the blank line come back."""
    port, requests = serve_once(b'HTTP/1.0 503 Service Unavailable\r\nX: y\r\n\r\n{"a": 1}')
    assert get("127.0.0.1", port, "/readyz") == (503, b'{"a": 1}')
    assert requests == [f"GET /readyz HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()]


def test_something_else_on_the_port_is_unhealthy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that is not the exporter (no JSON report): unhealthy, saying what came."""
    port, _ = serve_once(b"HTTP/1.0 200 OK\r\n\r\n<html>hello</html>")
    exporter_address.write(tmp_path, "127.0.0.1", port)
    monkeypatch.setenv("APP_RUNTIME_DIR", str(tmp_path))
    healthy, line = check()
    assert healthy is False
    [problem] = json.loads(line)["problems"]
    assert problem == f"/readyz on 127.0.0.1:{port} answered 200: b'<html>hello</html>'"


def test_exporter_not_started_is_unhealthy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No address file yet: unhealthy, naming the runtime dir."""
    monkeypatch.setenv("APP_RUNTIME_DIR", str(tmp_path))
    healthy, line = check()
    assert healthy is False
    assert json.loads(line)["problems"][0].startswith(
        f"the exporter has not started (no address in {tmp_path})"
    )


def test_closed_port_is_unhealthy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An address nobody listens on: unhealthy, naming host and port."""
    port = free_port()
    exporter_address.write(tmp_path, "127.0.0.1", port)
    monkeypatch.setenv("APP_RUNTIME_DIR", str(tmp_path))
    healthy, line = check()
    assert healthy is False
    assert f"exporter unreachable at 127.0.0.1:{port}" in json.loads(line)["problems"][0]


def test_invalid_settings_without_app_runtime_dir_are_unhealthy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without APP_RUNTIME_DIR the settings are loaded; invalid ones are named, not a traceback."""
    monkeypatch.delenv("APP_RUNTIME_DIR", raising=False)
    config = tmp_path / "config.yml"
    config.write_text("runtime_dir: 5\n")
    monkeypatch.setenv("APP_CONFIG_PATH", str(config))
    healthy, line = check()
    assert healthy is False
    assert json.loads(line)["problems"][0].startswith("invalid configuration: ")
