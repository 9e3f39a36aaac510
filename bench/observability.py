"""What the optional integrations cost: a worker's memory, and time per unit of work and per line.

Both measured against local stand-ins (:mod:`tests.receivers`: an OTLP/HTTP
receiver, a Sentry ingest), so the network is loopback:

- memory: the shipped ``sync_worker`` run alone (loop 0.2 s) with nothing
  configured, with ``SENTRY_DSN``, with ``OTEL_EXPORTER_OTLP_ENDPOINT``, with
  both; PSS and RSS from ``/proc/<pid>/smaps_rollup`` after 2 s of iterations;
- time, in this process: one ``with ctx.work(): pass`` unit (metrics off, so
  only the integration's part moves), and one such unit writing one JSON line
  (to ``/dev/null``), with traces off and on; one JSON line with Sentry off and
  on (its logging integration keeps every INFO line as a breadcrumb).

Run: ``.venv/bin/python bench/observability.py [RUNS]`` (default 3).
"""

from __future__ import annotations

import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.memory import rollup
from tests.conftest import ROOT, base_env, free_port
from tests.receivers import OtlpReceiver, SentryIngest


def worker_memory(extra: dict[str, str], tmp: Path) -> tuple[float, float]:
    """``(PSS MB, RSS MB)`` of the shipped sync_worker, run alone with ``extra`` in its env."""
    tmp.mkdir(parents=True)
    env = base_env(tmp / "run", free_port(), loop_sleep_seconds="0.2") | extra
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.sync_worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(2.0)
        if proc.poll() is not None:
            raise RuntimeError(f"the worker exited with {proc.returncode}")
        values = rollup(proc.pid)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
    return values["Pss"] / 1024, values["Rss"] / 1024


def per_call(body: Callable[[], object], calls: int) -> float:
    """Microseconds per call of ``body`` (after a warm-up)."""
    for _ in range(calls // 10):
        body()
    started = time.perf_counter()
    for _ in range(calls):
        body()
    return (time.perf_counter() - started) / calls * 1e6


def unit_costs(receiver: OtlpReceiver, ingest: SentryIngest, calls: int) -> dict[str, float]:
    """Microseconds per unit and per line, each integration off then on (in this process)."""
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver.endpoint
    os.environ["SENTRY_DSN"] = ingest.dsn
    from common import error_reports, logs, tracing
    from common.config import Settings
    from common.worker import NoSettings, make_context

    devnull = os.open(os.devnull, os.O_WRONLY)
    logs.configure_logging("bench", fd=devnull)
    settings = Settings(metrics_enabled=False)
    ctx = make_context(NoSettings(), shared=settings)

    def unit() -> None:
        with ctx.work():
            pass

    def unit_with_line() -> None:
        with ctx.work():
            ctx.log.info("handled", extra={"event": "handled"})

    def line() -> None:
        ctx.log.info("handled", extra={"event": "handled"})

    costs = {
        "unit, off": per_call(unit, calls),
        "unit + line, off": per_call(unit_with_line, calls),
    }
    costs["line, off"] = per_call(line, calls)
    ctx.telemetry = tracing.start("bench", settings)
    costs["unit, traces on"] = per_call(unit, calls)
    costs["unit + line, traces on"] = per_call(unit_with_line, calls)
    ctx.telemetry.flush(5)
    ctx.telemetry = None
    error_reports.start("bench", settings)
    costs["line, Sentry on"] = per_call(line, calls)
    return costs


def main() -> None:
    """Measure and print both tables."""
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print(f"{runs} runs; {os.cpu_count()} cores; Python {platform.python_version()}")
    with OtlpReceiver() as receiver, SentryIngest() as ingest, tempfile.TemporaryDirectory() as t:
        variants = {
            "nothing configured": {},
            "SENTRY_DSN": {"SENTRY_DSN": ingest.dsn},
            "OTEL_EXPORTER_OTLP_ENDPOINT": {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint},
        }
        variants["both"] = variants["SENTRY_DSN"] | variants["OTEL_EXPORTER_OTLP_ENDPOINT"]
        measured: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        for run in range(runs):  # in turns: every variant sees the same load
            for name, extra in variants.items():
                measured[name].append(worker_memory(extra, Path(t) / f"{run}-{len(name)}"))
        print(
            f"\n{'sync_worker alone, configured':<32} {'PSS MB':>8} {'RSS MB':>8} {'PSS added':>10}"
        )
        base = statistics.median(p for p, _ in measured["nothing configured"])
        for name, values in measured.items():
            pss = statistics.median(p for p, _ in values)
            rss = statistics.median(r for _, r in values)
            print(f"{name:<32} {pss:>8.1f} {rss:>8.1f} {pss - base:>+10.1f}")
        costs = [unit_costs(receiver, ingest, 20_000) for _ in range(1)]
    print(f"\n{'per call (us)':<32} {'median':>8}")
    for key in costs[0]:
        print(f"{key:<32} {statistics.median(c[key] for c in costs):>8.2f}")


if __name__ == "__main__":
    main()
