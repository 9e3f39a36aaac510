"""Worker metrics in multiprocess mode: summed across processes, newest gauge wins."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from common.metrics import MetricsSetupError, WorkerMetrics, check_multiproc_dir
from tests.conftest import ROOT

WORKER_RUN = """
import sys, time
from common.metrics import WorkerMetrics
m = WorkerMetrics("w")
m.started()
for failed in sys.argv[1:]:
    m.iteration_finished(0.02, failed == "fail")
if sys.argv[-1] == "stop":
    m.stopped()
"""


def run_worker(directory: Path, *iterations: str) -> None:
    """Record ``iterations`` ("ok"/"fail", last may be "stop") in a new process."""
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(directory))
    subprocess.run(
        [sys.executable, "-c", WORKER_RUN, *iterations], cwd=ROOT, env=env, check=True, timeout=30
    )


def collect(directory: Path) -> dict[str, float]:
    """``{sample name + labels: value}`` merged over every process file in ``directory``."""
    merged: dict[str, float] = {}
    for family in MultiProcessCollector(None, path=str(directory)).collect():
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            merged[f"{sample.name}{{{labels}}}"] = sample.value
    return merged


def test_counters_sum_over_dead_and_live_processes(tmp_path: Path) -> None:
    """Iterations and errors of successive processes add up (a restart never resets them)."""
    run_worker(tmp_path, "ok", "fail", "ok")
    run_worker(tmp_path, "ok", "fail")
    merged = collect(tmp_path)
    assert merged["app_iterations_total{program=w}"] == 5
    assert merged["app_iteration_errors_total{program=w}"] == 2
    assert merged["app_iteration_duration_seconds_count{program=w}"] == 5
    assert merged["app_iteration_duration_seconds_bucket{le=0.05,program=w}"] == 5
    assert merged["app_iteration_duration_seconds_bucket{le=0.01,program=w}"] == 0
    assert merged["app_starts_total{program=w}"] == 2


def test_gauges_take_the_most_recent_write_without_pid_label(tmp_path: Path) -> None:
    """app_up and the timestamp follow the newest process; no series has a pid label."""
    run_worker(tmp_path, "ok")
    run_worker(tmp_path, "ok", "stop")
    merged = collect(tmp_path)
    assert merged["app_up{program=w}"] == 0
    assert not any("pid=" in key for key in merged)


def test_disabled_metrics_write_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With metrics_enabled false a worker neither needs nor touches the directory."""
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    metrics = WorkerMetrics("w", enabled=False)
    metrics.started()
    metrics.iteration_finished(0.1, failed=True)
    assert list(tmp_path.iterdir()) == []


def test_missing_multiproc_dir_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without PROMETHEUS_MULTIPROC_DIR the error names the variable and the fix."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/nonexistent/dir")
    with pytest.raises(MetricsSetupError, match="env PROMETHEUS_MULTIPROC_DIR is not set or not"):
        check_multiproc_dir()
