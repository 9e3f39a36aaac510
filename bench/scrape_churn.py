"""Scrape latency with N dead processes' metric files: ours (compacted) vs plain upstream.

For N = 0, 100, 1000, 10000 dead worker processes (the project's real metric
set: the files one real worker writes, copied under N dead pids) plus one live
process, it times ``generate_latest`` over

- plain: prometheus-client's ``MultiProcessCollector`` on the directory as
  upstream leaves it (every dead file re-read at every scrape);
- ours: :func:`common.multiproc.collect` on the same directory after
  :func:`common.multiproc.compact` (what the event listener does on each exit).

Prints median and p99 (milliseconds) of repeated scrapes, the plain/ours
ratio, and ours relative to ours at N = 0 (target: within 1.5x at N = 10000).

Run: ``.venv/bin/python bench/scrape_churn.py``.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from common import multiproc

ROOT = Path(__file__).resolve().parent.parent
COUNTS = (0, 100, 1000, 10_000)
WORKER = """
from common.metrics import WorkerMetrics
for program in ("sync_worker", "async_worker"):
    m = WorkerMetrics(program)
    m.started()
    m.iteration_finished(0.02, failed=False)
    m.iteration_finished(0.7, failed=True)
"""


class _Ours:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def collect(self) -> Any:
        return multiproc.collect(self.directory)


def template(directory: Path) -> dict[str, bytes]:
    """``{kind: file bytes}`` of one real process's files (only their used part)."""
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(directory))
    subprocess.run([sys.executable, "-c", WORKER], cwd=ROOT, env=env, check=True)
    files = {}
    for path in directory.glob("*.db"):
        data = path.read_bytes()
        used = int.from_bytes(data[:4], "little")
        files[multiproc.kind_and_pid(str(path))[0]] = data[:used]
        path.unlink()
    return files


def populate(directory: Path, files: dict[str, bytes], dead: int) -> None:
    """Files of ``dead`` dead pids and of one live one (this process)."""
    for pid in [*range(10_000_000, 10_000_000 + dead), os.getpid()]:
        for kind, data in files.items():
            (directory / f"{kind}_{pid}.db").write_bytes(data)


def timed(scrape: Callable[[], bytes], repeats: int) -> list[float]:
    """Milliseconds of each of ``repeats`` scrapes (after one warm-up)."""
    scrape()
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        scrape()
        out.append((time.perf_counter() - start) * 1000)
    return out


def p99(values: list[float]) -> float:
    """The 99th percentile (the maximum for fewer than 100 values)."""
    return statistics.quantiles(values, n=100)[98] if len(values) >= 100 else max(values)


SCRATCH = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108 - tmpfs, see main()


def main() -> None:
    """Build the directories, time both scrapes, print the table.

    Ours is timed first, for every N in turns (round-robin), so that the ratio
    to N = 0 compares like with like; plain afterwards, N by N (one scrape of
    10,000 dead processes takes over a second). The directories are on tmpfs
    where there is one, as the runtime dir is in the image (/dev/shm/app): on a
    disk file system a directory that once held 30,000 files stays slower to
    list after they are deleted (ext4: 82 us instead of 7 us per listing).
    """
    with tempfile.TemporaryDirectory(dir=SCRATCH) as scratch:
        base = Path(scratch)
        files = template(base)
        plain, ours, files_left = {}, {}, {}
        for dead in COUNTS:
            plain_dir, ours_dir = base / f"plain{dead}", base / f"ours{dead}"
            plain_dir.mkdir()
            populate(plain_dir, files, dead)
            shutil.copytree(plain_dir, ours_dir)
            multiproc.compact(ours_dir)
            files_left[dead] = len(list(ours_dir.glob("*.db")))
            plain[dead] = CollectorRegistry()
            MultiProcessCollector(plain[dead], path=str(plain_dir))
            ours[dead] = CollectorRegistry()
            ours[dead].register(_Ours(ours_dir))
        ours_times: dict[int, list[float]] = {dead: [] for dead in COUNTS}
        for _ in range(200):
            for dead in COUNTS:
                ours_times[dead] += timed(partial(generate_latest, ours[dead]), 1)
        rows = []
        for dead in COUNTS:
            repeats = 200 if dead <= 100 else 20 if dead <= 1000 else 5
            plain_ms = timed(partial(generate_latest, plain[dead]), repeats)
            rows.append((dead, plain_ms, ours_times[dead], files_left[dead]))
    base_ours = statistics.median(rows[0][2])
    print(f"{os.cpu_count()} cores; Python {platform.python_version()}")
    print(
        f"{'dead':>6} {'plain med':>10} {'plain p99':>10} {'ours med':>9} {'ours p99':>9}"
        f" {'plain/ours':>10} {'ours/ours@0':>11} {'files (ours)':>12}"
    )
    for dead, plain_ms, ours_ms, left in rows:
        pm, om = statistics.median(plain_ms), statistics.median(ours_ms)
        print(
            f"{dead:>6} {pm:>10.2f} {p99(plain_ms):>10.2f} {om:>9.2f} {p99(ours_ms):>9.2f}"
            f" {pm / om:>10.1f} {om / base_ours:>11.2f} {left:>12}"
        )


if __name__ == "__main__":
    main()
