"""A small client for supervisord's XML-RPC API over its unix socket (standard library only).

It reads ``[supervisorctl]`` of ``supervisord.conf`` as supervisorctl does, so
both always talk to the same socket with the same credentials, and it gives up
after ``timeout`` seconds: a slow or hung supervisord cannot hang the caller.
The API is supervisor's documented one (``supervisor.getAllProcessInfo``).
"""

from __future__ import annotations

import configparser
import http.client
import os
import socket
import xmlrpc.client
from pathlib import Path
from typing import Any

SUPERVISORD_CONF = Path("supervisord.conf")
RPC_ERRORS = (OSError, KeyError, ValueError, xmlrpc.client.Error)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
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
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__()
        self._path = path
        self._timeout = timeout

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        # As the base class does: get_host_info() turns user:password@ into an auth header.
        _, self._extra_headers, _ = self.get_host_info(host)
        connection = _UnixConnection(self._path, self._timeout)
        self._connection = host, connection  # so that close() closes it, also on errors
        return connection


def supervisorctl_settings(conf: Path, runtime_dir: Path) -> dict[str, str]:
    """``serverurl``, ``username``, ``password`` of ``conf``'s [supervisorctl], expanded.

    ``%(ENV_X)s`` is expanded from the environment as supervisorctl does, with
    ``APP_RUNTIME_DIR`` defaulting to ``runtime_dir``; ``%(here)s`` is ``conf``'s dir.
    Raises :class:`OSError` if ``conf`` cannot be read.
    """
    parser = configparser.RawConfigParser()
    if not parser.read(conf):
        raise OSError(f"cannot read {conf}")
    expansions = {"ENV_" + key: value for key, value in os.environ.items()}
    expansions.setdefault("ENV_APP_RUNTIME_DIR", str(runtime_dir))
    expansions["here"] = str(conf.resolve().parent)
    section = parser["supervisorctl"]
    return {key: section.get(key, "") % expansions for key in ("serverurl", "username", "password")}


def process_infos(
    runtime_dir: Path, timeout: float, conf: Path = SUPERVISORD_CONF
) -> list[dict[str, Any]]:
    """supervisord's ``getAllProcessInfo()``: one dict per process (name, group, statename...).

    Raises one of :data:`RPC_ERRORS` if supervisord cannot be reached in time.
    """
    infos: list[dict[str, Any]] = call(runtime_dir, timeout, "getAllProcessInfo", conf)
    return infos


def call(runtime_dir: Path, timeout: float, method: str, conf: Path = SUPERVISORD_CONF) -> Any:
    """Call ``supervisor.<method>()``; raises one of :data:`RPC_ERRORS` on failure."""
    ctl = supervisorctl_settings(conf, runtime_dir)
    url = ctl["serverurl"]
    if not url.startswith("unix://"):
        raise ValueError(f"serverurl {url!r} is not a unix socket")
    auth = f"{ctl['username']}:{ctl['password']}@" if ctl["username"] else ""
    transport = _UnixTransport(url[len("unix://") :], timeout)
    with xmlrpc.client.ServerProxy(f"http://{auth}localhost/RPC2", transport=transport) as proxy:
        return getattr(proxy.supervisor, method)()
