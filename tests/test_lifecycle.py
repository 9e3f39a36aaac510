"""Each program alone: stop signals, exit codes, errors inside and outside run_once."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests import conftest
from tests.conftest import ROOT, base_env, free_port, http_get, run_module, write_worker

pytestmark = pytest.mark.stack  # make test-quick leaves these out

FAILING_LOOP = """
import itertools
calls = itertools.count()
def fail_first():
    if next(calls) == 0:
        raise KeyError("first call fails")
"""
SLOW_ITERATION = """
import asyncio, logging, time
log = logging.getLogger("work")
"""
WORKERS = {
    ("failing", "sync"): FAILING_LOOP + "def run_once(ctx):\n    fail_first()\n",
    ("failing", "async"): FAILING_LOOP + "async def run_once(ctx):\n    fail_first()\n",
    ("slow", "sync"): SLOW_ITERATION
    + """
def run_once(ctx):
    log.info("begin", extra={"event": "begin"})
    time.sleep(0.5)
    log.info("end", extra={"event": "end"})
""",
    ("slow", "async"): SLOW_ITERATION
    + """
async def run_once(ctx):
    log.info("begin", extra={"event": "begin"})
    await asyncio.sleep(0.5)
    log.info("end", extra={"event": "end"})
""",
}
CRASHING_MAIN = """
import sys
from common.program import run_program
def main(settings):
    raise RuntimeError("machinery broke")
sys.exit(run_program("w", main))
"""


def program_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """Environment for one program outside supervisord, with its own multiprocess dir."""
    env = base_env(tmp_path / "run", free_port(), **settings)
    (tmp_path / "prom").mkdir(exist_ok=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "prom")
    return env


class Program:
    """A program started with ``python ARGS`` whose JSON lines are read as they come."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.records: list[dict[str, Any]] = []

    def wait_for(self, event: str, timeout: float = 10.0) -> dict[str, Any]:
        """Read lines until one has ``event``; return that record."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.records.append(json.loads(line))
            if self.records[-1].get("event") == event:
                return self.records[-1]
        pytest.fail(f"no {event} line; got {self.records}")

    def finish(self, timeout: float = 10.0) -> tuple[int, str]:
        """Wait for exit; return ``(exit code, stderr)``, reading the rest of stdout.

        Through the same buffered streams :meth:`wait_for` reads:
        ``communicate()`` would read the raw pipes, and lose the lines that
        ``readline()`` had already read ahead into the buffer.
        """
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        out: list[str] = []
        err: list[str] = []
        readers = [
            threading.Thread(target=lambda: out.append(self.proc.stdout.read()), daemon=True),  # type: ignore[union-attr]
            threading.Thread(target=lambda: err.append(self.proc.stderr.read()), daemon=True),  # type: ignore[union-attr]
        ]
        for reader in readers:
            reader.start()
        self.proc.wait(timeout=timeout)
        for reader in readers:
            reader.join(timeout)
        self.records += [json.loads(line) for line in "".join(out).splitlines()]
        return self.proc.returncode, "".join(err)

    def stop_after(self, event: str, signum: int = signal.SIGTERM) -> int:
        """Wait for a line with ``event``, send ``signum``, wait for the exit; its code.

        The program is killed if anything fails on the way (test clean-up).
        """
        try:
            self.wait_for(event)
            self.proc.send_signal(signum)
            return self.finish()[0]
        finally:
            self.close()

    def stop_after_count(self, event: str, count: int) -> tuple[int, str, float]:
        """After ``count`` lines with ``event``, SIGTERM; ``(code, stderr, seconds to the exit)``.

        The program is killed if anything fails on the way (test clean-up).
        """
        try:
            for _ in range(count):
                self.wait_for(event)
            started = time.monotonic()
            self.proc.send_signal(signal.SIGTERM)
            code, err = self.finish()
            return code, err, time.monotonic() - started
        finally:
            self.close()

    def close(self) -> None:
        """Kill the program if it still runs (test clean-up)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=10)


@pytest.mark.parametrize("module", ["tests.fixtures.sync_worker", "tests.fixtures.async_worker"])
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_worker_stops_at_once_despite_a_long_sleep(
    tmp_path: Path, module: str, signum: signal.Signals
) -> None:
    """A worker waiting 30 s between units of work exits 0 within 1 s of SIGTERM/SIGINT."""
    program = Program(["-m", module], program_env(tmp_path, loop_sleep_seconds="30"))
    try:
        program.wait_for("startup_success")
        time.sleep(0.2)
        started = time.monotonic()
        program.proc.send_signal(signum)
        code, err = program.finish()
        elapsed = time.monotonic() - started
    finally:
        program.close()
    assert code == 0
    assert err == ""
    assert elapsed < 1.0
    events = [r["event"] for r in program.records if r.get("event") not in (None, "greeting")]
    assert events == ["config_loaded", "startup_success", "shutting_down", "shutdown_complete"]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_iteration_in_flight_finishes_before_the_stop(tmp_path: Path, kind: str) -> None:
    """SIGTERM during run_once: the call completes, then the worker stops with exit 0."""
    env = program_env(tmp_path) | write_worker(tmp_path / "pkgs", "slow", WORKERS["slow", kind])
    program = Program(["-m", "slow"], env)
    try:
        program.wait_for("begin")
        program.proc.send_signal(signal.SIGTERM)
        code, err = program.finish()
    finally:
        program.close()
    assert (code, err) == (0, "")
    events = [r.get("event") for r in program.records if r.get("event")]
    assert events == [
        "config_loaded", "startup_success", "begin", "end", "shutting_down", "shutdown_complete"
    ]  # fmt: skip


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_exception_in_run_once_is_logged_counted_and_the_loop_goes_on(
    tmp_path: Path, kind: str
) -> None:
    """run_once raising is an ERROR line with exception_type and stack; iterations continue."""
    env = program_env(tmp_path, loop_sleep_seconds="0.05")
    env |= write_worker(tmp_path / "pkgs", "failing", WORKERS["failing", kind])
    program = Program(["-m", "failing"], env)
    try:
        failure = program.wait_for("iteration_failed")
        time.sleep(0.3)
        program.proc.send_signal(signal.SIGTERM)
        code, _ = program.finish()
    finally:
        program.close()
    assert code == 0
    assert failure["level"] == "ERROR"
    assert failure["exception_type"] == "KeyError"
    assert "first call fails" in failure["stack"]
    from prometheus_client.multiprocess import MultiProcessCollector

    values = {
        s.name: s.value
        for f in MultiProcessCollector(None, path=str(tmp_path / "prom")).collect()
        for s in f.samples
    }
    assert values["app_iteration_errors_total"] == 1
    assert values["app_iterations_total"] > 2


