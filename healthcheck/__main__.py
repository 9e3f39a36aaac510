"""Run the healthcheck: ``app-health`` or ``python -m healthcheck``.

Docker's HEALTHCHECK contract: exit 0 healthy, 1 unhealthy. Healthy means the
exporter's ``GET /readyz`` answers 200: every worker's last iteration is fresh
and supervisord runs every process (the exporter judges both, see
``services/metrics_exporter/readiness.py``). Prints one JSON line: the
``/readyz`` report (``{"ready": bool, "problems": [...], "programs": ...,
"processes": ...}``), or ``{"ready": false, "problems": [why]}`` when there is
no report. Needs no flags.

It runs every 30 s for the life of the container, so it imports next to
nothing: the exporter's address comes from ``<runtime_dir>/exporter-address``
(:mod:`common.exporter_address`), ``runtime_dir`` from ``APP_RUNTIME_DIR``
(the environment wins over the YAML file; the image sets it), and only when
that is unset from the full settings. The request is plain HTTP/1.0 (RFC 1945:
the server closes the connection after the response) over a socket:
``http.client`` alone would take longer to import than the whole check.
"""

from __future__ import annotations

import _socket  # the C module behind socket: importing socket costs 10 ms (its enums)
import os
import sys
import time

from common import exporter_address

TIMEOUT_SECONDS = 2.0
MAX_RESPONSE_BYTES = 1024 * 1024


def runtime_dir() -> str:
    """``APP_RUNTIME_DIR``, else ``runtime_dir`` from the settings.

    Raises :class:`ValueError` if the settings are invalid.
    """
    value = os.environ.get("APP_RUNTIME_DIR")
    if value:
        return value
    from common.config import ConfigError, load_settings

    try:
        return str(load_settings().runtime_dir)
    except ConfigError as exc:
        raise ValueError(f"invalid configuration: {exc}") from None


def get(host: str, port: int, path: str) -> tuple[int, bytes]:
    """``(status, body)`` of ``GET path`` (HTTP/1.0) to a numeric IPv4 or IPv6 ``host``.

    The whole exchange gets :data:`TIMEOUT_SECONDS`. Raises :class:`OSError`
    (no connection, timeout) or :class:`ValueError` (not an HTTP response, or
    over :data:`MAX_RESPONSE_BYTES`).
    """
    ipv6 = ":" in host
    authority = f"[{host}]:{port}" if ipv6 else f"{host}:{port}"
    request = f"GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n".encode()
    deadline = time.monotonic() + TIMEOUT_SECONDS
    response = bytearray()
    sock = _socket.socket(_socket.AF_INET6 if ipv6 else _socket.AF_INET, _socket.SOCK_STREAM)
    try:
        sock.settimeout(TIMEOUT_SECONDS)
        sock.connect((host, port))
        sock.sendall(request)
        while True:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
            if len(response) > MAX_RESPONSE_BYTES:
                raise ValueError(f"response over {MAX_RESPONSE_BYTES} bytes")
    finally:
        sock.close()
    head, _, body = bytes(response).partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0].split()  # HTTP/1.0 200 OK
    if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/"):
        raise ValueError(f"not an HTTP response: {head[:80]!r}")
    return int(status_line[1]), body


def check() -> tuple[bool, bytes]:
    """``(healthy, one JSON line)``."""
    try:
        where = runtime_dir()
    except ValueError as exc:
        return _unhealthy(str(exc))
    try:
        host, port = exporter_address.read(where)
    except (OSError, ValueError) as exc:
        return _unhealthy(f"the exporter has not started (no address in {where}): {exc}")
    try:
        status, body = get(host, port, "/readyz")
    except OSError as exc:
        return _unhealthy(f"exporter unreachable at {host}:{port}: {exc}")
    except ValueError as exc:
        return _unhealthy(f"no health report from {host}:{port}: {exc}")
    if status in (200, 503) and body.startswith(b"{") and b"\n" not in body:
        return status == 200, body + b"\n"
    return _unhealthy(f"/readyz on {host}:{port} answered {status}: {body[:200]!r}")


def _unhealthy(problem: str) -> tuple[bool, bytes]:
    import json  # only now: a healthy check does not need it

    return False, json.dumps({"ready": False, "problems": [problem]}).encode() + b"\n"


def main() -> None:
    """Console-script entry point: print the report, exit 0 (healthy) or 1."""
    healthy, line = check()
    sys.stdout.buffer.write(line)
    sys.exit(0 if healthy else 1)


if __name__ == "__main__":
    main()
