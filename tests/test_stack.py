"""End to end: the real entrypoint, supervisord, both workers and the exporter."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from common.procfs import children_by_parent
from tests.conftest import (
    BIN,
    TEST_PROCESSES,
    TEST_WORKERS,
    Stack,
    base_env,
    fixture_conf,
    fixture_dir,
    free_port,
    http_get,
    run_command,
)

pytestmark = pytest.mark.stack  # make test-quick leaves these out

REQUIRED_KEYS = {"ts", "level", "service", "program", "logger", "instance", "env", "msg"}


def scrape(stack: Stack) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """``{sample name: {sorted labels: value}}`` from one GET /metrics."""
    status, body = http_get(stack.url("/metrics"))
    assert status == 200
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            key = tuple(sorted(sample.labels.items()))
            samples.setdefault(sample.name, {})[key] = sample.value
    return samples


def iterations(stack: Stack, program: str) -> float:
    """``app_iterations_total{program=...}`` from one scrape."""
    return scrape(stack)["app_iterations_total"][(("program", program),)]


def test_supervisord_takes_over_the_entrypoint_pid_and_all_programs_run(
    running_stack: Stack,
) -> None:
    """The entrypoint execs supervisord (same pid, no extra process); every process RUNNING."""
    supervisord = int((running_stack.runtime_dir / "supervisord.pid").read_text())
    assert supervisord == running_stack.proc.pid
    assert len(children_by_parent()[supervisord]) == len(TEST_PROCESSES)
    status = running_stack.ctl("status").stdout
    for program in (*TEST_WORKERS, "metrics_exporter"):
        assert f"app:{program}" in status
    assert status.count("RUNNING") == len(TEST_PROCESSES)


def test_control_socket_is_private(running_stack: Stack) -> None:
    """The supervisor socket sits in the runtime dir with mode 0700."""
    sock = running_stack.runtime_dir / "supervisor.sock"
    assert sock.is_socket()
    assert sock.stat().st_mode & 0o777 == 0o700


def test_supervisord_log_has_no_crit_lines(running_stack: Stack) -> None:
    """Supervisord starts without CRIT (root, authentication) warnings."""
    text = (running_stack.runtime_dir / "supervisord.log").read_text()
    assert "supervisord started" in text
    assert "CRIT" not in text


def test_metrics_aggregate_every_worker(running_stack: Stack) -> None:
    """One /metrics carries each worker's series and build info, without a pid label."""
    running_stack.wait_until(
        lambda: all(iterations(running_stack, p) >= 2 for p in TEST_WORKERS), 10, "two iterations"
    )
    samples = scrape(running_stack)
    for program in TEST_WORKERS:
        key = (("program", program),)
        assert samples["app_iterations_total"][key] >= 2
        assert samples["app_iteration_errors_total"][key] == 0
        assert samples["app_up"][key] == 1
        assert abs(samples["app_last_iteration_timestamp_seconds"][key] - time.time()) < 10
        assert samples["app_iteration_duration_seconds_count"][key] >= 2
    build = samples["app_build_info"]
    assert list(build) == [(("commit", "unknown"), ("env", "local"), ("version", "0.0.0-dev"))]
    assert all("pid" not in dict(labels) for series in samples.values() for labels in series)


def test_supervisor_state_is_exported(running_stack: Stack) -> None:
    """/metrics says supervisord answered and every process is RUNNING, with its start time."""
    samples = scrape(running_stack)
    assert samples["app_supervisor_up"] == {(): 1.0}
    for name in TEST_PROCESSES:
        assert samples["app_process_running"][(("program", name),)] == 1
        assert samples["app_process_state"][(("program", name), ("state", "RUNNING"))] == 1
        assert (
            abs(samples["app_process_start_time_seconds"][(("program", name),)] - time.time()) < 600
        )


