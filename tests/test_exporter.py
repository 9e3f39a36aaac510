"""The exporter's WSGI app, called directly on real metric files."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import pytest

from common.config import Settings, load_settings
from common.supervisor_rpc import SupervisorClient
from services.metrics_exporter.exporter import SupervisorCollector, make_app
from tests.conftest import ROOT, WORKERS

WRITE_ITERATION = """
from common.metrics import WorkerMetrics
m = WorkerMetrics("sync_worker")
m.started()
m.iteration_finished(0.01, False)
"""


@pytest.fixture(autouse=True)
def multiproc_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The exporter's own metrics need the directory set, as app-entrypoint sets it."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    return tmp_path


def settings_for(tmp_path: Path, **env: str) -> Settings:
    """Settings from ``env`` and an empty config file."""
    empty = tmp_path / "c.yml"
    empty.write_text("")
    return load_settings({"APP_CONFIG_PATH": str(empty)} | env, dict.fromkeys(WORKERS))


def call(app: Any, path: str) -> tuple[str, dict[str, str], bytes]:
    """GET ``path`` through the WSGI app; return status, headers and body."""
    environ: dict[str, Any] = {"PATH_INFO": path}
    setup_testing_defaults(environ)
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen.update(status=status, headers=dict(headers))

    body: Iterable[bytes] = app(environ, start_response)
    return seen["status"], seen["headers"], b"".join(body)


def write_iteration(directory: Path) -> None:
    """One sync_worker iteration recorded by a separate process."""
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(directory))
    subprocess.run(
        [sys.executable, "-c", WRITE_ITERATION], cwd=ROOT, env=env, check=True, timeout=30
    )


def test_metrics_route_serves_merged_files_and_build_info(tmp_path: Path) -> None:
    """/metrics shows the workers' files and app_build_info in Prometheus text format."""
    write_iteration(tmp_path)
    app = make_app(settings_for(tmp_path, APP_VERSION="1.2.3", APP_COMMIT="abc"), tmp_path)
    status, headers, body = call(app, "/metrics")
    assert status == "200 OK"
    assert headers["Content-Type"].startswith("text/plain; version=")
    text = body.decode()
    assert 'app_iterations_total{program="sync_worker"} 1.0' in text
    assert 'app_build_info{commit="abc",env="local",version="1.2.3"} 1.0' in text


def test_readyz_names_missing_workers(tmp_path: Path) -> None:
    """/readyz is 503 with JSON naming the worker that never iterated."""
    write_iteration(tmp_path)
    app = make_app(settings_for(tmp_path), tmp_path)
    status, headers, body = call(app, "/readyz")
    report = json.loads(body)
    assert status == "503 Service Unavailable"
    assert headers["Content-Type"] == "application/json"
    assert report["not_ready"] == [w for w in WORKERS if w != "sync_worker"]
    assert report["programs"]["async_worker"]["status"] == "missing"
    assert report["programs"]["sync_worker"]["status"] == "fresh"
    assert 0 <= report["programs"]["sync_worker"]["age_seconds"] < 60


def test_readyz_names_a_stale_worker_with_its_age(tmp_path: Path) -> None:
    """A worker whose last iteration is older than the max age is stale, with its age."""
    write_iteration(tmp_path)
    settings = settings_for(
        tmp_path,
        APP_WORKERS="sync_worker",
        APP_LOOP_SLEEP_SECONDS="0.01",
        APP_HEALTH_MAX_AGE_SECONDS="0.02",
    )
    time.sleep(0.05)
    status, _, body = call(make_app(settings, tmp_path), "/readyz")
    state = json.loads(body)["programs"]["sync_worker"]
    assert status == "503 Service Unavailable"
    assert state["status"] == "stale"
    assert state["age_seconds"] >= 0.05


def test_metrics_disabled_means_404_and_no_freshness_check(tmp_path: Path) -> None:
    """metrics_enabled false: /metrics is 404; /readyz judges only supervisord's processes."""
    app = make_app(settings_for(tmp_path, APP_METRICS_ENABLED="false"), tmp_path)
    assert call(app, "/metrics")[0] == "404 Not Found"
    status, _, body = call(app, "/readyz")
    report = json.loads(body)
    assert status == "503 Service Unavailable"  # no supervisord runs in this test
    assert report["programs"] == {}
    [problem] = report["problems"]
    assert problem.startswith("supervisord unreachable: ")


def test_unknown_route_is_404_json(tmp_path: Path) -> None:
    """Any other path is a 404 with a JSON error; /healthz is 200."""
    app = make_app(settings_for(tmp_path), tmp_path)
    status, _, body = call(app, "/nope")
    assert status == "404 Not Found"
    assert json.loads(body) == {"error": "no route '/nope'"}
    assert call(app, "/healthz")[0] == "200 OK"


def test_hung_supervisord_cannot_hang_the_scrape(tmp_path: Path) -> None:
    """A socket that accepts but never answers: app_supervisor_up 0 within about 1 s."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(tmp_path / "supervisor.sock"))
    server.listen()
    try:
        collector = SupervisorCollector(SupervisorClient(tmp_path, 1.0))
        started = time.monotonic()
        families = list(collector.collect())
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert [(f.name, [s.value for s in f.samples]) for f in families] == [
        ("app_supervisor_up", [0])
    ]
    assert elapsed < 3
