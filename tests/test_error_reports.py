"""Error reports end to end: the real sentry-sdk sends its envelopes to a local ingest stand-in."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from common.config import Settings
from tests.conftest import write_worker
from tests.receivers import SentryIngest, black_hole
from tests.test_lifecycle import Program, program_env
from tests.test_tracing import PERIODIC  # run_once fails on odd calls

pytestmark = pytest.mark.stack  # make test-quick leaves these out

SERVICE = Settings().service_name  # the default: "app", or the name make init gave

CRASHING = """
import asyncio
async def serve(ctx):
    ctx.log.info("connecting", extra={"event": "connecting", "feed": "prices"})
    await asyncio.sleep(0.05)
    raise ConnectionResetError("feed went away")
"""


def reporting_env(tmp_path: Path, dsn: str, **settings: str) -> dict[str, str]:
    """A program's environment with error reports on."""
    return program_env(tmp_path, **settings) | {"SENTRY_DSN": dsn}


def exception_of(event: dict[str, Any]) -> dict[str, Any]:
    """The last (outermost) exception of an event."""
    values: list[dict[str, Any]] = event["exception"]["values"]
    return values[-1]


def test_a_failing_run_once_is_reported_with_program_release_and_log_context(
    tmp_path: Path,
) -> None:
    """The iteration_failed line becomes an event: exception, tags, environment, release, extras."""
    with SentryIngest() as ingest:
        env = reporting_env(tmp_path, ingest.dsn, loop_sleep_seconds="0.05", env="staging")
        env |= write_worker(tmp_path / "pkgs", "reported", PERIODIC)
        program = Program(["-m", "reported"], env)
        code, err, _ = program.stop_after_count("inside", 4)
        events = ingest.events()  # no waiting: the stop flushed them
    assert (code, err) == (0, "")
    failures = [r for r in program.records if r.get("event") == "iteration_failed"]
    assert len(events) == len(failures) >= 1  # every failure, flushed by the stop
    event = events[0]
    assert exception_of(event)["type"] == "ValueError"
    assert exception_of(event)["value"] == "odd call 1"
    assert event["level"] == "error"
    assert event["environment"] == "staging"
    assert event["release"] == f"{SERVICE}@0.0.0-dev"
    assert event["tags"]["program"] == "reported"
    assert {"service", "instance", "commit"} <= set(event["tags"])
    assert event["extra"]["event"] == "iteration_failed"
    crumbs = [c.get("message") for c in event["breadcrumbs"]["values"]]
    assert "inside 1" in crumbs


def test_a_crash_is_reported_before_the_exit(tmp_path: Path) -> None:
    """serve raising: exit 1, and the crash's event reached Sentry before the process ended."""
    with SentryIngest() as ingest:
        env = reporting_env(tmp_path, ingest.dsn) | {"APP_COMMIT": "abc123", "APP_VERSION": "1.2.3"}
        env |= write_worker(tmp_path / "pkgs", "crashing", CRASHING)
        program = Program(["-m", "crashing"], env)
        try:
            code, _ = program.finish()
        finally:
            program.close()
        events = ingest.events()
    assert code == 1
    [event] = events
    assert exception_of(event)["type"] == "ConnectionResetError"
    assert event["level"] == "fatal"
    assert event["extra"]["event"] == "crashed"
    assert event["release"] == f"{SERVICE}@1.2.3+abc123"
    assert event["tags"]["commit"] == "abc123"
    crumbs = [c.get("message") for c in event["breadcrumbs"]["values"]]
    assert "connecting" in crumbs


