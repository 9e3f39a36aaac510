"""The worker contract (common/worker.py): both shapes, sync and async, lifespan, ctx."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from tests.conftest import run_module, write_worker
from tests.test_lifecycle import Program, program_env

pytestmark = pytest.mark.stack  # make test-quick leaves these out

SETTINGS = """
from dataclasses import dataclass
from common.settings import Secret

@dataclass(frozen=True)
class Settings:
    greeting: str = "hello"
    token: Secret = Secret("")
"""
LIFESPAN = {
    "sync": """
import contextlib, logging
log = logging.getLogger("test")

@contextlib.contextmanager
def lifespan(ctx):
    log.info("enter", extra={"event": "lifespan_enter"})
    try:
        yield {"opened": ctx.settings.greeting}
    finally:
        log.info("exit", extra={"event": "lifespan_exit"})
""",
    "async": """
import contextlib, logging
log = logging.getLogger("test")

@contextlib.asynccontextmanager
async def lifespan(ctx):
    log.info("enter", extra={"event": "lifespan_enter"})
    try:
        yield {"opened": ctx.settings.greeting}
    finally:
        log.info("exit", extra={"event": "lifespan_exit"})
""",
}
REPORT = """
def report(ctx):
    log.info("work", extra={"event": "work", "program_name": ctx.program,
        "state": ctx.state, "greeting": ctx.settings.greeting,
        "token": ctx.settings.token.reveal(), "loop": ctx.loop_sleep_seconds,
        "shared_env": ctx.shared.env, "logger_name": ctx.log.name})
"""
WORK = {
    ("periodic", "sync"): "def run_once(ctx):\n    report(ctx)\n",
    ("periodic", "async"): "async def run_once(ctx):\n    report(ctx)\n",
    ("long-running", "sync"): """
def serve(ctx):
    while not ctx.stop.is_set():
        with ctx.work():
            report(ctx)
        ctx.stop.wait(ctx.loop_sleep_seconds)
""",
    ("long-running", "async"): """
import asyncio
async def serve(ctx):
    while not ctx.stop.is_set():
        with ctx.work():
            report(ctx)
        try:
            await asyncio.wait_for(ctx.stop.wait(), ctx.loop_sleep_seconds)
        except TimeoutError:
            pass
