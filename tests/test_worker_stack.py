"""Workers under the real entrypoint and supervisord: sections checked first, snapshot, stops."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import BIN, Stack, base_env, fixture_conf, free_port, http_get

pytestmark = pytest.mark.stack  # make test-quick leaves these out


def entrypoint(tmp_path: Path, yaml_text: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Run app-entrypoint with the test workers' supervisord.conf until it exits."""
    workdir = tmp_path / "app"
    workdir.mkdir()
    (workdir / "supervisord.conf").write_text(fixture_conf())
    environ = base_env(tmp_path / "run", free_port()) | env
    Path(environ["APP_CONFIG_PATH"]).write_text(yaml_text)
    return subprocess.run(
        [str(BIN / "app-entrypoint")], cwd=workdir, env=environ, capture_output=True,
        text=True, timeout=30, check=False,
    )  # fmt: skip


def test_every_programs_section_is_checked_before_anything_starts(tmp_path: Path) -> None:
    """Problems in two programs' sections and the environment: one line, exit 78, nothing run."""
    secret = tmp_path / "token"
    result = entrypoint(
        tmp_path,
        "programs:\n  sync_worker:\n    limit: 11\n    greting: hi\n  async_workr: {}\n",
        APP_ASYNC_WORKER__LOOP_SLEEP_SECONDS="0",
        APP_SYNC_WORKER__TOKEN_FILE=str(secret),
    )
    assert result.returncode == 78, result.stdout
    [*_, line] = result.stdout.splitlines()
    record = json.loads(line)
    assert (record["event"], record["program"]) == ("config_invalid", "entrypoint")
    problems = sorted(record["problems"])
    assert len(problems) == 5, problems
    assert problems[0].startswith("programs.async_worker.loop_sleep_seconds (env APP_ASYNC_WORKER")
    assert problems[1].startswith("programs.async_workr (")
    assert problems[1].endswith("did you mean 'async_worker'?")
    assert problems[2].endswith("unknown key; did you mean 'greeting'?")
    assert "expected an integer in 1..10, got 11" in problems[3]
    assert problems[4].startswith(
        "programs.sync_worker.token (env APP_SYNC_WORKER__TOKEN_FILE): cannot read the file"
    )
    assert not (tmp_path / "run").exists()


def test_restarted_programs_keep_the_settings_the_container_started_with(
    start_stack: Callable[..., Stack], tmp_path: Path
) -> None:
    """A config file edited while running does not reach a restarted worker (the snapshot)."""
    config = tmp_path / "config.yml"
    config.write_text("programs:\n  sync_worker:\n    greeting: first\n")
    stack = start_stack(extra_env={"APP_CONFIG_PATH": str(config)}, loop_sleep_seconds="0.2")
    stack.wait_ready()
    config.write_text("programs:\n  sync_worker:\n    greting: second\n")  # and a typo
    os.kill(stack.pid_of("sync_worker"), signal.SIGKILL)

    def greeted_twice() -> bool:
        return len([r for r in stack.records() if r.get("event") == "greeting"]) == 2

    stack.wait_until(greeted_twice, 15, "the restarted worker's greeting")
    greetings = [r["msg"] for r in stack.records() if r.get("event") == "greeting"]
    assert greetings == ["greeting first", "greeting first"]
    snapshot = stack.runtime_dir / "settings.json"
    assert oct(snapshot.stat().st_mode & 0o777) == "0o600"


def test_per_program_settings_reach_readiness(start_stack: Callable[..., Stack]) -> None:
    """Each worker is judged with its own health_max_age_seconds, reported in /readyz."""
    stack = start_stack(
        loop_sleep_seconds="0.2",
        sync_worker__health_max_age_seconds="7",
        async_worker__loop_sleep_seconds="0.1",
    )
    stack.wait_ready()
    report = json.loads(http_get(stack.url("/readyz"))[1])
    assert report["programs"]["sync_worker"]["max_age_seconds"] == 7
    assert report["programs"]["async_worker"]["max_age_seconds"] == 30


def test_a_worker_that_ignores_the_stop_is_killed_and_named(tmp_path: Path) -> None:
    """A run_once that never returns: SIGKILL after stopwaitsecs, one stop_timeout line."""
    workdir = tmp_path / "app"
    workdir.mkdir()
    conf = re.sub(r"stopwaitsecs=\d+", "stopwaitsecs=1", fixture_conf())
    (workdir / "supervisord.conf").write_text(conf)
    stack = Stack(tmp_path / "stack", {"loop_sleep_seconds": "0.2"}, cwd=workdir)
    try:
        stack.wait_ready()
        (stack.runtime_dir / "hang-sync_worker").write_text("")
        stack.wait_until(
            lambda: any(r.get("event") == "hanging" for r in stack.records()), 10, "hanging"
        )
        elapsed = stack.stop()
    finally:
        stack.kill()
    assert stack.proc.returncode == 0
    assert 1.0 <= elapsed < 3.0
    [line] = [r for r in stack.records() if r.get("event") == "stop_timeout"]
    assert (line["stopped_program"], line["stopwaitsecs"], line["level"]) == (
        "sync_worker", 1, "ERROR",
    )  # fmt: skip
    assert "supervisord kills it with SIGKILL" in line["msg"]
    assert stack.leftovers() == []


