"""Traces end to end: a worker's spans reach a real OTLP/HTTP receiver, its log lines join them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_worker
from tests.receivers import OtlpReceiver, black_hole
from tests.test_lifecycle import Program, program_env

pytestmark = pytest.mark.stack  # make test-quick leaves these out

PERIODIC = """
import itertools, logging
log = logging.getLogger("work")
calls = itertools.count()
def run_once(ctx):
    n = next(calls)
    log.info("inside %d", n, extra={"event": "inside"})
    if n % 2 == 1:
        raise ValueError(f"odd call {n}")
"""
PARENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN = "b7ad6b7169203331"
LONG_RUNNING = f"""
async def serve(ctx):
    message_headers = {{"traceparent": "00-{PARENT_TRACE}-{PARENT_SPAN}-01"}}
    with ctx.work("handle price", parent=message_headers):
        ctx.log.info("handling", extra={{"event": "handling", "sent": ctx.trace_headers()}})
    with ctx.work():
        ctx.log.info("second", extra={{"event": "second"}})
    kafka = [("traceparent", b"00-{PARENT_TRACE}-{PARENT_SPAN}-01"), ("key", b"\\xff")]
    with ctx.work("from kafka", parent=kafka):
        pass
    with ctx.work("capital", parent={{"Traceparent": "00-{PARENT_TRACE}-{PARENT_SPAN}-01"}}):
        pass
    for garbage in ("not headers", 42, [("a",)], {{"traceparent": 7}}):
        with ctx.work("garbage", parent=garbage):
            pass
    ctx.log.info("idle", extra={{"event": "idle", "sent": ctx.trace_headers()}})
    await ctx.stop.wait()
"""


def traced_env(tmp_path: Path, endpoint: str, **settings: str) -> dict[str, str]:
    """A program's environment with traces on, batches sent every 100 ms."""
    return program_env(tmp_path, **settings) | {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }


def by_id(spans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``{span_id: span}``."""
    return {span["span_id"]: span for span in spans}


def test_each_run_once_is_a_span_with_its_outcome_and_lines_carry_its_ids(
    tmp_path: Path,
) -> None:
    """Every call is a span (program, outcome; errors recorded); every line inside has its ids."""
    with OtlpReceiver() as receiver:
        env = traced_env(tmp_path, receiver.endpoint, loop_sleep_seconds="0.05")
        env |= write_worker(tmp_path / "pkgs", "traced", PERIODIC)
        program = Program(["-m", "traced"], env)
        code, err, _ = program.stop_after_count("inside", 5)
        spans = receiver.spans()  # no waiting: the stop flushed them
    assert (code, err) == (0, "")
    inside = [r for r in program.records if r.get("event") == "inside"]
    spans_by_id = by_id(spans)
    assert len(spans) == len(inside) >= 5, "the stop did not flush every span"
    for record in inside:
        span = spans_by_id[record["span_id"]]
        assert span["trace_id"] == record["trace_id"]
        assert span["name"] == "run_once"
        assert span["parent_span_id"] == ""  # each call a trace of its own
        failed = int(record["msg"].split()[1]) % 2 == 1
        assert span["attributes"] == {"program": "traced", "outcome": "error" if failed else "ok"}
        assert span["status"] == (2 if failed else 0)  # STATUS_CODE_ERROR, UNSET
        if failed:
            [event] = span["events"]
            assert event["name"] == "exception"
            assert event["exception.type"] == "ValueError"
            assert "odd call" in event["exception.message"]
    for failure in (r for r in program.records if r.get("event") == "iteration_failed"):
        assert spans_by_id[failure["span_id"]]["attributes"]["outcome"] == "error"
    lifecycle = ("startup_success", "shutdown_complete")
    outside = [r for r in program.records if r.get("event") in lifecycle]
    assert len(outside) == 2
    assert all("trace_id" not in r for r in outside)
    resource = spans[0]["resource"]
    settings = next(r for r in program.records if r.get("event") == "config_loaded")["settings"]
    assert resource["service.name"] == settings["service_name"]["value"]
    assert resource["service.version"] == settings["version"]["value"]
    assert resource["deployment.environment.name"] == settings["env"]["value"]
    assert resource["service.instance.id"] == settings["instance"]["value"]


def test_a_unit_of_work_continues_the_trace_it_was_given(tmp_path: Path) -> None:
    """ctx.work(parent=headers) is a child of the message's trace; trace_headers passes it on."""
    with OtlpReceiver() as receiver:
        env = traced_env(tmp_path, receiver.endpoint) | {
            "OTEL_SERVICE_NAME": "price-feed",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=staging",
        }
        env |= write_worker(tmp_path / "pkgs", "consumer", LONG_RUNNING)
        program = Program(["-m", "consumer"], env)
        code = program.stop_after("idle")
        spans = receiver.spans()
    assert code == 0
    events = {r.get("event"): r for r in program.records}
    handling, second, idle = events["handling"], events["second"], events["idle"]
    [handle] = [s for s in spans if s["name"] == "handle price"]
    [work] = [s for s in spans if s["name"] == "work"]
    assert (handle["trace_id"], handle["parent_span_id"]) == (PARENT_TRACE, PARENT_SPAN)
    assert handle["attributes"] == {"program": "consumer", "outcome": "ok"}
    assert (handling["trace_id"], handling["span_id"]) == (PARENT_TRACE, handle["span_id"])
    assert handling["sent"] == {"traceparent": f"00-{PARENT_TRACE}-{handle['span_id']}-01"}
    assert work["trace_id"] != PARENT_TRACE  # a unit without a parent starts its own trace
    assert second["span_id"] == work["span_id"]
    assert "trace_id" not in idle
    assert idle["sent"] == {}
    for name in ("from kafka", "capital"):  # bytes values, (name, value) pairs, any case
        [span] = [s for s in spans if s["name"] == name]
        assert (span["trace_id"], span["parent_span_id"]) == (PARENT_TRACE, PARENT_SPAN), name
    garbage = [s for s in spans if s["name"] == "garbage"]
    assert len(garbage) == 4
    assert all(s["parent_span_id"] == "" for s in garbage)  # a new trace, never an exception
    warnings = [r for r in program.records if r.get("event") == "trace_parent_ignored"]
    assert len(warnings) == 1, warnings  # said once
    assert handle["resource"]["service.name"] == "price-feed"  # the OTEL_* variables win
    assert handle["resource"]["deployment.environment.name"] == "staging"


def test_an_unreachable_collector_does_not_delay_the_stop(tmp_path: Path) -> None:
    """A collector that never answers: the worker still exits 0 within a second of SIGTERM.

    Fails if the flush waits on the export (opentelemetry-python#4568: the
    SDK's force_flush ignores its timeout).
    """
    with black_hole() as port:
        env = traced_env(tmp_path, f"http://127.0.0.1:{port}", loop_sleep_seconds="0.05")
        env |= write_worker(tmp_path / "pkgs", "traced", PERIODIC)
        program = Program(["-m", "traced"], env)
        # 6 calls: spans queued, an export blocked on the dead collector
        code, _, elapsed = program.stop_after_count("inside", 6)
    assert code == 0
    assert elapsed < 1.5, elapsed  # the flush waits 0.5 s at most; supervisord would wait 10 s
    assert [r["event"] for r in program.records if r.get("event") == "exit_forced"] == []
