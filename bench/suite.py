"""The benchmark suite: every figure beside its floor, measured in the same run.

``make bench`` (or ``.venv/bin/python bench/suite.py [RUNS]``) prints one
table: for each figure the median, min and max over RUNS runs (default 5), the
same for what it is compared with, the ratio, the target and whether it is met.

Figures (ours / compared with):

- SIGTERM to every process gone, loop interval 30 s / the same with stock
  supervisord (no fastloop plugin): supervisord's own floor;
- start to ``/readyz`` 200 / ``python -c pass`` once per process;
- PSS of the whole process tree, run as the image runs it (no config file),
  and again with a config file / one bare ``python -c "import time;
  time.sleep(9)"`` per process;
- the image's HEALTHCHECK command (``app-health``'s code) wall time /
  ``python -c pass``, run in turns while the stack runs (same load for both);
- JSON log records per second through our handler to a pipe / the standard
  library's plain-text ``logging.Formatter`` to a pipe;
- one loop iteration's bookkeeping (timing + metrics, multiprocess mode) /
  the same with metrics off (the difference is what metrics add);
- one ``/metrics`` scrape, steady state (six live processes' files) / a plain
  ``MultiProcessCollector`` on the same directory;
- the ``process_*`` families the exporter adds to each scrape, for seven live
  Python processes (supervisord and six programs), PSS kept as between two
  refreshes / that plain scrape; and the PSS refresh of all seven, which
  happens once a minute (``resources.PSS_MAX_AGE_SECONDS``).
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import lifecycle_times, memory, scrape_churn
from tests.conftest import PROCESSES, ROOT, Stack, descendants, image_healthcheck

PY = sys.executable
Figure = tuple[str, list[float], list[float], str, Callable[[float, float], bool]]


def wall(argv: list[str], runs: int, env: dict[str, str] | None = None) -> list[float]:
    """Seconds each of ``runs`` runs of ``argv`` takes (after one warm-up)."""
    subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, check=False)
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, check=False)
        out.append(time.perf_counter() - start)
    return out


def interleaved(
    first: list[str], second: list[str], runs: int, env: dict[str, str]
) -> tuple[list[float], list[float]]:
    """Seconds per run of ``first`` and of ``second``, run in turns (same load for both)."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(runs):
        for argv, out in zip((first, second), times, strict=True):
            start = time.perf_counter()
            subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, check=False)
            out.append(time.perf_counter() - start)
    return times


def lifecycle(runs: int, tmp: Path) -> tuple[list[float], list[float], list[float]]:
    """(start to ready ours, stop ours, stop stock) in seconds."""
    tmp.mkdir(parents=True, exist_ok=True)
    stock = lifecycle_times.stock_conf_dir(tmp)
    starts, stops, stock_stops = [], [], []
    for i in range(runs):
        start, stop, _ = lifecycle_times.measure(ROOT, tmp / f"ours{i}")
        starts.append(start)
        stops.append(stop)
        stock_stops.append(lifecycle_times.measure(stock, tmp / f"stock{i}")[1])
    return starts, stops, stock_stops


def tree_pss(runs: int, tmp: Path) -> tuple[list[float], ...]:
    """Per run: PSS MB (our tree, bare pythons, ours with a config file), health s, floor s.

    The health and floor seconds are the image's healthcheck and ``python -c pass`` run in
    turns while the stack runs. The stack runs as the image runs it: settings
    from the environment (the image sets ``APP_RUNTIME_DIR``), no config file.
    """
    ours, bare, with_file, health, python_pass = [], [], [], [], []
    for i in range(runs):
        stack = Stack(
            tmp / f"mem{i}",
            {"loop_sleep_seconds": "1"},
            cwd=memory.image_like_dir(tmp / f"mem{i}"),
            config_file=False,
        )
        try:
            stack.wait_ready()
            time.sleep(2)
            pids = [stack.proc.pid, *descendants(stack.proc.pid)]
            ours.append(sum(memory.rollup(pid)["Pss"] for pid in pids) / 1024)
            check, floor = interleaved(image_healthcheck(), [PY, "-c", "pass"], 5, stack.env)
            health += check
            python_pass += floor
        finally:
            stack.kill()
        rows = memory.measure(tmp / f"file{i}", config_file=True)
        with_file.append(sum(mem["Pss"] for _, mem in rows) / 1024)
        sleepers = [
            subprocess.Popen([PY, "-c", "import time; time.sleep(9)"]) for _ in pids
        ]  # fmt: skip
        time.sleep(1)
        bare.append(sum(memory.rollup(p.pid)["Pss"] for p in sleepers) / 1024)
        for proc in sleepers:
            proc.kill()
            proc.wait()
    return ours, bare, with_file, health, python_pass


