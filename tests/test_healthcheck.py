"""app-health's pieces: finding the exporter, the request, what it says when it cannot."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from pathlib import Path

import pytest

from common import exporter_address
from healthcheck.__main__ import TIMEOUT_SECONDS, check, get
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


def test_a_slow_drip_cannot_hold_the_check_past_its_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that sends a byte now and then: the check gives up after TIMEOUT_SECONDS overall."""
    server = socket.create_server(("127.0.0.1", 0))

    def drip() -> None:
        with server, server.accept()[0] as conn, contextlib.suppress(OSError):
            for _ in range(8):  # until the check hangs up (a broken pipe)
                conn.sendall(b"H")
                time.sleep(0.5)

    dripping = threading.Thread(target=drip)
    dripping.start()
    exporter_address.write(tmp_path, "127.0.0.1", server.getsockname()[1])
    monkeypatch.setenv("APP_RUNTIME_DIR", str(tmp_path))
    started = time.monotonic()
    healthy, line = check()
    assert healthy is False
    assert time.monotonic() - started < TIMEOUT_SECONDS + 0.5
    assert "timed out" in json.loads(line)["problems"][0]
    dripping.join()


def test_ipv6_request_brackets_the_host() -> None:
    """To ::1 the Host header is [::1]:port (RFC 3986 authority)."""
    server = socket.create_server(("::1", 0), family=socket.AF_INET6)
    port = server.getsockname()[1]
    requests: list[bytes] = []

    def answer() -> None:
        with server, server.accept()[0] as conn:
            requests.append(conn.recv(65536))
            conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n{}")

    threading.Thread(target=answer, daemon=True).start()
    assert get("::1", port, "/readyz") == (200, b"{}")
    assert requests == [f"GET /readyz HTTP/1.0\r\nHost: [::1]:{port}\r\n\r\n".encode()]


@pytest.mark.parametrize("content", ["127.0.0.1 70000\n", "127.0.0.1\n", "garbage here now\n"])
def test_a_damaged_address_file_is_unhealthy_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str
) -> None:
    """An address file that does not hold host and port: one JSON line saying so."""
    (tmp_path / exporter_address.FILE_NAME).write_text(content)
    monkeypatch.setenv("APP_RUNTIME_DIR", str(tmp_path))
    healthy, line = check()
    assert healthy is False
    assert json.loads(line)["problems"][0].startswith("the exporter has not started")
