"""The two checks behind ``app-health``: the exporter's /readyz and supervisord's states.

Healthy means both:

1. ``GET /readyz`` on the exporter answers 200 (every worker's last iteration
   is fresh), within 2 seconds;
2. supervisord, asked over its unix socket (XML-RPC ``getAllProcessInfo``,
   supervisor's documented API) with the ``[supervisorctl]`` settings of
   ``supervisord.conf``, reports every process RUNNING.

Only the standard library is imported: this runs every 30 s for the life of
the container.
"""

from __future__ import annotations

import configparser
import http.client
import json
import os
import socket
import xmlrpc.client
from pathlib import Path
from typing import Any

TIMEOUT_SECONDS = 2.0
# A wildcard bind address is reached on loopback.
_WILDCARD = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}  # noqa: S104


def check_readyz(host: str, port: int) -> tuple[bool, Any]:
    """``(ready, detail)`` from ``GET http://host:port/readyz``.

    ``detail`` is the response's JSON, or a string saying why there is none.
    """
    conn = http.client.HTTPConnection(_WILDCARD.get(host, host), port, timeout=TIMEOUT_SECONDS)
    try:
        conn.request("GET", "/readyz")
        response = conn.getresponse()
        body = response.read()
    except OSError as exc:
        return False, f"exporter unreachable at {host}:{port}: {exc}"
    finally:
        conn.close()
    try:
        detail = json.loads(body)
    except ValueError:
        detail = body[:200].decode("utf-8", "replace")
    return response.status == 200, detail


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=TIMEOUT_SECONDS)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, path: str) -> None:
        super().__init__()
        self._path = path

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        # As the base class does: get_host_info() turns user:password@ into an auth header.
        _, self._extra_headers, _ = self.get_host_info(host)
        return _UnixConnection(self._path)


def supervisorctl_settings(conf: Path, runtime_dir: Path) -> dict[str, str]:
    """``serverurl``, ``username``, ``password`` of ``conf``'s [supervisorctl], expanded.

    ``%(ENV_X)s`` is expanded from the environment as supervisorctl does, with
    ``APP_RUNTIME_DIR`` defaulting to ``runtime_dir``; ``%(here)s`` is ``conf``'s dir.
    """
    parser = configparser.RawConfigParser()
    if not parser.read(conf):
        raise OSError(f"cannot read {conf}")
    expansions = {"ENV_" + key: value for key, value in os.environ.items()}
    expansions.setdefault("ENV_APP_RUNTIME_DIR", str(runtime_dir))
    expansions["here"] = str(conf.resolve().parent)
    section = parser["supervisorctl"]
    return {key: section.get(key, "") % expansions for key in ("serverurl", "username", "password")}


def check_processes(conf: Path, runtime_dir: Path) -> tuple[bool, dict[str, str] | str]:
    """``(all RUNNING, {"group:name": statename})``, or ``(False, error)`` if unreachable."""
    try:
        ctl = supervisorctl_settings(conf, runtime_dir)
        url = ctl["serverurl"]
        if not url.startswith("unix://"):
            return False, f"serverurl {url!r} is not a unix socket"
        auth = f"{ctl['username']}:{ctl['password']}@" if ctl["username"] else ""
        proxy = xmlrpc.client.ServerProxy(
            f"http://{auth}localhost/RPC2", transport=_UnixTransport(url[len("unix://") :])
        )
        infos: list[dict[str, Any]] = proxy.supervisor.getAllProcessInfo()  # type: ignore[assignment]
    except (OSError, KeyError, ValueError, xmlrpc.client.Error) as exc:
        return False, f"supervisord unreachable: {exc}"
    states = {f"{info['group']}:{info['name']}": str(info["statename"]) for info in infos}
    return bool(states) and all(s == "RUNNING" for s in states.values()), states