def test_every_process_has_resource_metrics_from_proc(running_stack: Stack) -> None:
    """Supervisord and each process: CPU, RSS, PSS, fds, threads and start time."""
    samples = scrape(running_stack)
    pids = ("supervisord", *TEST_PROCESSES)
    for program in pids:
        key = (("program", program),)
        if program != "supervisord":  # supervisord's own record of when it started it
            started = samples["app_process_start_time_seconds"][key]
            assert abs(samples["process_start_time_seconds"][key] - started) < 2, program
        rss = samples["process_resident_memory_bytes"][key]
        assert 5e6 < rss < 200e6, (program, rss)
        assert 0 < samples["process_pss_bytes"][key] <= rss * 1.05, program
        assert samples["process_open_fds"][key] >= 3, program
        assert samples["process_threads"][key] >= 1, program
        assert samples["process_cpu_seconds_total"][key] > 0, program
    assert {dict(k)["program"] for k in samples["process_threads"]} == set(pids)
    starts = samples["process_start_time_seconds"]
    first_program = min(v for k, v in starts.items() if k != (("program", "supervisord"),))
    assert first_program - 30 < starts[(("program", "supervisord"),)] <= first_program


def test_promtool_accepts_the_exposition(running_stack: Stack, tmp_path: Path) -> None:
    """Promtool check metrics finds no problem in /metrics."""
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool not found: apt-get install prometheus")
    _, body = http_get(running_stack.url("/metrics"))
    result = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_healthz_and_readyz_answer_200(running_stack: Stack) -> None:
    """/healthz is 200; /readyz is 200 with every worker fresh, each by its shape's freshness."""
    assert http_get(running_stack.url("/healthz"))[0] == 200
    status, body = http_get(running_stack.url("/readyz"))
    report = json.loads(body)
    assert status == 200
    assert report["ready"] is True
    assert {report["programs"][p]["status"] for p in TEST_WORKERS} == {"fresh"}
    # the test workers: sync_worker runs run_once, async_worker serves and heartbeats
    assert report["programs"]["sync_worker"]["freshness"] == "last_iteration"
    assert report["programs"]["async_worker"]["freshness"] == "last_heartbeat"


def test_app_health_reports_healthy(running_stack: Stack) -> None:
    """app-health prints one JSON line and exits 0 while everything runs."""
    result = running_stack.health()
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    report = json.loads(lines[0])
    assert result.returncode == 0, report
    assert report["ready"] is True
    assert report["problems"] == []
    assert set(report["processes"].values()) == {"RUNNING"}


def test_every_stdout_line_is_a_json_record(running_stack: Stack) -> None:
    """Each line on stdout parses as JSON and carries the required keys."""
    records = running_stack.records()
    assert records
    for record in records:
        assert record.keys() >= REQUIRED_KEYS, record
    started = {r["program"] for r in records if r.get("event") == "startup_success"}
    assert started == set(TEST_PROCESSES)
    loaded = {r["program"] for r in records if r.get("event") == "config_loaded"}
    assert loaded == {*TEST_PROCESSES, "entrypoint"}


def test_supervisorctl_stops_and_starts_a_worker(start_stack: Callable[..., Stack]) -> None:
    """A stopped worker makes /readyz 503 ("stopped") and app-health fail; start heals both."""
    stack = start_stack(loop_sleep_seconds="0.2")
    stack.wait_ready()
    result = stack.ctl("stop", "app:sync_worker")
    assert "stopped" in result.stdout, result
    unhealthy = stack.health()
    assert unhealthy.returncode == 1
    assert "app:sync_worker is STOPPED" in json.loads(unhealthy.stdout)["problems"][-1]
    stopped = scrape(stack)
    assert stopped["app_process_running"][(("program", "sync_worker"),)] == 0
    assert stopped["app_process_state"][(("program", "sync_worker"), ("state", "STOPPED"))] == 1
    status, body = http_get(stack.url("/readyz"))
    report = json.loads(body)
    assert status == 503
    assert report["not_ready"] == ["sync_worker"]
    assert report["programs"]["sync_worker"]["status"] == "stopped"
    assert stack.ctl("start", "app:sync_worker").returncode == 0
    stack.wait_ready()
    assert stack.health().returncode == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_stop_signal_stops_everything_fast(
    start_stack: Callable[..., Stack], signum: signal.Signals
) -> None:
    """SIGTERM or Ctrl-C stops all processes within 2 s, even with a 30 s loop, exit 0."""
    stack = start_stack(loop_sleep_seconds="30")
    stack.wait_ready()
    elapsed = stack.stop(signum)
    assert stack.proc.returncode == 0
    assert elapsed < 2.0
    assert stack.leftovers() == []
    stack.kill()  # joins the output reader
    records = stack.records()
    for program in (*TEST_WORKERS, "metrics_exporter"):
        own = [r.get("event") for r in records if r["program"] == program]
        own = [e for e in own if e != "process_state"]  # the listener's lines about it
        assert own[-2:] == ["shutting_down", "shutdown_complete"], (program, own)
        states = [r["to_state"] for r in records if r.get("event") == "process_state"
                  and r["program"] == program]  # fmt: skip
        # STOPPED may come after the listener itself was told to stop: not asserted.
        assert "STOPPING" in states[-2:], (program, states)
    log = (stack.runtime_dir / "supervisord.log").read_text()
    for program in (*TEST_WORKERS, "metrics_exporter"):
        assert f"stopped: {program} (exit status 0)" in log, [
            line for line in log.splitlines() if program in line
        ]


