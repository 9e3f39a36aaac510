"""Measure the resident memory of the whole process tree: supervisord and every program.

Starts ``app-entrypoint`` (loop interval 1 s), waits until ``/readyz`` is 200
and a few iterations ran, then reads ``/proc/<pid>/smaps_rollup`` of
supervisord and each descendant: RSS and PSS (proportional set size, which
splits shared pages among the processes sharing them, so the PSS total is what
the tree really costs). Twice: as the image runs it (settings from the
environment, no config file) and with a config file, which makes every program
import PyYAML.

Run: ``.venv/bin/python bench/memory.py``.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import ROOT, Stack, descendants


def rollup(pid: int) -> dict[str, int]:
    """``{"Rss": kB, "Pss": kB}`` from /proc/<pid>/smaps_rollup."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("Rss", "Pss"):
            values[key] = int(rest.split()[0])
    return values


def name(pid: int) -> str:
    """A short name: the supervisord program, "supervisord", else the process name."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    for item in environ:
        if item.startswith(b"SUPERVISOR_PROCESS_NAME="):
            return item.split(b"=", 1)[1].decode()
    if b"entrypoint.supervisord" in Path(f"/proc/{pid}/cmdline").read_bytes():
        return "supervisord"
    return Path(f"/proc/{pid}/comm").read_text().strip()


def image_like_dir(tmp: Path) -> Path:
    """A working directory like the image's ``/app``: ``supervisord.conf`` and no config file."""
    workdir = tmp / "app"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "supervisord.conf").write_bytes((ROOT / "supervisord.conf").read_bytes())
    return workdir


def measure(tmp: Path, config_file: bool) -> list[tuple[str, dict[str, int]]]:
    """``[(process name, {"Rss": kB, "Pss": kB})]`` of a ready stack, supervisord first."""
    stack = Stack(
        tmp, {"loop_sleep_seconds": "1"}, cwd=image_like_dir(tmp), config_file=config_file
    )
    try:
        stack.wait_ready()
        time.sleep(3)
        pids = [stack.proc.pid, *sorted(descendants(stack.proc.pid))]
        return [(name(pid), rollup(pid)) for pid in pids]
    finally:
        stack.kill()


def main() -> None:
    """Start the stack twice, measure, print one table each, stop it."""
    print(f"{os.cpu_count()} cores; Python {platform.python_version()}; {sys.platform}")
    for config_file in (False, True):
        with tempfile.TemporaryDirectory() as tmp:
            rows = measure(Path(tmp), config_file)
        print("\nwith a config file" if config_file else "\nno config file (as the image runs)")
        print(f"{'process':<20} {'RSS MB':>8} {'PSS MB':>8}")
        for process, mem in rows:
            print(f"{process:<20} {mem['Rss'] / 1024:8.1f} {mem['Pss'] / 1024:8.1f}")
        rss = sum(m["Rss"] for _, m in rows) / 1024
        pss = sum(m["Pss"] for _, m in rows) / 1024
        print(f"{'total':<20} {rss:8.1f} {pss:8.1f}")


if __name__ == "__main__":
    main()
