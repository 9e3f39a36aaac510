"""A real Prometheus server scrapes the real processes (Debian package ``prometheus``).

Prometheus runs on 127.0.0.1 with a temp data dir and a 1 s scrape interval;
everything is asserted through its HTTP query API.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import TEST_WORKERS, Stack, free_port, http_get, stop_process

pytestmark = pytest.mark.stack  # make test-quick leaves these out


class Prometheus:
    """A Prometheus server scraping one target every second."""

    def __init__(self, binary: str, tmp: Path, target: str) -> None:
        self.port = free_port()
        config = tmp / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: app\n"
            f"    static_configs:\n      - targets: ['{target}']\n"
        )
        self.log = (tmp / "prometheus.log").open("wb")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The result vector of an instant query (empty if the server is not up yet)."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode(
            {"query": promql}
        )
        try:
            status, body = http_get(url)
        except OSError:
            return []
        if status != 200:
            return []
        result: list[dict[str, Any]] = json.loads(body)["data"]["result"]
        return result

    def values(self, promql: str) -> dict[str, float]:
        """``{program: value}`` of an instant query (``""`` for a series without program)."""
        return {r["metric"].get("program", ""): float(r["value"][1]) for r in self.query(promql)}

    def stop(self) -> None:
        """SIGTERM the server (SIGKILL after 10 s) and close its log."""
        stop_process(self.proc, 10.0)
        self.log.close()


@pytest.fixture
def scraped(
    tmp_path: Path, start_stack: Callable[..., Stack]
) -> Iterator[tuple[Stack, Prometheus]]:
    """A ready stack (0.2 s loop) and a Prometheus server scraping it."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus not found: apt-get install prometheus")
    stack = start_stack(loop_sleep_seconds="0.2")
    stack.wait_ready()
    server = Prometheus(binary, tmp_path, f"127.0.0.1:{stack.port}")
    try:
        yield stack, server
    finally:
        server.stop()


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` every 0.25 s until true; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def test_prometheus_scrapes_both_workers_and_sees_no_reset_across_kill_9(
    scraped: tuple[Stack, Prometheus],
) -> None:
    """Prometheus sees up == 1, a rate for both workers, and no counter reset after kill -9."""
    stack, prom = scraped
    wait_for(lambda: prom.values('up{job="app"}') == {"": 1.0}, 30, "up == 1")
    rates = 'rate(app_iterations_total{job="app"}[5s]) > 0'
    wait_for(lambda: set(prom.values(rates)) == set(TEST_WORKERS), 30, "a rate for every worker")

    victim = TEST_WORKERS[0]
    old_pid = stack.pid_of(victim)
    os.kill(old_pid, signal.SIGKILL)
    stack.wait_until(lambda: stack.pid_of(victim) not in (0, old_pid), 10, "a restart")
    starts = f'app_starts_total{{program="{victim}"}}'
    wait_for(lambda: prom.values(starts) == {victim: 2.0}, 30, "the restart scraped")
    wait_for(lambda: set(prom.values(rates)) == set(TEST_WORKERS), 30, "rates after the restart")

    resets = prom.values("resets(app_iterations_total[1m])")
    assert resets == dict.fromkeys(TEST_WORKERS, 0.0)
    assert prom.values('up{job="app"}') == {"": 1.0}