@pytest.mark.parametrize("program", TEST_WORKERS)
def test_killed_worker_restarts_and_counter_never_decreases(
    start_stack: Callable[..., Stack], program: str
) -> None:
    """Kill -9 of a worker: restarted, not ready while STARTING again, counter never goes down."""
    stack = start_stack(loop_sleep_seconds="0.1")
    stack.wait_ready()
    seen: list[float] = []

    def count() -> float:
        seen.append(iterations(stack, program))
        return seen[-1]

    stack.wait_until(lambda: count() >= 5, 10, "five iterations")
    old_pid = stack.pid_of(program)
    os.kill(old_pid, signal.SIGKILL)

    def readiness() -> tuple[int, list[str]]:
        count()
        status, body = http_get(stack.url("/readyz"))
        return status, json.loads(body)["problems"]

    # Until supervisord calls the restarted worker RUNNING (startsecs, 2 s), it is not
    # ready. Polled over HTTP alone: a supervisorctl call between two looks can take
    # longer than that window on a loaded machine (a fresh-clone run missed it so).
    starting = (503, [f"app:{program} is STARTING again after it ended"])
    stack.wait_until(lambda: readiness() == starting, 10, f"{program} STARTING, not ready")

    def restarted() -> bool:
        count()
        return stack.pid_of(program) not in (0, old_pid)

    stack.wait_until(restarted, 10, f"{program} restarted")
    at_restart = seen[-1]
    stack.wait_until(lambda: count() > at_restart + 3, 10, "new iterations")
    assert seen == sorted(seen), seen
    samples = scrape(stack)
    assert samples["app_starts_total"][(("program", program),)] == 2
    assert samples["app_process_exits_total"][(("expected", "false"), ("program", program))] == 1
    exits = [
        r
        for r in stack.records()
        if r.get("event") == "process_state" and r["program"] == program
        and r["to_state"] == "EXITED"
    ]  # fmt: skip
    assert [(r["pid"], r["expected"], r["level"]) for r in exits] == [(old_pid, False, "WARNING")]
    prometheus_dir = stack.runtime_dir / "prometheus"
    stack.wait_until(
        lambda: not list(prometheus_dir.glob(f"*_{old_pid}.db")), 10, "the dead files compacted"
    )
    assert iterations(stack, program) >= seen[-1]
    stack.wait_ready()


def test_bad_config_exits_78_before_anything_starts(tmp_path: Path) -> None:
    """A bad value stops the entrypoint with exit 78 and one config_invalid line."""
    runtime = tmp_path / "run"
    env = base_env(runtime, free_port(), metrics_port="eighty", log_level="LOUD")
    result = run_command(["app-entrypoint"], env, cwd=fixture_dir(tmp_path))
    assert result.returncode == 78
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["event"] == "config_invalid"
    assert "metrics_port (env APP_METRICS_PORT)" in record["msg"]
    assert "log_level (env APP_LOG_LEVEL)" in record["msg"]
    assert result.stderr == ""
    assert not runtime.exists()


def test_second_entrypoint_refuses_a_live_runtime_dir(start_stack: Callable[..., Stack]) -> None:
    """A second start on the same runtime dir exits 1 and leaves the running metrics alone."""
    stack = start_stack(loop_sleep_seconds="0.2")
    stack.wait_ready()
    files_before = sorted(p.name for p in (stack.runtime_dir / "prometheus").iterdir())
    result = run_command(["app-entrypoint"], stack.env, cwd=fixture_dir(stack.runtime_dir.parent))
    assert result.returncode == 1
    assert "already answers" in json.loads(result.stdout.splitlines()[-1])["msg"]
    files_after = sorted(p.name for p in (stack.runtime_dir / "prometheus").iterdir())
    assert set(files_before) <= set(files_after)