""",
}
SHAPES = [(shape, kind) for shape in ("periodic", "long-running") for kind in ("sync", "async")]


def start(tmp_path: Path, worker: str, settings: str | None = SETTINGS, **env: str) -> Program:
    """Run the worker package ``w`` made of ``worker`` (and ``settings``) alone.

    ``env`` holds settings: ``w__greeting="x"`` is ``APP_W__GREETING=x``.
    """
    environ = program_env(tmp_path, loop_sleep_seconds="0.05", **env)
    environ |= write_worker(tmp_path / "pkgs", "w", worker, settings)
    return Program(["-m", "w"], environ)


def metrics(tmp_path: Path) -> dict[str, float]:
    """``{sample name: value}`` of every metric file the program wrote."""
    collector = MultiProcessCollector(None, path=str(tmp_path / "prom"))
    return {s.name: s.value for family in collector.collect() for s in family.samples}


def events(program: Program) -> list[str]:
    """The ``event`` of every record, in order, with repeats of "work" collapsed."""
    found: list[str] = []
    for record in program.records:
        event = record.get("event")
        if event and not (event == "work" and found and found[-1] == "work"):
            found.append(event)
    return found


@pytest.mark.parametrize(("shape", "kind"), SHAPES)
def test_each_shape_gets_its_context_and_lifespan_in_order(
    tmp_path: Path, shape: str, kind: str
) -> None:
    """Lifespan enters before the first call and exits after the last; ctx holds it all."""
    source = LIFESPAN[kind] + REPORT + WORK[shape, kind]
    program = start(
        tmp_path,
        source,
        w__greeting="bonjour",
        w__token="t0k",
        w__loop_sleep_seconds="0.02",
        env="ci",
    )
    try:
        work = program.wait_for("work")
        time.sleep(0.2)
        program.proc.send_signal(signal.SIGTERM)
        code, err = program.finish()
    finally:
        program.close()
    assert (code, err) == (0, "")
    assert events(program) == [
        "config_loaded", "lifespan_enter", "startup_success", "work",
        "shutting_down", "lifespan_exit", "shutdown_complete",
    ]  # fmt: skip
    assert work["program_name"] == "w"
    assert work["state"] == {"opened": "bonjour"}
    assert (work["greeting"], work["token"], work["loop"]) == ("bonjour", "t0k", 0.02)
    assert (work["shared_env"], work["logger_name"]) == ("ci", "w")
    loaded = program.records[0]["settings"]["programs"]["w"]
    assert loaded["token"] == {"value": "<redacted>", "source": "env APP_W__TOKEN"}
    values = metrics(tmp_path)
    assert values["app_iterations_total"] >= 3
    has_heartbeat = "app_last_heartbeat_timestamp_seconds" in values
    assert has_heartbeat == (shape == "long-running")  # the freshness readiness judges


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_serve_that_raises_exits_1_after_its_lifespan_exits(tmp_path: Path, kind: str) -> None:
    """A crash in serve: lifespan exit runs, then one crashed line, exit 1, app_up 0."""
    prefix = "async " if kind == "async" else ""
    source = LIFESPAN[kind] + f"{prefix}def serve(ctx):\n    raise ConnectionError('lost')\n"
    program = start(tmp_path, source)
    try:
        code, _ = program.finish()
    finally:
        program.close()
    assert code == 1
    assert events(program) == ["config_loaded", "lifespan_enter", "startup_success",
                               "lifespan_exit", "crashed"]  # fmt: skip
    crashed = program.records[-1]
    assert crashed["exception_type"] == "ConnectionError"
    assert "lost" in crashed["stack"]
    assert metrics(tmp_path)["app_up"] == 0


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_lifespan_that_fails_to_enter_exits_1_before_any_work(tmp_path: Path, kind: str) -> None:
    """An exception while entering the lifespan is a crash with its stack; no startup_success."""
    decorator, prefix = (
        ("asynccontextmanager", "async ") if kind == "async" else ("contextmanager", "")
    )
    source = f"""
import contextlib
@contextlib.{decorator}
{prefix}def lifespan(ctx):
    raise OSError("database unreachable")
    yield
{prefix}def run_once(ctx):
    raise AssertionError("never called")
"""
    program = start(tmp_path, source)
    try:
        code, _ = program.finish()
    finally:
        program.close()
    assert code == 1
    assert events(program) == ["config_loaded", "crashed"]
    assert program.records[-1]["exception_type"] == "OSError"
    assert "database unreachable" in program.records[-1]["stack"]


def test_serve_that_returns_before_a_stop_says_so_and_exits_0(tmp_path: Path) -> None:
    """A serve returning on its own: a serve_returned warning; supervisord restarts it."""
    program = start(tmp_path, "def serve(ctx):\n    return None\n", settings=None)
    try:
        code, _ = program.finish()
    finally:
        program.close()
    assert code == 0
    warning = next(r for r in program.records if r.get("event") == "serve_returned")
    assert warning["level"] == "WARNING"
    assert events(program)[-2:] == ["shutting_down", "shutdown_complete"]


def test_async_serve_that_ignores_the_stop_is_cancelled_after_one_second(tmp_path: Path) -> None:
    """serve never looks at ctx.stop: cancelled 1 s after SIGTERM, its finally runs, exit 0."""
    source = """
import asyncio, logging
async def serve(ctx):
    ctx.heartbeat()
    try:
        await asyncio.sleep(3600)
    finally:
        logging.getLogger("test").info("cleanup", extra={"event": "cleanup"})
"""
    program = start(tmp_path, source, settings=None)
    try:
        program.wait_for("startup_success")
        started = time.monotonic()
        program.proc.send_signal(signal.SIGTERM)
        code, _ = program.finish()
        elapsed = time.monotonic() - started
    finally:
        program.close()
    assert code == 0
    assert 0.9 < elapsed < 2.0
    assert events(program)[-4:] == [
        "serve_cancelled", "cleanup", "shutting_down", "shutdown_complete"
    ]  # fmt: skip


def test_units_of_work_are_counted_and_their_errors_re_raised(tmp_path: Path) -> None:
    """ctx.work(): each unit counted and timed; an exception counted as an error and raised."""
    source = """