def test_crash_in_the_machinery_exits_1_with_a_crashed_line(tmp_path: Path) -> None:
    """An exception outside run_once: one CRITICAL crashed line with its stack, exit 1."""
    result = subprocess.run(
        [sys.executable, "-c", CRASHING_MAIN],
        cwd=ROOT,
        env=program_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 1
    [*_, record] = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["event"] == "crashed"
    assert record["exception_type"] == "RuntimeError"
    assert "machinery broke" in record["stack"]
    assert result.stderr == ""


@pytest.mark.parametrize(
    "module",
    ["tests.fixtures.sync_worker", "tests.fixtures.async_worker", "services.metrics_exporter"],
)
def test_program_with_bad_config_exits_78(tmp_path: Path, module: str) -> None:
    """Each program refuses bad config on its own: exit 78, one config_invalid line."""
    result = run_module(module, program_env(tmp_path, loop_sleep_seconds="-1"))
    assert result.returncode == 78
    [*_, record] = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["event"] == "config_invalid"
    assert "loop_sleep_seconds (env APP_LOOP_SLEEP_SECONDS)" in record["msg"]


def test_exporter_reports_a_taken_port_clearly(tmp_path: Path) -> None:
    """Port already in use: one crashed line naming host:port, no stack, exit 1."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = program_env(tmp_path, metrics_port=str(port))
        result = run_module("services.metrics_exporter", env)
    assert result.returncode == 1
    [*_, record] = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["msg"] == f"metrics_port 127.0.0.1:{port} is already in use"
    assert record["exception_type"] == "ListenError"
    assert "stack" not in record


def test_exporter_reports_an_unknown_host_clearly(tmp_path: Path) -> None:
    """A metrics_host that does not resolve: one line naming the setting, exit 1."""
    env = program_env(tmp_path, metrics_host="no-such-host.invalid")
    result = run_module("services.metrics_exporter", env)
    assert result.returncode == 1
    [*_, record] = [json.loads(line) for line in result.stdout.splitlines()]
    assert record["msg"].startswith("cannot listen on no-such-host.invalid:")
    assert "(metrics_host, metrics_port)" in record["msg"]


def test_worker_run_alone_keeps_its_metrics_in_a_temporary_directory(tmp_path: Path) -> None:
    """python -m <worker> outside supervisord: metrics in a temp dir, named, removed at exit."""
    env = program_env(tmp_path, loop_sleep_seconds="0.1")
    del env["PROMETHEUS_MULTIPROC_DIR"]
    env.pop("SUPERVISOR_ENABLED", None)
    program = Program(["-m", "tests.fixtures.sync_worker"], env)
    try:
        where = program.wait_for("metrics_dir")["msg"].split()[3]
        program.wait_for("startup_success")
        assert list(Path(where).glob("*.db"))  # the worker writes its metrics there
        program.proc.send_signal(signal.SIGTERM)
        code, err = program.finish()
    finally:
        program.close()
    assert (code, err) == (0, "")
    assert not Path(where).exists()


def test_worker_under_supervisord_without_multiproc_dir_refuses_to_run(tmp_path: Path) -> None:
    """Under supervisord (SUPERVISOR_ENABLED) the directory must be given: clear error, exit 1."""
    env = program_env(tmp_path) | {"SUPERVISOR_ENABLED": "1"}
    del env["PROMETHEUS_MULTIPROC_DIR"]
    result = run_module("tests.fixtures.sync_worker", env)
    assert result.returncode == 1
    [*_, record] = [json.loads(line) for line in result.stdout.splitlines()]
    assert "PROMETHEUS_MULTIPROC_DIR is not set" in record["msg"]


def test_exporter_serves_on_ipv6_loopback(tmp_path: Path) -> None:
    """metrics_host ::1 binds an IPv6 socket; /healthz answers there."""
    port = free_port()
    program = Program(
        ["-m", "services.metrics_exporter"],
        program_env(tmp_path, metrics_host="::1", metrics_port=str(port)),
    )
    try:
        program.wait_for("startup_success")
        status, body = http_get(f"http://[::1]:{port}/healthz")
        program.proc.send_signal(signal.SIGTERM)
        code, _ = program.finish()
    finally:
        program.close()
    assert (status, json.loads(body), code) == (200, {"status": "ok"}, 0)


@pytest.mark.parametrize("program", conftest.WORKERS)  # supervisord.conf's: shipped, or yours
def test_each_worker_starts_from_its_main_and_stops_with_exit_0(
    tmp_path: Path, program: str
) -> None:
    """``python -m services.<name>``, as supervisord runs it: started, a stop ends it with 0."""
    env = program_env(tmp_path, loop_sleep_seconds="0.2")
    assert Program(["-m", f"services.{program}"], env).stop_after("startup_success") == 0