def test_unknown_worker_in_settings_exits_78(tmp_path: Path) -> None:
    """A name in workers that supervisord.conf does not run is a config error, with a hint."""
    env = base_env(tmp_path / "run", free_port(), workers="sync_worker,asyn_worker")
    result = run_command(["app-entrypoint"], env, cwd=fixture_dir(tmp_path))
    assert result.returncode == 78
    record = json.loads(result.stdout.splitlines()[-1])
    assert record["event"] == "config_invalid"
    assert "workers (env APP_WORKERS): not a worker program of supervisord.conf" in record["msg"]
    assert "'asyn_worker'; did you mean 'async_worker'?" in record["msg"]


def test_app_health_fails_when_nothing_runs(tmp_path: Path) -> None:
    """Without an exporter or supervisord, app-health says why and exits 1."""
    env = base_env(tmp_path / "run", free_port())
    result = run_command(["app-health"], env)
    assert result.returncode == 1
    assert json.loads(result.stdout) == {
        "ready": False,
        "problems": [
            f"the exporter has not started (no address in {tmp_path / 'run'}): [Errno 2] "
            f"No such file or directory: '{tmp_path / 'run' / 'exporter-address'}'"
        ],
    }


def make_sync_worker_fatal(stack: Stack) -> None:
    """Make the test worker's lifespan crash at every start, then kill it: FATAL after retries."""
    (stack.runtime_dir / "crash-sync_worker").write_text("")
    os.kill(stack.pid_of("sync_worker"), signal.SIGKILL)


def test_crash_at_every_restart_ends_fatal_after_bounded_spawns(
    start_stack: Callable[..., Stack],
) -> None:
    """A worker crashing at each start exits 1 and is FATAL after 1 + 3 spawns."""
    stack = start_stack(loop_sleep_seconds="0.2", fail_fast="false")
    stack.wait_ready()
    make_sync_worker_fatal(stack)
    stack.wait_until(
        lambda: " FATAL " in stack.ctl("status", "app:sync_worker").stdout, 30, "FATAL"
    )
    crashed = [
        r for r in stack.records() if r["program"] == "sync_worker" and r.get("event") == "crashed"
    ]
    assert len(crashed) == 4  # the first spawn and startretries=3 more
    assert crashed[0]["exception_type"] == "RuntimeError"
    log = (stack.runtime_dir / "supervisord.log").read_text()
    assert "gave up: sync_worker entered FATAL state, too many start retries" in log
    health = stack.health()
    assert health.returncode == 1
    assert json.loads(health.stdout)["problems"] == [
        "sync_worker is stopped (last_iteration)",  # its app_up went 0 as it crashed
        "app:sync_worker is FATAL",
    ]


def test_fail_fast_stops_the_container_with_exit_code_1(
    start_stack: Callable[..., Stack],
) -> None:
    """fail_fast (default): a FATAL program stops everything and the entrypoint exits 1.

    The last line keeps the identity resolved at start, although the config file
    no longer loads by then.
    """
    stack = start_stack(loop_sleep_seconds="0.2", service_name="billing", instance="pod-7")
    stack.wait_ready()
    Path(stack.env["APP_CONFIG_PATH"]).write_text("service_name: [broken\n")
    make_sync_worker_fatal(stack)
    assert stack.proc.wait(40) == 1
    stack.kill()
    records = stack.records()
    [fail] = [r for r in records if r.get("event") == "fail_fast"]
    assert fail["fatal_program"] == "sync_worker"
    assert (fail["service"], fail["instance"], fail["program"]) == (
        "billing",
        "pod-7",
        "entrypoint",
    )
    assert records[-1] == fail
    assert stack.leftovers() == []
    for program in ("async_worker", "metrics_exporter"):
        assert any(
            r["program"] == program and r.get("event") == "shutdown_complete" for r in records
        )


