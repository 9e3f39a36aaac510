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

from common.supervisord_conf import read_conf

SUPERVISORD_CONF = Path("supervisord.conf")
RPC_ERRORS = (OSError, KeyError, ValueError, configparser.Error, xmlrpc.client.Error)


def describe(exc: BaseException) -> str:
    """What went wrong, for a log line: an HTTP error without its URL (it holds the password)."""
    if isinstance(exc, xmlrpc.client.ProtocolError):
        return f"HTTP {exc.errcode} {exc.errmsg}"
    return str(exc)


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
    Raises :class:`OSError` if ``conf`` cannot be read, :class:`configparser.Error`
    if it does not parse.
    """
    parser = read_conf(conf)
    expansions = {"ENV_" + key: value for key, value in os.environ.items()}
    expansions.setdefault("ENV_APP_RUNTIME_DIR", str(runtime_dir))
    expansions["here"] = str(conf.resolve().parent)
    section = parser["supervisorctl"]
    return {key: section.get(key, "") % expansions for key in ("serverurl", "username", "password")}


class SupervisorClient:
    """Calls supervisord's XML-RPC API on the socket that ``conf``'s [supervisorctl] names.

    ``conf`` is read on the first call that succeeds in reading it, then kept:
    supervisord.conf does not change while the programs run. Every call gives
    up after ``timeout`` seconds.
    """

    def __init__(self, runtime_dir: Path, timeout: float, conf: Path = SUPERVISORD_CONF) -> None:
        self.runtime_dir = runtime_dir
        self.timeout = timeout
        self.conf = conf
        self._server: tuple[str, str] | None = None  # (socket path, "user:password@")

    def call(self, method: str) -> Any:
        """Call ``supervisor.<method>()``; raises one of :data:`RPC_ERRORS` on failure."""
        if self._server is None:
            ctl = supervisorctl_settings(self.conf, self.runtime_dir)
            url = ctl["serverurl"]
            if not url.startswith("unix://"):
                raise ValueError(f"serverurl {url!r} is not a unix socket")
            auth = f"{ctl['username']}:{ctl['password']}@" if ctl["username"] else ""
            self._server = url[len("unix://") :], auth
        path, auth = self._server
        url = f"http://{auth}localhost/RPC2"  # the host is unused: the transport has the path
        with xmlrpc.client.ServerProxy(url, transport=_UnixTransport(path, self.timeout)) as proxy:
            return getattr(proxy.supervisor, method)()

    def process_infos(self) -> list[dict[str, Any]]:
        """``getAllProcessInfo()``: one dict per process (name, group, statename, start...).

        Raises one of :data:`RPC_ERRORS` if supervisord cannot be reached in time.
        """
        infos: list[dict[str, Any]] = self.call("getAllProcessInfo")
        return infos
