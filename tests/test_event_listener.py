"""The event listener: supervisord's protocol on stdin/stdout, raw stderr out as JSON."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from common.config import Settings, load_settings
from services.event_listener import protocol
from services.event_listener.__main__ import StopRequested
from services.event_listener.listener import Handler, serve
from tests.conftest import ROOT, base_env, free_port


def envelope(eventname: str, payload: str, serial: int = 1) -> str:
    """One event as supervisord sends it (supervisor docs, "Event Listener Notification")."""
    header = (
        f"ver:3.0 server:supervisor serial:{serial} pool:event_listener poolserial:{serial} "
        f"eventname:{eventname} len:{len(payload)}\n"
    )
    return header + payload


def stderr_event(program: str, pid: int, data: str, serial: int = 1) -> str:
    """A PROCESS_LOG_STDERR event carrying ``data``."""
    body = f"processname:{program} groupname:app pid:{pid} channel:stderr\n{data}"
    return envelope("PROCESS_LOG_STDERR", body, serial)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Default settings (an empty config file)."""
    empty = tmp_path / "c.yml"
    empty.write_text("")
    return load_settings({"APP_CONFIG_PATH": str(empty), "APP_INSTANCE": "host-1"})


def test_raw_stderr_becomes_a_json_record(
    settings: Settings, capfd: pytest.CaptureFixture[str]
) -> None:
    """Text a program wrote to fd 2 (a traceback, say) is one JSON line naming the program."""
    text = 'Traceback (most recent call last):\n  File "x.py", line 1\nSyntaxError: ünïcode\n'
    stdin = io.StringIO(stderr_event("sync_worker", 4242, text))
    stdout = io.StringIO()
    serve(stdin, stdout, Handler(settings, None))
    assert stdout.getvalue() == "READY\nRESULT 2\nOKREADY\n"
    out, err = capfd.readouterr()
    assert out == ""
    [record] = [json.loads(line) for line in err.splitlines()]
    assert record["program"] == "sync_worker"
    assert record["pid"] == 4242
    assert record["logger"] == "stderr"
    assert record["event"] == "stderr"
    assert record["level"] == "ERROR"
    assert record["instance"] == "host-1"
    assert record["msg"] == text.rstrip("\n")


def test_a_failing_handler_still_acknowledges_every_event(settings: Settings) -> None:
    """An exception while handling is logged and the event is still answered OK."""
    stdin = io.StringIO(
        stderr_event("a", 1, "first\n", serial=1) + stderr_event("b", 2, "second\n", serial=2)
    )
    stdout = io.StringIO()
    seen: list[str] = []

    def handler(headers: dict[str, str], payload: str) -> None:
        seen.append(headers["serial"])
        if headers["serial"] == "1":
            raise RuntimeError("handler bug")

    serve(stdin, stdout, handler)
    assert seen == ["1", "2"]
    assert stdout.getvalue() == "READY\nRESULT 2\nOKREADY\nRESULT 2\nOKREADY\n"


def test_huge_stderr_output_is_split_into_joinable_lines(
    settings: Settings, capfd: pytest.CaptureFixture[str]
) -> None:
    """100 KB written to fd 2 arrives as parts of at most 4096 bytes that join back."""
    text = "x" * 100_000
    serve(io.StringIO(stderr_event("w", 1, text)), io.StringIO(), Handler(settings, None))
    lines = capfd.readouterr().err.encode().splitlines()
    assert all(len(line) < 4096 for line in lines)
    parts = [json.loads(line) for line in lines]
    assert [p["part"] for p in parts] == list(range(1, len(parts) + 1))
    assert json.loads("".join(p["chunk"] for p in parts))["msg"] == text


def state_event(to_state: str, body: str, serial: int = 1) -> str:
    """A PROCESS_STATE_<to_state> event with ``body`` as its header line."""
    return envelope(f"PROCESS_STATE_{to_state}", body, serial)