def serve(ctx):
    for n in range(5):
        with ctx.work():
            pass
    with ctx.work():
        raise ValueError("bad message")
"""
    program = start(tmp_path, source, settings=None)
    try:
        code, _ = program.finish()
    finally:
        program.close()
    assert code == 1
    values = metrics(tmp_path)
    assert values["app_iterations_total"] == 6
    assert values["app_iteration_errors_total"] == 1
    assert values["app_iteration_duration_seconds_count"] == 6
    assert values["app_last_heartbeat_timestamp_seconds"] > time.time() - 60


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def run_once(ctx): pass\ndef serve(ctx): pass\n", "exactly one of run_once"),
        ("x = 1\n", "exactly one of run_once(ctx) or serve(ctx)"),
        (
            "import contextlib\n@contextlib.asynccontextmanager\nasync def lifespan(ctx):\n"
            "    yield\ndef run_once(ctx): pass\n",
            "lifespan of a blocking worker must be a @contextmanager",
        ),
    ],
)
def test_a_worker_module_of_no_known_shape_is_refused(
    tmp_path: Path, source: str, message: str
) -> None:
    """Both or neither of run_once/serve, or an async lifespan for blocking code: exit 1."""
    environ = program_env(tmp_path) | write_worker(tmp_path / "pkgs", "w", source)
    result = run_module("w", environ)
    assert result.returncode == 1
    record: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    assert record["event"] == "crashed"
    assert message in record["msg"]
    assert "stack" not in record  # a FatalError: the message says it all


def test_console_log_format_is_readable_and_keeps_stdout_a_terminal(tmp_path: Path) -> None:
    """log_format: console writes 'time level program logger: msg key=value' lines."""
    program = start(
        tmp_path, "def run_once(ctx):\n    print('plain print')\n", settings=None,
        log_format="console",
    )  # fmt: skip
    assert program.proc.stdout is not None
    lines = [program.proc.stdout.readline() for _ in range(3)]
    program.proc.send_signal(signal.SIGTERM)
    program.proc.communicate(timeout=10)
    program.close()
    loaded = next(line for line in lines if "config_loaded" in line)
    assert "settings: service_name=app, " in loaded
    assert "log_format=console (env APP_LOG_FORMAT)" in loaded
    started = next(line for line in lines if "startup_success" in line)
    assert " INFO    w lifecycle: w started event=startup_success" in started
    assert "plain print\n" in lines  # print() reaches the terminal as it is (breakpoint() works)


def test_console_format_applies_to_a_config_error_too(tmp_path: Path) -> None:
    """APP_LOG_FORMAT=console: even the config_invalid line, before settings load, is readable."""
    environ = program_env(tmp_path, log_format="console", w__nope="1")
    environ |= write_worker(tmp_path / "pkgs", "w", "def run_once(ctx):\n    pass\n")
    result = run_module("w", environ)
    assert result.returncode == 78
    [line] = result.stdout.splitlines()
    assert " ERROR   w program: invalid configuration: programs.w.nope (env APP_W__NOPE)" in line
    assert "event=config_invalid" in line


@pytest.mark.parametrize(
    ("body", "exception_type"),
    [
        ("import sys\n    sys.exit(3)", "SystemExit"),
        ("raise KeyboardInterrupt", "KeyboardInterrupt"),
    ],
)
def test_an_exit_or_interrupt_raised_by_the_work_is_a_crash(
    tmp_path: Path, body: str, exception_type: str
) -> None:
    """Regression: SystemExit/KeyboardInterrupt escaped: exit 3 or -2, a traceback in pieces."""
    program = start(tmp_path, f"def serve(ctx):\n    {body}\n", settings=None)
    try:
        code, err = program.finish()
    finally:
        program.close()
    assert (code, err) == (1, "")
    crashed = program.records[-1]
    assert (crashed["event"], crashed["exception_type"]) == ("crashed", exception_type)
    assert not [r for r in program.records if r["logger"] == "stderr"]


def test_every_thread_waiting_on_the_stop_sees_it(tmp_path: Path) -> None:
    """Regression: a thread in ctx.stop.wait() could drain the wakeup byte and hang another."""
    source = """
