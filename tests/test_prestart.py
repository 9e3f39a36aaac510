"""prestart: set-up commands run by the real app-entrypoint, in order, before supervisord."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from common.procfs import alive
from tests.conftest import BIN, Stack, base_env, fixture_dir, free_port, run_command

pytestmark = pytest.mark.stack  # make test-quick leaves these out

READ_SETTINGS = (
    "python -c 'from common.config import load_settings;"
    ' print("workers", *load_settings().workers)\''
)


def records(stdout: str) -> list[dict[str, Any]]:
    """Every stdout line as JSON (fails on a line that is not)."""
    return [json.loads(line) for line in stdout.splitlines()]


def entrypoint(
    tmp_path: Path, prestart: list[str], **settings: str
) -> subprocess.CompletedProcess[str]:
    """Run app-entrypoint (test workers) with ``prestart`` in its config file, to its exit."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    env = base_env(tmp_path / "run", free_port(), **settings)
    Path(env["APP_CONFIG_PATH"]).write_text(json.dumps({"prestart": prestart}))
    return run_command([str(BIN / "app-entrypoint")], env, cwd=fixture_dir(tmp_path))


def test_steps_run_in_order_as_json_lines_then_the_programs_start(tmp_path: Path) -> None:
    """Each step's output becomes JSON lines (log records pass through); then supervisord starts."""
    config = tmp_path / "config.yml"
    config.write_text(
        json.dumps(
            {
                "prestart": [
                    "sh -c 'echo plain; echo oops >&2; cat record.json nan.json'",
                    READ_SETTINGS,
                ]
            }
        )
    )
    workdir = fixture_dir(tmp_path / "stack")  # the steps' working directory
    (workdir / "record.json").write_text('{"ts": "t", "level": "INFO", "msg": "mine"}\n')
    (workdir / "nan.json").write_text('{"ts": "t", "level": "INFO", "msg": NaN}\n')
    settings = {"loop_sleep_seconds": "0.2", "config_path": str(config)}
    stack = Stack(tmp_path / "stack", settings, cwd=workdir)
    try:
        stack.wait_ready()
        stack.stop()
    finally:
        stack.kill()
    lines = stack.records()
    events = [r.get("event") for r in lines]
    first_program = min(i for i, r in enumerate(lines) if r.get("program") == "sync_worker")
    assert events.index("prestart_finished") < first_program
    output = [r for r in lines if r.get("event") == "prestart_output"]
    assert sorted((r["step"], r["stream"], r["msg"]) for r in output) == [  # 2 pipes: any order
        (1, "stderr", "oops"),
        (1, "stdout", "plain"),
        (1, "stdout", '{"ts": "t", "level": "INFO", "msg": NaN}'),  # not strict JSON: wrapped
        (2, "stdout", "workers sync_worker async_worker"),  # read from the resolved snapshot
    ]
    assert {"ts": "t", "level": "INFO", "msg": "mine"} in lines  # a log record passes through
    assert [r["step"] for r in lines if r.get("event") == "prestart_finished"] == [1, 2]
    assert stack.proc.returncode == 0


def test_the_first_failing_step_stops_everything_with_its_code(tmp_path: Path) -> None:
    """Step 2 exits 3: one prestart_failed line naming it, exit 3; step 3, supervisord never run."""
    result = entrypoint(tmp_path, ["true", "sh -c 'exit 3'", "touch never"])
    assert result.returncode == 3, result.stdout
    lines = records(result.stdout)
    [failed] = [r for r in lines if r.get("event") == "prestart_failed"]
    assert (failed["step"], failed["command"], failed["code"], failed["level"]) == (
        2, "sh -c 'exit 3'", 3, "ERROR",
    )  # fmt: skip
    assert lines[-1] == failed
    assert not (tmp_path / "app" / "never").exists()
    assert not (tmp_path / "run" / "supervisord.pid").exists()


def test_a_step_that_times_out_or_cannot_run_fails_like_timeout_and_a_shell(
    tmp_path: Path,
) -> None:
    """A step over prestart_timeout_seconds exits 124; a missing command 127."""
    started = time.monotonic()
    slow = entrypoint(tmp_path / "slow", ["sleep 30"], prestart_timeout_seconds="0.5")
    assert time.monotonic() - started < 5
    assert slow.returncode == 124, slow.stdout
    [failed] = [r for r in records(slow.stdout) if r.get("event") == "prestart_failed"]
    assert failed["timed_out"] is True
    assert "timed out after 0.5 s" in failed["msg"]
    missing = entrypoint(tmp_path / "missing", ["no-such-command-here --flag"])
    assert missing.returncode == 127, missing.stdout


def test_a_stop_signal_during_a_step_stops_it_and_exits_0(tmp_path: Path) -> None:
    """SIGTERM while a step runs: the step's process group gets it, app-entrypoint exits 0."""
    env = base_env(tmp_path / "run", free_port())
    Path(env["APP_CONFIG_PATH"]).write_text(json.dumps({"prestart": ["sh -c 'echo $$; sleep 30'"]}))
    proc = subprocess.Popen(
        [str(BIN / "app-entrypoint")], cwd=fixture_dir(tmp_path), env=env,
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        step_pid = 0
        for line in proc.stdout:
            record = json.loads(line)
            if record.get("event") == "prestart_output":
                step_pid = int(record["msg"])
                break
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=10)
        elapsed = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert elapsed < 2
    assert not alive(step_pid)
    assert records(rest)[-1]["event"] == "prestart_stopped"


def test_a_command_that_does_not_split_is_a_config_error(tmp_path: Path) -> None:
    """An unbalanced quote in APP_PRESTART: exit 78 naming the key and the command, nothing runs."""
    env = base_env(tmp_path / "run", free_port(), prestart="true\n# a comment\nsh -c 'echo")
    result = run_command([str(BIN / "app-entrypoint")], env, cwd=fixture_dir(tmp_path))
    assert result.returncode == 78
    [problem] = records(result.stdout)[-1]["problems"]
    assert problem.startswith(
        "prestart (env APP_PRESTART): line 3 does not split into words (No closing quotation)"
    )


def test_a_step_that_leaves_a_process_behind_does_not_hold_up_the_start(tmp_path: Path) -> None:
    """A step whose background child keeps the output open: killed 1 s after the step exits."""
    started = time.monotonic()
    result = entrypoint(
        tmp_path, ["sh -c 'sleep 30 & echo $!'", "sh -c 'exit 5'"], prestart_timeout_seconds="20"
    )
    assert time.monotonic() - started < 8
    assert result.returncode == 5, result.stdout
    lines = records(result.stdout)
    [left] = [r for r in lines if r.get("event") == "prestart_leftovers"]
    assert left["step"] == 1
    [pid] = [int(r["msg"]) for r in lines if r.get("event") == "prestart_output"]
    assert not alive(pid)