def test_an_unreachable_sentry_does_not_delay_the_stop(tmp_path: Path) -> None:
    """Sentry never answers: the worker exits 0 about half a second after SIGTERM."""
    with black_hole() as port:
        env = reporting_env(tmp_path, f"http://key@127.0.0.1:{port}/1", loop_sleep_seconds="0.05")
        env |= write_worker(tmp_path / "pkgs", "reported", PERIODIC)
        program = Program(["-m", "reported"], env)
        # 4 calls: the failure's event is queued, its send blocked
        code, err, elapsed = program.stop_after_count("inside", 4)
    assert (code, err) == (0, "")
    assert elapsed < 1.5, elapsed
    assert [r for r in program.records if r.get("event") == "exit_forced"] == []
    # One bounded wait (observability.finish), not a second one in sentry-sdk's atexit close.
    dropped = [r for r in program.records if r["logger"] == "error_reports"]
    assert len(dropped) == 1, dropped
    assert dropped[0]["msg"].endswith("error reports not sent in 0.05 s: dropped")


def test_with_traces_on_the_report_names_the_trace_of_the_failure(tmp_path: Path) -> None:
    """Both on: the event of a failed run_once carries the trace_id and span_id of its span."""
    from tests.receivers import OtlpReceiver

    with SentryIngest() as ingest, OtlpReceiver() as receiver:
        env = reporting_env(tmp_path, ingest.dsn, loop_sleep_seconds="0.05")
        env |= {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}
        env |= write_worker(tmp_path / "pkgs", "reported", PERIODIC)
        program = Program(["-m", "reported"], env)
        code = program.stop_after("iteration_failed")
        event = ingest.events()[0]  # the first failure (a later one may come before the stop)
        spans = {span["span_id"]: span for span in receiver.spans()}
    assert code == 0
    span = spans[event["extra"]["span_id"]]
    assert span["trace_id"] == event["extra"]["trace_id"]
    assert span["attributes"]["outcome"] == "error"


def test_a_collector_that_is_down_is_logged_not_reported(tmp_path: Path) -> None:
    """Traces to a closed port: the exporter's ERROR lines stay lines, no event reaches Sentry."""
    from tests.conftest import free_port

    with SentryIngest() as ingest:
        env = reporting_env(tmp_path, ingest.dsn, loop_sleep_seconds="0.05")
        env |= {
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{free_port()}",  # nothing listens
            "OTEL_EXPORTER_OTLP_TIMEOUT": "0.3",
            "OTEL_BSP_SCHEDULE_DELAY": "50",
        }
        env |= write_worker(tmp_path / "pkgs", "quiet", "def run_once(ctx):\n    pass\n")
        program = Program(["-m", "quiet"], env)
        try:
            program.wait_for("startup_success")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not any(
                r["level"] == "ERROR" and r["logger"].startswith("opentelemetry")
                for r in program.records
            ):
                program.records.append(json.loads(program.proc.stdout.readline()))  # type: ignore[union-attr]
            program.proc.send_signal(signal.SIGTERM)
            code, _ = program.finish()
        finally:
            program.close()
        events = ingest.events()
    assert code == 0
    failed = [r for r in program.records if r["logger"].startswith("opentelemetry")]
    assert any(r["level"] == "ERROR" for r in failed), failed
    assert events == []


def test_text_on_stderr_is_not_reported(tmp_path: Path) -> None:
    """A traceback printed to stderr stays log lines: no event per line (nor SENTRY_DEBUG's)."""
    printing = (
        "import traceback\n"
        "def run_once(ctx):\n"
        "    try:\n"
        "        raise KeyError('printed')\n"
        "    except KeyError:\n"
        "        traceback.print_exc()\n"
        "    ctx.log.info('printed', extra={'event': 'printed'})\n"
    )
    with SentryIngest() as ingest:
        env = reporting_env(tmp_path, ingest.dsn, loop_sleep_seconds="0.05")
        env |= write_worker(tmp_path / "pkgs", "printing", printing) | {"SENTRY_DEBUG": "1"}
        program = Program(["-m", "printing"], env)
        code = program.stop_after("printed")
        events = ingest.events()
    assert code == 0
    assert any(r["logger"] == "stderr" and "KeyError" in r["msg"] for r in program.records)
    assert events == []
