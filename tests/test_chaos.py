"""Chaos: 200 kill -9 of the workers (and a few of the exporter and the listener).

Counters never go down across scrapes, the metric directory stays small,
every scrape the exporter answers is whole, and health is back within 3 s.

The stack runs the project's supervisord.conf with one change, ``startsecs=0``:
supervisord then treats a process killed a moment after its start as running,
not as a failed start to back off from, so 200 kills take about a minute
instead of seven. Everything else is the production configuration.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from common.procfs import children_by_parent
from tests.conftest import TEST_WORKERS, Stack, fixture_conf, http_get

pytestmark = pytest.mark.stack  # make test-quick leaves these out

KILLS = 200
FILE_BOUND = 30  # 3 files per live process (5), 3 archives, and a few not yet compacted


def processes(supervisord: int) -> dict[str, int]:
    """``{program: pid}`` of supervisord's children, from their environment."""
    found = {}
    for pid in children_by_parent().get(supervisord, []):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in environ:
            if item.startswith(b"SUPERVISOR_PROCESS_NAME="):
                found[item.split(b"=", 1)[1].decode()] = pid
    return found


def iterations(stack: Stack) -> dict[str, float] | None:
    """``app_iterations_total`` per program, or None while the exporter is restarting."""
    try:
        status, body = http_get(stack.url("/metrics"), timeout=2)
    except OSError:
        return None
    assert status == 200
    values = {}
    for family in text_string_to_metric_families(body.decode()):
        if family.name == "app_iterations":
            for sample in family.samples:
                if sample.name == "app_iterations_total":
                    values[sample.labels["program"]] = sample.value
    return values


def test_200_kills_keep_counts_exact_and_the_directory_small(tmp_path: Path) -> None:
    """kill -9 200 times: no counter decreases, <= 30 metric files, healthy 3 s later."""
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    conf = fixture_conf()
    (conf_dir / "supervisord.conf").write_text(re.sub(r"startsecs=\d+", "startsecs=0", conf))
    stack = Stack(tmp_path / "stack", {"loop_sleep_seconds": "0.2"}, cwd=conf_dir)
    try:
        stack.wait_ready()
        supervisord = int((stack.runtime_dir / "supervisord.pid").read_text())
        metric_dir = stack.runtime_dir / "prometheus"
        last: dict[str, float] = {}
        most_files = 0
        for kill in range(KILLS):
            victim = TEST_WORKERS[kill % len(TEST_WORKERS)]
            if kill % 50 == 25:
                victim = "metrics_exporter"
            elif kill % 50 == 40:
                victim = "event_listener"
            old = processes(supervisord)[victim]
            os.kill(old, signal.SIGKILL)

            def restarted(victim: str = victim, old: int = old) -> bool:
                return processes(supervisord).get(victim, old) != old

            stack.wait_until(restarted, 10, f"{victim} restarted")
            seen = iterations(stack)
            if seen is not None:
                for program, value in seen.items():
                    assert value >= last.get(program, 0), (kill, program, value, last)
                last.update(seen)
            most_files = max(most_files, len(list(metric_dir.glob("*.db"))))
        started = time.monotonic()
        stack.wait_until(lambda: stack.health().returncode == 0, 10, "healthy again")
        healthy_after = time.monotonic() - started
    finally:
        stack.kill()
    print(f"most metric files at once: {most_files}; healthy {healthy_after:.2f} s after")
    assert most_files <= FILE_BOUND, most_files
    assert healthy_after < 3.0
    assert set(last) == set(TEST_WORKERS)
