"""Run the healthcheck: ``app-health`` or ``python -m healthcheck``.

Prints one JSON line, ``{"healthy": bool, "problems": [...], "readyz": ...,
"processes": ...}``, and exits 0 when healthy, 1 otherwise (Docker's
HEALTHCHECK contract). Needs no flags: it reads the same settings as the
programs and ``supervisord.conf`` in the working directory.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from common.config import ConfigError, load_settings
from healthcheck.check import check_processes, check_readyz

SUPERVISORD_CONF = Path("supervisord.conf")


def run() -> tuple[bool, dict[str, Any]]:
    """Run both checks; return ``(healthy, report)``."""
    try:
        settings = load_settings()
    except ConfigError as exc:
        return False, {"healthy": False, "problems": [f"invalid configuration: {exc}"]}
    problems: list[str] = []
    ready, readyz = check_readyz(settings.metrics_host, settings.metrics_port)
    if not ready:
        not_ready = readyz.get("not_ready") if isinstance(readyz, dict) else None
        problems.append(
            f"not ready: {', '.join(not_ready)}" if not_ready else f"not ready: {readyz}"
        )
    running, processes = check_processes(SUPERVISORD_CONF, settings.runtime_dir)
    if not running:
        if isinstance(processes, str):
            problems.append(processes)
        else:
            bad = [f"{name} is {state}" for name, state in processes.items() if state != "RUNNING"]
            problems.append("; ".join(bad) or "supervisord runs no process")
    healthy = not problems
    return healthy, {
        "healthy": healthy,
        "problems": problems,
        "readyz": readyz,
        "processes": processes,
    }


def main() -> None:
    """Console-script entry point: print the report, exit 0 (healthy) or 1."""
    healthy, report = run()
    sys.stdout.write(json.dumps(report) + "\n")
    sys.exit(0 if healthy else 1)


if __name__ == "__main__":
    main()