def test_a_mistyped_worker_module_is_refused_before_start(tmp_path: Path) -> None:
    """command=python -m tests.fixtures.sync_workr: exit 78 naming it, not a crash loop."""
    workdir = tmp_path / "app"
    workdir.mkdir()
    conf = fixture_conf().replace("tests.fixtures.sync_worker", "tests.fixtures.sync_workr")
    (workdir / "supervisord.conf").write_text(conf)
    result = subprocess.run(
        [str(BIN / "app-entrypoint")], cwd=workdir, env=base_env(tmp_path / "run", free_port()),
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 78
    record = json.loads(result.stdout.splitlines()[-1])
    assert record["problems"] == [
        "[program:sync_worker] command (supervisord.conf): python -m tests.fixtures.sync_workr:"
        " no such module; did you mean 'tests.fixtures.sync_worker'?"
    ]


def test_every_byte_a_worker_writes_past_logging_arrives_as_json(tmp_path: Path) -> None:
    """A child's output, raw fd 1/2 writes, sys.stdout.buffer/fileno(), faulthandler: JSON lines."""
    stack = Stack(tmp_path / "stack", {"loop_sleep_seconds": "0.2", "workers": "sync_worker"})
    try:
        stack.wait_ready()
        (stack.runtime_dir / "raw-sync_worker").write_text("")
        wanted = ("child-out", "child-err", "child-via-sys-stdout", "raw-fd1", "raw-fd2",
                  "buffer-bytes \u00e9", "printed False utf-8", "tail-without-newline")  # fmt: skip

        def lines() -> set[str]:  # a record may hold several lines, never part of one
            return {line for r in stack.records() for line in str(r.get("msg")).split("\n")}

        def arrived() -> bool:
            texts = lines()
            return all(w in texts for w in wanted) and any("in write_raw" in t for t in texts)

        stack.wait_until(arrived, 15, "every raw write as a record")
        stack.stop()
    finally:
        stack.kill()
    records = stack.records()  # every line parsed as JSON, or the test fails here
    by_line = {line: r for r in records for line in str(r.get("msg")).split("\n")}
    assert all(by_line[w]["program"] == "sync_worker" for w in wanted)
    assert by_line["child-out"]["logger"] == "stderr"  # fd 1 of the child: the raw channel
    assert by_line["printed False utf-8"]["logger"] == "stdout"  # print(): a log record
    assert isinstance(by_line["raw-fd2"]["pid"], int)
    assert not [r for r in records if r.get("event") == "iteration_failed"]
    assert stack.proc.returncode == 0


def test_what_a_dying_worker_wrote_last_arrives(tmp_path: Path) -> None:
    """A partial line written to fd 2 right before os._exit arrives as one JSON record."""
    stack = Stack(tmp_path / "stack", {"loop_sleep_seconds": "0.2", "workers": "sync_worker"})
    try:
        stack.wait_ready()
        (stack.runtime_dir / "die-sync_worker").write_text("")
        stack.wait_until(
            lambda: any(r.get("msg") == "last words, no newline" for r in stack.records()),
            10,
            "the last words",
        )
        stack.stop()
    finally:
        stack.kill()
    [last] = [r for r in stack.records() if r.get("msg") == "last words, no newline"]
    assert (last["program"], last["event"]) == ("sync_worker", "stderr")


def test_a_fatal_signal_names_itself_and_the_stack_as_json(tmp_path: Path) -> None:
    """SIGSEGV to a worker: faulthandler's dump arrives as JSON records of that program."""
    stack = Stack(tmp_path / "stack", {"loop_sleep_seconds": "0.2", "workers": "sync_worker"})
    try:
        stack.wait_ready()
        pid = stack.pid_of("sync_worker")
        os.kill(pid, signal.SIGSEGV)

        def dump() -> list[dict[str, object]]:
            return [r for r in stack.records() if "Fatal Python error" in str(r.get("msg"))]

        stack.wait_until(lambda: bool(dump()), 10, "faulthandler's dump")
        stack.wait_until(lambda: stack.pid_of("sync_worker") != pid, 10, "the restart")
        stack.stop()
    finally:
        stack.kill()
    records = stack.records()  # every line parsed as JSON, or the test fails here
    dumped = "\n".join(str(r["msg"]) for r in records if r.get("pid") == pid)
    assert "Fatal Python error: Segmentation fault" in dumped
    assert "most recent call first" in dumped
    assert {r["program"] for r in dump()} == {"sync_worker"}