import threading
def serve(ctx):
    seen = []
    def waiter():
        ctx.stop.wait()
        seen.append(1)
    threads = [threading.Thread(target=waiter) for _ in range(8)]
    for thread in threads:
        thread.start()
    ctx.heartbeat()
    ctx.stop.wait()
    for thread in threads:
        thread.join(2)
    ctx.log.info("seen by %d", len(seen), extra={"event": "seen", "count": len(seen)})
"""
    for _ in range(5):
        program = start(tmp_path, source, settings=None)
        try:
            program.wait_for("startup_success")
            time.sleep(0.1)
            program.proc.send_signal(signal.SIGTERM)
            code, _ = program.finish(timeout=5)
        finally:
            program.close()
        assert code == 0
        assert next(r for r in program.records if r.get("event") == "seen")["count"] == 8


@pytest.mark.parametrize(
    "serve",
    [
        "    with ctx.work():\n        await asyncio.to_thread(time.sleep, 30)",
        "    while True:\n        try:\n            await asyncio.sleep(30)\n"
        "        except asyncio.CancelledError:\n            pass",
    ],
    ids=["thread-in-executor", "swallows-cancellation"],
)
def test_a_serve_that_cannot_end_does_not_keep_the_process(tmp_path: Path, serve: str) -> None:
    """Regression: an executor thread or a swallowed cancel kept the process alive forever."""
    source = f"import asyncio, time\nasync def serve(ctx):\n    ctx.heartbeat()\n{serve}\n"
    program = start(tmp_path, source, settings=None)
    try:
        program.wait_for("startup_success")
        started = time.monotonic()
        program.proc.send_signal(signal.SIGTERM)
        code, _ = program.finish(timeout=10)
        elapsed = time.monotonic() - started
    finally:
        program.close()
    assert code == 0
    assert elapsed < 6.0
    found = events(program)
    assert found.index("shutdown_complete") < found.index("exit_forced")
    assert metrics(tmp_path).get("app_iteration_errors_total", 0) == 0  # a cancel is no error


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def run_once(ctx):\n    yield\n", "is a generator: use return, not yield"),
        ("async def serve(ctx):\n    yield\n", "is a generator"),
        ("async def f(ctx): pass\ndef run_once(ctx):\n    return f(ctx)\n", "make it async def"),
    ],
)
def test_work_that_would_never_run_is_refused(tmp_path: Path, source: str, message: str) -> None:
    """Regression: a generator or an un-awaited coroutine looked like healthy work."""
    environ = program_env(tmp_path) | write_worker(tmp_path / "pkgs", "w", source)
    result = run_module("w", environ)
    assert result.returncode == 1
    record = json.loads(result.stdout.splitlines()[-1])
    assert record["event"] == "crashed"
    assert message in record["msg"]


def test_an_object_with_an_async_call_is_awaited(tmp_path: Path) -> None:
    """run_once = Job() with ``async def __call__`` runs as an async worker."""
    source = """
class Job:
    async def __call__(self, ctx):
        ctx.log.info("ran", extra={"event": "ran"})
run_once = Job()
"""
    program = start(tmp_path, source, settings=None)
    code = program.stop_after("ran")
    assert code == 0


def test_a_stop_while_the_worker_imports_is_kept(tmp_path: Path) -> None:
    """Regression: SIGTERM during a slow import killed the program by the signal, no line."""
    program = start(tmp_path, "import time\ntime.sleep(1)\ndef run_once(ctx): pass\n", None)
    code = program.stop_after("config_loaded")
    assert code == 0
    assert events(program)[-3:] == ["startup_success", "shutting_down", "shutdown_complete"]


@pytest.mark.parametrize("module", ["tests.fixtures.sync_worker", "tests.fixtures.async_worker"])
def test_a_second_stop_signal_during_the_exit_changes_nothing(tmp_path: Path, module: str) -> None:
    """Regression: a second SIGTERM in teardown (PID 1 re-sends one) ended the process by it."""
    for _ in range(4):
        program = Program(["-m", module], program_env(tmp_path, loop_sleep_seconds="0.05"))
        try:
            program.wait_for("startup_success")
            program.proc.send_signal(signal.SIGTERM)
            time.sleep(0.01)
            program.proc.send_signal(signal.SIGTERM)
            code, _ = program.finish()
        finally:
            program.close()
        assert code == 0
