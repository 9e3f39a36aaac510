"""JSON log lines: one object per record with the fixed keys, errors with their stack."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import pytest

from common.logs import JsonLineFormatter, configure_logging, rfc3339

IDENTITY = {"service": "svc", "program": "prog", "instance": "host-1", "env": "test"}


def format_record(msg: str, *args: object, exc: bool = False, **extra: Any) -> dict[str, Any]:
    """Format one record as the programs do and parse the line back."""
    exc_info = None
    if exc:
        try:
            raise ValueError("boom")
        except ValueError:
            exc_info = sys.exc_info()
    record = logging.LogRecord("app.test", logging.ERROR, __file__, 1, msg, args, exc_info)
    record.__dict__.update(extra)
    line = JsonLineFormatter(IDENTITY).format(record)
    assert "\n" not in line
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def test_fixed_keys_come_first_in_order() -> None:
    """ts, level, service, program, logger, instance, env, msg lead every line."""
    record = format_record("hello %s", "world")
    assert list(record)[:8] == [
        "ts", "level", "service", "program", "logger", "instance", "env", "msg",
    ]  # fmt: skip
    assert record["msg"] == "hello world"
    assert record["level"] == "ERROR"
    assert record["logger"] == "app.test"
    assert record["program"] == "prog"


def test_timestamp_is_rfc3339_utc_with_milliseconds() -> None:
    """Ts looks like 2026-11-30T06:33:26.123Z."""
    assert rfc3339(0.5) == "1970-01-01T00:00:00.500Z"
    assert rfc3339(1796020000.25) == "2026-11-30T06:26:40.250Z"


def test_exception_carries_type_and_stack() -> None:
    """A record with exc_info gets exception_type and the formatted stack."""
    record = format_record("failed", exc=True)
    assert record["exception_type"] == "ValueError"
    assert record["stack"].startswith("Traceback (most recent call last):")
    assert "ValueError: boom" in record["stack"]


def test_multiline_message_stays_one_line() -> None:
    """Newlines in a message are escaped inside the JSON string."""
    assert format_record("line one\nline two")["msg"] == "line one\nline two"


def test_extras_are_kept_and_cannot_overwrite_fixed_keys() -> None:
    """Extra fields appear; one named like a fixed key is kept as extra_<key>."""
    record = format_record("x", event="startup_success", level="fake", count=3)
    assert record["event"] == "startup_success"
    assert record["count"] == 3
    assert record["level"] == "ERROR"
    assert record["extra_level"] == "fake"


def test_configure_logging_writes_json_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    """After configure_logging, a log call prints exactly one JSON line on stdout."""
    configure_logging("prog", service="svc", env="test", instance="i", level="INFO")
    try:
        logging.getLogger("t").info("ready", extra={"event": "startup_success"})
        logging.getLogger("t").debug("hidden below INFO")
    finally:
        logging.getLogger().handlers.clear()
        logging.captureWarnings(False)
    out, err = capsys.readouterr()
    [line] = out.splitlines()
    assert json.loads(line)["event"] == "startup_success"
    assert err == ""
