"""The workers plugin under a real supervisord: chosen workers start, hung ones are restarted.

Each test runs the real ``app-entrypoint`` (then supervisord with
``entrypoint.workers`` loaded) on the test workers of ``tests/fixtures``, with
the watchdog's ``kill_after_seconds`` lowered to 1 s so that the SIGKILL path
takes seconds, not minutes. These tests also fence the supervisord internals the
plugin uses (``Subprocess.spawn``, ``laststart``, ``change_state``,
``give_up``): a supervisor release that changes them fails here.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Stack, fixture_conf, http_get

pytestmark = pytest.mark.stack  # make test-quick leaves these out


def stack_with(
    tmp_path: Path,
    conf_edits: dict[str, str] | None = None,
    hang: str | None = None,
    **settings: str,
) -> Stack:
    """A stack whose supervisord.conf has ``kill_after_seconds = 1`` and ``conf_edits`` applied.

    ``hang`` names a worker whose hang file exists before anything starts.
    """
    if hang:
        runtime_dir = tmp_path / "stack" / "run"  # Stack's; the entrypoint keeps its files
        runtime_dir.mkdir(parents=True)
        (runtime_dir / f"hang-{hang}").write_text("")
    workdir = tmp_path / "app"
    workdir.mkdir()
    conf = fixture_conf().replace("kill_after_seconds = 5", "kill_after_seconds = 1")
    for pattern, replacement in (conf_edits or {}).items():
        conf = re.sub(pattern, replacement, conf)
    (workdir / "supervisord.conf").write_text(conf)
    return Stack(tmp_path / "stack", settings, cwd=workdir)


def events(stack: Stack, name: str, program: str | None = None) -> list[dict[str, Any]]:
    """The records with ``event`` ``name`` (of ``program``, if given)."""
    return [
        r
        for r in stack.records()
        if r.get("event") == name and (program is None or r.get("program") == program)
    ]


def metric_value(stack: Stack, sample: str) -> float | None:
    """The value of the exact ``sample`` (name and labels) in /metrics, None if absent."""
    _, body = http_get(stack.url("/metrics"))
    for line in body.decode().splitlines():
        if line.startswith(sample + " "):
            return float(line.rpartition(" ")[2])
    return None


def restarted(stack: Stack, program: str, before: int) -> bool:
    """True once supervisord answers again (after a reload) with a new pid for ``program``."""
    answer = stack.ctl("pid", f"app:{program}").stdout.strip()
    return answer.isdigit() and int(answer) not in (0, before)


def test_only_the_chosen_workers_start_and_are_judged(tmp_path: Path) -> None:
    """workers=sync_worker: async_worker stays STOPPED (startable by hand, also after a reload)."""
    stack = stack_with(tmp_path, workers="sync_worker", loop_sleep_seconds="0.2")
    try:
        stack.wait_ready()
        status = stack.ctl("status", "app:async_worker").stdout
        assert "STOPPED" in status, status
        assert "Not started" in status, status
        assert metric_value(stack, 'app_worker_expected{program="sync_worker"}') == 1
        assert metric_value(stack, 'app_worker_expected{program="async_worker"}') is None
        assert stack.health().returncode == 0
        assert stack.ctl("start", "app:async_worker").returncode == 0
        stack.wait_until(lambda: stack.pid_of("async_worker") > 0, 10, "async_worker by hand")
        stack.ctl("stop", "app:async_worker")
        time.sleep(0.5)
        assert http_get(stack.url("/readyz"))[0] == 200  # a stopped unchosen worker is no problem
        before = stack.pid_of("sync_worker")
        assert stack.ctl("reload").returncode == 0  # a new main loop: the choice holds
        stack.wait_until(lambda: restarted(stack, "sync_worker", before), 15, "the reload")
        stack.wait_ready()
        assert "Not started" in stack.ctl("status", "app:async_worker").stdout
        stack.stop()
    finally:
        stack.kill()
    assert stack.proc.returncode == 0
    assert not events(stack, "watchdog_restart")
    assert stack.leftovers() == []


def test_a_blocked_sync_worker_is_restarted_with_sigkill(tmp_path: Path) -> None:
    """run_once stuck in time.sleep ignores SIGTERM: one restart line, SIGKILL, new pid, counted."""
    stack = stack_with(
        tmp_path,
        workers="sync_worker",
        loop_sleep_seconds="0.2",
        watchdog_seconds="2",
        health_max_age_seconds="1",
    )
    try:
        stack.wait_ready()
        time.sleep(3)  # longer than watchdog_seconds: a fresh worker is never restarted
        assert not events(stack, "watchdog_restart")
        first = stack.pid_of("sync_worker")
        (stack.runtime_dir / "hang-sync_worker").write_text("")
        stack.wait_until(lambda: bool(events(stack, "watchdog_kill")), 15, "watchdog_kill")
        (stack.runtime_dir / "hang-sync_worker").unlink()
        stack.wait_until(lambda: stack.pid_of("sync_worker") not in (0, first), 10, "a new pid")
        stack.wait_ready()
        sample = 'app_watchdog_restarts_total{program="sync_worker"}'
        stack.wait_until(lambda: metric_value(stack, sample) == 1, 10, "the restart counted")
        time.sleep(3)  # healthy again: no second restart
        stack.stop()
    finally:
        stack.kill()
    [restart] = events(stack, "watchdog_restart")
    assert (restart["program"], restart["level"], restart["pid"]) == ("sync_worker", "ERROR", first)
    assert 2.0 <= restart["age_seconds"] < 4.0
    assert restart["watchdog_seconds"] == 2.0
    assert restart["progressed"] is True
    assert restart["gives_up"] is False
    assert "made no progress for" in restart["msg"]
    [kill] = events(stack, "watchdog_kill")
    assert (kill["program"], kill["pid"], kill["after_seconds"]) == ("sync_worker", first, 1.0)
    assert stack.proc.returncode == 0
    assert stack.leftovers() == []


def test_a_sigstopped_worker_and_a_blocked_event_loop_are_restarted(tmp_path: Path) -> None:
    """A SIGSTOPped sync worker, an async worker whose loop a sync call blocks: both restarted."""
    stack = stack_with(
        tmp_path, loop_sleep_seconds="0.2", watchdog_seconds="2", health_max_age_seconds="1"
    )
    try:
        stack.wait_ready()
        stopped = stack.pid_of("sync_worker")
        blocked = stack.pid_of("async_worker")
        os.kill(stopped, signal.SIGSTOP)
        (stack.runtime_dir / "hang-async_worker").write_text("")
        # Unhung once judged (its kill comes seconds later): the next async_worker runs freely,
        # whenever the sync worker's kill comes.
        stack.wait_until(
            lambda: bool(events(stack, "watchdog_restart", "async_worker")), 20, "async restart"
        )
        (stack.runtime_dir / "hang-async_worker").unlink()
        stack.wait_until(lambda: len(events(stack, "watchdog_kill")) == 2, 20, "two kills")
        stack.wait_ready(20)
        assert stack.pid_of("sync_worker") != stopped
        assert stack.pid_of("async_worker") != blocked
        stack.stop()
    finally:
        stack.kill()
    restarted = {(r["program"], r["pid"]) for r in events(stack, "watchdog_restart")}
    assert restarted == {("sync_worker", stopped), ("async_worker", blocked)}
    assert stack.leftovers() == []


def test_repeated_hangs_before_any_progress_end_fatal_and_stop_the_container(
    tmp_path: Path,
) -> None:
    """Hung at every start (startretries=1): two restarts, then FATAL, fail_fast exits 1."""
    stack = stack_with(
        tmp_path,
        {r"startretries=\d+": "startretries=1"},
        hang="sync_worker",
        workers="sync_worker",
        loop_sleep_seconds="0.2",
        watchdog_seconds="2",
        health_max_age_seconds="1",
    )
    try:
        stack.wait_until(lambda: stack.proc.poll() is not None, 40, "fail_fast")
    finally:
        stack.kill()
    assert stack.proc.returncode == 1
    restarts = events(stack, "watchdog_restart", "sync_worker")
    assert [r["hangs_in_a_row"] for r in restarts] == [1, 2]
    assert [r["gives_up"] for r in restarts] == [False, True]
    assert all(r["progressed"] is False for r in restarts)
    states = [r["to_state"] for r in events(stack, "process_state", "sync_worker")]
    assert states[-2:] == ["BACKOFF", "FATAL"], states
    [fail_fast] = events(stack, "fail_fast")
    assert fail_fast["fatal_program"] == "sync_worker"
    # A new process is not restarted for being new: RUNNING (startsecs) + watchdog_seconds.
    started = [
        r for r in events(stack, "process_state", "sync_worker") if r["to_state"] == "RUNNING"
    ]
    assert restarts[0]["age_seconds"] >= 2.0
    assert len(started) == 2
    assert stack.leftovers() == []
