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

import http.client
import json
from pathlib import Path
from typing import Any

from common.supervisor_rpc import RPC_ERRORS, process_infos

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


def check_processes(conf: Path, runtime_dir: Path) -> tuple[bool, dict[str, str] | str]:
    """``(all RUNNING, {"group:name": statename})``, or ``(False, error)`` if unreachable."""
    try:
        infos = process_infos(runtime_dir, TIMEOUT_SECONDS, conf)
    except RPC_ERRORS as exc:
        return False, f"supervisord unreachable: {exc}"
    states = {f"{info['group']}:{info['name']}": str(info["statename"]) for info in infos}
    return bool(states) and all(s == "RUNNING" for s in states.values()), states