def test_every_state_change_is_one_json_line(
    settings: Settings, capfd: pytest.CaptureFixture[str]
) -> None:
    """RUNNING and an unexpected EXITED each give a process_state line; exits are counted."""
    events = state_event(
        "RUNNING", "processname:sync_worker groupname:app from_state:STARTING pid:7", 1
    ) + state_event(
        "EXITED", "processname:sync_worker groupname:app from_state:RUNNING expected:0 pid:7", 2
    )
    serve(io.StringIO(events), io.StringIO(), Handler(settings, None))
    running, exited = [json.loads(line) for line in capfd.readouterr().err.splitlines()]
    assert running["event"] == "process_state"
    assert (running["program"], running["from_state"], running["to_state"]) == (
        "sync_worker", "STARTING", "RUNNING",
    )  # fmt: skip
    assert running["pid"] == 7
    assert "expected" not in running
    assert exited["to_state"] == "EXITED"
    assert exited["expected"] is False
    assert exited["level"] == "WARNING"
    assert exited["msg"] == "sync_worker: RUNNING -> EXITED"


def test_a_stop_during_handling_is_not_swallowed(settings: Settings) -> None:
    """SIGTERM while an event is handled ends serve(): a stop is no handler failure."""

    def handler(headers: dict[str, str], payload: str) -> None:
        raise StopRequested

    with pytest.raises(StopRequested):
        serve(io.StringIO(stderr_event("a", 1, "x\n")), io.StringIO(), handler)


def test_a_stop_whose_exception_was_lost_still_ends_serve(settings: Settings) -> None:
    """stopping() true after an event (its StopRequested was dropped): acked, then out."""
    handled: list[str] = []
    requested: list[int] = []

    def handler(headers: dict[str, str], payload: str) -> None:
        handled.append(headers["serial"])
        requested.append(15)  # the signal came; its exception never reached serve

    events = stderr_event("a", 1, "x\n", serial=1) + stderr_event("a", 1, "y\n", serial=2)
    stdout = io.StringIO()
    serve(io.StringIO(events), stdout, handler, stopping=lambda: bool(requested))
    assert handled == ["1"]
    assert stdout.getvalue() == "READY\nRESULT 2\nOK"  # acknowledged, no READY after it


def test_a_stop_dropped_as_unraisable_prints_nothing(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The listener's unraisable hook keeps a dropped StopRequested off stderr, not the rest."""
    import gc

    from services.event_listener import __main__ as listener_main

    monkeypatch.setattr(sys, "unraisablehook", listener_main._unraisable)

    class Raises:
        def __init__(self, exc: BaseException) -> None:
            self.exc = exc

        def __del__(self) -> None:
            raise self.exc

    Raises(StopRequested())
    gc.collect()
    assert capfd.readouterr().err == ""
    Raises(KeyError("other"))
    gc.collect()
    assert "KeyError: 'other'" in capfd.readouterr().err


def test_protocol_reads_exactly_one_event_and_acknowledges_it() -> None:
    """READY, one header line, exactly ``len`` characters (non-ASCII counts as one), OK."""
    first = stderr_event("sync_worker", 7, "é: a:b\n", serial=1)
    stdin = io.StringIO(first + envelope("TICK_5", "when:5", serial=2))
    stdout = io.StringIO()
    headers, payload = protocol.wait(stdin, stdout)
    protocol.ok(stdout)
    assert headers["eventname"] == "PROCESS_LOG_STDERR"
    assert protocol.eventdata(payload) == (
        {"processname": "sync_worker", "groupname": "app", "pid": "7", "channel": "stderr"},
        "é: a:b\n",
    )
    headers, payload = protocol.wait(stdin, stdout)
    assert (headers["eventname"], headers["serial"], payload) == ("TICK_5", "2", "when:5")
    assert stdout.getvalue() == "READY\nRESULT 2\nOKREADY\n"


def test_protocol_closed_stdin_is_an_error_not_an_event() -> None:
    """At EOF (supervisord stopping) ``wait`` raises instead of returning an empty event."""
    with pytest.raises(KeyError):
        protocol.wait(io.StringIO(""), io.StringIO())


STOP_DURING_START_UP = """
import os, signal
from common import heap
heap.trim = lambda: os.kill(os.getpid(), signal.SIGTERM)  # a stop between start-up steps
from services.event_listener.__main__ import main
main()
"""


def test_a_stop_during_start_up_is_a_clean_stop(tmp_path: Path) -> None:
    """SIGTERM after the handler is set but before events are read: exit 0, JSON lines only."""
    (tmp_path / "prom").mkdir()
    env = base_env(tmp_path / "run", free_port())
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path / "prom")
    result = subprocess.run(
        [sys.executable, "-c", STOP_DURING_START_UP], cwd=ROOT, env=env, input="",
        capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    events = [json.loads(line).get("event") for line in result.stderr.splitlines()]
    assert events[-2:] == ["startup_success", "shutdown_complete"]