def test_damaged_metric_file_is_quarantined_and_counted(
    start_stack: Callable[..., Stack],
) -> None:
    """A 0-byte file of a dead process: scrapes go on, the file is set aside, counted, logged."""
    stack = start_stack(loop_sleep_seconds="0.2")
    stack.wait_ready()
    before = scrape(stack)["app_iterations_total"]
    (stack.runtime_dir / "prometheus" / "counter_4000000.db").write_bytes(b"")
    first = scrape(stack)
    assert set(first["app_iterations_total"]) == set(before)
    quarantined = stack.runtime_dir / "prometheus" / "quarantine" / "counter_4000000.db"
    assert quarantined.exists()
    assert scrape(stack)["app_metric_files_quarantined_total"] == {(): 1.0}

    def warnings() -> list[dict[str, Any]]:
        return [r for r in stack.records() if r.get("event") == "metric_file_quarantined"]

    stack.wait_until(lambda: bool(warnings()), 10, "the quarantine line")  # it travels a pipe
    [warning] = warnings()
    assert warning["file"] == str(quarantined)


def test_stop_as_supervisord_spawns_is_fast(start_stack: Callable[..., Stack]) -> None:
    """SIGTERM the moment supervisord runs: everything is gone within 3 s, not 10.

    A program forked but not yet exec'd misses the signal and would be killed
    only after stopwaitsecs (10 s); the pid1 plugin sends it again.
    """
    stack = start_stack(loop_sleep_seconds="30")
    pidfile = stack.runtime_dir / "supervisord.pid"
    stack.wait_until(pidfile.exists, 10, "supervisord.pid")
    started = time.monotonic()
    stack.proc.send_signal(signal.SIGTERM)
    assert stack.proc.wait(15) == 0
    assert time.monotonic() - started < 3.0
    assert stack.leftovers() == []


def test_stop_during_a_restart_loop_exits_0(start_stack: Callable[..., Stack]) -> None:
    """SIGTERM while a program backs off (it goes FATAL as everything stops): exit 0."""
    stack = start_stack(loop_sleep_seconds="0.2")
    stack.wait_ready()
    make_sync_worker_fatal(stack)
    stack.wait_until(
        lambda: " BACKOFF " in stack.ctl("status", "app:sync_worker").stdout, 15, "BACKOFF"
    )
    stack.stop(signal.SIGTERM)
    assert stack.proc.returncode == 0
    assert stack.leftovers() == []


def test_supervisord_refusing_its_config_exits_78_with_a_json_line(tmp_path: Path) -> None:
    """A supervisord.conf that supervisord rejects (a plugin's bad value): 78 and config_invalid."""
    workdir = tmp_path / "app"
    workdir.mkdir()
    conf = fixture_conf()
    broken = conf.replace("fail_fast = %(ENV_APP_SUPERVISORD_FAIL_FAST)s", "fail_fast = maybe")
    assert broken != conf
    (workdir / "supervisord.conf").write_text(broken)
    env = base_env(tmp_path / "run", free_port())
    result = subprocess.run(
        [str(BIN / "app-entrypoint")], cwd=workdir, env=env, capture_output=True, text=True,
        timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 78
    record = json.loads(result.stdout.splitlines()[-1])
    assert (record["event"], record["program"]) == ("config_invalid", "entrypoint")
    assert "Error: Could not make pid1 rpc interface" in result.stderr  # supervisord's words


def test_supervisord_conf_that_does_not_parse_exits_78_naming_it(tmp_path: Path) -> None:
    """A supervisord.conf line without '=': exit 78 and one config_invalid line naming the file."""
    workdir = tmp_path / "app"
    workdir.mkdir()
    (workdir / "supervisord.conf").write_text(fixture_conf() + "oops\n")
    env = base_env(tmp_path / "run", free_port())
    result = subprocess.run(
        [str(BIN / "app-entrypoint")], cwd=workdir, env=env, capture_output=True, text=True,
        timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 78
    record = json.loads(result.stdout.splitlines()[-1])
    assert record["event"] == "config_invalid"
    assert "supervisord.conf (supervisord.conf): Source contains parsing errors" in record["msg"]
    assert "'oops" in record["msg"]
    assert not (tmp_path / "run").exists()  # nothing prepared, nothing started


def test_runtime_dir_that_is_a_file_exits_78(tmp_path: Path) -> None:
    """A runtime_dir that cannot be created is a config error, not a traceback."""
    blocker = tmp_path / "afile"
    blocker.write_text("")
    env = base_env(blocker, free_port())
    result = run_command(["app-entrypoint"], env, cwd=fixture_dir(tmp_path))
    assert result.returncode == 78
    record = json.loads(result.stdout.splitlines()[-1])
    assert record["event"] == "config_invalid"
    assert "runtime_dir (env APP_RUNTIME_DIR): cannot create the directory" in record["msg"]