LOG_RATE = """
import logging, os, sys, threading, time
from common.logs import configure_logging
read_fd, write_fd = os.pipe()
threading.Thread(target=lambda: [None for _ in iter(lambda: os.read(read_fd, 65536), b"")],
                 daemon=True).start()
if sys.argv[1] == "ours":
    configure_logging("bench")
    logging.getLogger().handlers[0].fd = write_fd
else:
    handler = logging.StreamHandler(os.fdopen(write_fd, "w"))
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel("INFO")
log = logging.getLogger("bench")
n = 50_000
start = time.perf_counter()
for i in range(n):
    log.info("record %d of the benchmark", i, extra={"seq": i})
print(n / (time.perf_counter() - start))
"""

BOOKKEEPING = """
import os, sys, time
from common.metrics import WorkerMetrics
m = WorkerMetrics("bench", enabled=sys.argv[1] == "on")
n = 100_000
start = time.perf_counter()
for _ in range(n):
    t0 = time.perf_counter()
    m.iteration_finished(time.perf_counter() - t0, False)
print((time.perf_counter() - start) / n * 1e6)
"""


def in_subprocess(code: str, arg: str, runs: int, env: dict[str, str] | None = None) -> list[float]:
    """The number ``code`` prints, for ``runs`` fresh processes."""
    return [
        float(
            subprocess.run(
                [PY, "-c", code, arg], cwd=ROOT, env=env, capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(runs)
    ]


def scrape_steady(runs: int, tmp: Path) -> tuple[list[float], list[float]]:
    """Milliseconds per scrape of the files of one process per program (live pids): ours, plain."""
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.multiprocess import MultiProcessCollector

    files = scrape_churn.template(tmp)
    for n in range(len(PROCESSES) + 1):
        for kind, data in files.items():
            (tmp / f"{kind}_{os.getpid() if n == 0 else n + 1}.db").write_bytes(data)
    plain, ours = CollectorRegistry(), CollectorRegistry()
    MultiProcessCollector(plain, path=str(tmp))
    ours.register(scrape_churn._Ours(tmp))
    ours_ms: list[float] = []
    plain_ms: list[float] = []
    generate_latest(ours), generate_latest(plain)  # warm-up
    for _ in range(200 * runs):  # in turns: both see the same cache, clock and load
        for registry, out in ((ours, ours_ms), (plain, plain_ms)):
            start = time.perf_counter()
            generate_latest(registry)
            out.append((time.perf_counter() - start) * 1000)
    return ours_ms, plain_ms


def process_metrics(runs: int) -> tuple[list[float], list[float]]:
    """Milliseconds per scrape of the ``process_*`` families of 7 processes; of their PSS reads."""
    from services.metrics_exporter.resources import ResourceReader, pss_bytes

    code = "import prometheus_client, time; time.sleep(600)"
    children = [subprocess.Popen([PY, "-c", code], cwd=ROOT) for _ in range(len(PROCESSES) + 1)]
    try:
        time.sleep(1)  # imported
        pids = {str(n): child.pid for n, child in enumerate(children)}
        reader = ResourceReader()
        list(reader.families(pids))  # PSS read, kept from now on
        scrape_ms, pss_ms = [], []
        for _ in range(200 * runs):
            start = time.perf_counter()
            list(reader.families(pids))
            scrape_ms.append((time.perf_counter() - start) * 1000)
        for _ in range(20 * runs):
            start = time.perf_counter()
            for pid in pids.values():
                pss_bytes(pid)
            pss_ms.append((time.perf_counter() - start) * 1000)
    finally:
        for child in children:
            child.kill()
            child.wait()
    return scrape_ms, pss_ms


def main() -> None:
    """Measure everything and print the table."""
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    metrics_env = dict(os.environ)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        starts, stops, stock = lifecycle(runs, tmp / "life")
        python_pass = wall([PY, "-c", "pass"], max(runs, 10))
        floor_start = [t * (len(PROCESSES) + 2) for t in python_pass]  # + entrypoint, supervisord
        ours_pss, bare_pss, file_pss, health, health_floor = tree_pss(runs, tmp / "mem")
        (tmp / "prom").mkdir()
        metrics_env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp / "prom")
        ours_rate, std_rate, on, off = [], [], [], []
        for _ in range(runs):  # in turns: each pair sees the same load
            ours_rate += in_subprocess(LOG_RATE, "ours", 1)
            std_rate += in_subprocess(LOG_RATE, "stdlib", 1)
            on += in_subprocess(BOOKKEEPING, "on", 1, metrics_env)
            off += in_subprocess(BOOKKEEPING, "off", 1, metrics_env)
        (tmp / "scrape").mkdir()
        ours_scrape, plain_scrape = scrape_steady(runs, tmp / "scrape")
        resources_ms, pss_ms = process_metrics(runs)
    figures = [
        ("SIGTERM to all gone (s) / stock supervisord", stops, stock, "<= 1.2 s",
         lambda o, f: o <= 1.2),
        ("start to /readyz 200 (s) / python -c pass x procs", starts, floor_start, "<= 2.0 s",
         lambda o, f: o <= 2.0),
        ("tree PSS (MB) / bare python per process", ours_pss, bare_pss, "<= 80 MB",
         lambda o, f: o <= 80),
        ("  the same with a config file (PyYAML)", file_pss, bare_pss, "<= 80 MB",
         lambda o, f: o <= 80),
        ("healthcheck (s) / python -c pass, in turns", health, health_floor, "<= 2x floor",
         lambda o, f: o <= 2 * f),
        ("JSON records/s / stdlib Formatter", ours_rate, std_rate, ">= 0.5x",
         lambda o, f: o >= 0.5 * f),
        ("iteration bookkeeping (us) / metrics off", on, off, "<= 10 us added",
         lambda o, f: o - f <= 10),
        ("scrape, steady (ms) / plain collector", ours_scrape, plain_scrape, "<= 1.1x",
         lambda o, f: o <= 1.1 * f),
        ("  + process_* of 7 processes (ms) / plain collector", resources_ms, plain_scrape,
         "<= 0.3x", lambda o, f: o <= 0.3 * f),
        ("  + their PSS, once a minute (ms) / plain collector", pss_ms, plain_scrape,
         "<= 5 ms", lambda o, f: o <= 5),
    ]  # fmt: skip
    print(f"{runs} runs; {os.cpu_count()} cores; Python {platform.python_version()}")
    head = f"{'figure / compared with':<52} {'ours med [min-max]':>24} {'floor med':>10}"
    print(f"{head} {'ratio':>7} {'target':>15} met")
    for name, ours, floor, target, met in figures:
        om, fm = statistics.median(ours), statistics.median(floor)
        spread = f"{om:.3g} [{min(ours):.3g}-{max(ours):.3g}]"
        verdict = "yes" if met(om, fm) else "NO"
        print(f"{name:<52} {spread:>24} {fm:>10.3g} {om / fm:>7.2f} {target:>15} {verdict}")


if __name__ == "__main__":
    main()
