"""Measure start-up and shutdown of the whole process tree, with and without fastloop.

For each configuration, ``RUNS`` times: start ``app-entrypoint`` (loop interval
30 s), time until ``/readyz`` answers 200, then send SIGTERM and time until
supervisord and every process it started are gone. "stock" is the same
supervisord.conf without the ``[rpcinterface:fastloop]`` section, i.e.
supervisord's own 1 s main-loop floor.

Run: ``.venv/bin/python bench/lifecycle_times.py [RUNS]`` (default 7).
Prints one table: median, min and max in seconds.
"""

from __future__ import annotations

import os
import platform
import random
import re
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import ROOT, Stack, http_get

IDLE_WINDOW = 3.0


def stock_conf_dir(tmp: Path) -> Path:
    """A directory holding supervisord.conf minus the fastloop plugin section."""
    text = (ROOT / "supervisord.conf").read_text()
    stock = re.sub(r"\n\[rpcinterface:fastloop\][^\[]*", "\n", text)
    if "[rpcinterface:fastloop]" in stock or "[group:app]" not in stock:
        raise SystemExit("supervisord.conf changed shape: update stock_conf_dir()")
    (tmp / "supervisord.conf").write_text(stock)
    return tmp


def cpu_seconds(pid: int) -> float:
    """CPU time ``pid`` has run so far, in seconds (/proc/<pid>/schedstat, nanoseconds)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9


def measure(cwd: Path, tmp: Path) -> tuple[float, float, float]:
    """``(start to /readyz 200 s, SIGTERM to all gone s, idle supervisord CPU ms/s)``."""
    started = time.monotonic()
    stack = Stack(tmp, {"loop_sleep_seconds": "30"}, cwd=cwd)
    try:

        def ready() -> bool:
            try:
                return http_get(stack.url("/readyz"), timeout=1)[0] == 200
            except OSError:
                return False

        stack.wait_until(ready, 30, "/readyz 200")
        ready_after = time.monotonic() - started
        supervisord = int((stack.runtime_dir / "supervisord.pid").read_text())
        before = cpu_seconds(supervisord)
        time.sleep(IDLE_WINDOW)
        cpu = (cpu_seconds(supervisord) - before) * 1000 / IDLE_WINDOW
        time.sleep(random.random())  # noqa: S311 - land anywhere in supervisord's 1 s loop
        stop = stack.stop(signal.SIGTERM)
        deadline = time.monotonic() + 10
        while stack.leftovers() and time.monotonic() < deadline:
            time.sleep(0.01)
        return ready_after, stop, cpu
    finally:
        stack.kill()


def main() -> None:
    """Run the measurements and print the table."""
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    results: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        stock = stock_conf_dir(base)
        for name, cwd in (("fastloop (ours)", ROOT), ("stock supervisord", stock)):
            figures: dict[str, list[float]] = {
                "start to /readyz 200 (s)": [],
                "SIGTERM to all gone (s)": [],
                "supervisord idle CPU (ms/s)": [],
            }
            for i in range(runs):
                for values, value in zip(
                    figures.values(), measure(cwd, base / f"{name[:5]}{i}"), strict=True
                ):
                    values.append(value)
            results[name] = figures
    print(f"{runs} runs each; {os.cpu_count()} cores; Python {platform.python_version()}")
    print(f"{'configuration':<20} {'figure':<28} {'median':>7} {'min':>7} {'max':>7}")
    for name, figures in results.items():
        for figure, values in figures.items():
            print(
                f"{name:<20} {figure:<28} {statistics.median(values):7.3f}"
                f" {min(values):7.3f} {max(values):7.3f}"
            )


if __name__ == "__main__":
    main()
