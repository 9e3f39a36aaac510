"""JSON log records (python-json-logger): one object per record, whatever it holds.

Every record carries, in this order: ``ts`` (RFC 3339, UTC, milliseconds),
``level``, ``service``, ``program``, ``logger``, ``instance``, ``env``, ``msg``;
then ``event`` for lifecycle lines, the record's ``extra`` fields, and for
errors ``exception_type`` and ``stack`` (with chained causes and notes, as
:mod:`traceback` prints them).

Nothing a caller logs can break a line or reach the caller as an exception:

- a message whose ``%`` arguments do not fit is kept, with the arguments and
  the error, instead of raising in the handler;
- an ``extra`` key that is a LogRecord attribute (``message``, ``name``,
  ``args``...) or one of the keys above is kept as ``extra_<key>``, instead of
  the ``KeyError`` the standard library raises in the caller;
- values JSON cannot hold (objects, bytes, sets, Decimal, exceptions) are
  written as strings, and non-UTF-8 text (lone surrogates from undecodable
  bytes) as backslash escapes;
- newlines and control characters are escaped by JSON.

:mod:`common.loglines` writes the records out (records over 4 KiB in parts).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS, merge_record_extra
from pythonjsonlogger.json import JsonFormatter

# Lifecycle events (the ``event`` key), shared by every program.
STARTUP_SUCCESS = "startup_success"
SHUTTING_DOWN = "shutting_down"
SHUTDOWN_COMPLETE = "shutdown_complete"
CRASHED = "crashed"
CONFIG_INVALID = "config_invalid"
CONFIG_LOADED = "config_loaded"

FIXED_KEYS = ("ts", "level", "service", "program", "logger", "instance", "env", "msg")


def rfc3339(created: float) -> str:
    """``created`` (seconds since the epoch) as ``2026-11-30T06:33:26.123Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + (
        f".{int(created % 1 * 1000):03d}Z"
    )


def fixed_fields(
    created: float, level: str, logger: str, msg: str, identity: Mapping[str, str]
) -> dict[str, Any]:
    """The keys every line starts with, in order (``identity``: service, program, instance, env)."""
    return {
        "ts": rfc3339(created),
        "level": level,
        "service": identity.get("service"),
        "program": identity.get("program"),
        "logger": logger,
        "instance": identity.get("instance"),
        "env": identity.get("env"),
        "msg": msg,
    }


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def clean_text(value: Any) -> Any:
    """``value`` with every string made encodable as UTF-8 (surrogates escaped)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            try:  # undecodable bytes (PEP 383) back to \xNN escapes
                return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            except UnicodeEncodeError:  # other lone surrogates as \uXXXX escapes
                return value.encode("utf-8", "backslashreplace").decode("utf-8")
        return value
    if isinstance(value, dict):
        return {clean_text(_safe_str(k)): clean_text(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_text(v) for v in value]
    return value


class JsonLineFormatter(JsonFormatter):
    """Formats a record as one JSON object; ``identity`` holds service/program/instance/env."""

    def __init__(self, identity: dict[str, str]) -> None:
        super().__init__(reserved_attrs=[*RESERVED_ATTRS, "message"], json_ensure_ascii=False)
        self.identity = identity

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as JSON text (one line; it may be longer than 4 KiB)."""
        return self.format_data(record)[0]

    def format_data(self, record: logging.LogRecord) -> tuple[str, dict[str, Any]]:
        """Return ``(JSON text, the dict it encodes)`` for ``record``."""
        message_dict: dict[str, Any] = {}
        if isinstance(record.msg, dict):
            message_dict = dict(record.msg)
            record.message = ""
        else:
            try:
                record.message = record.getMessage()
            except Exception as exc:
                record.message = f"{_safe_str(record.msg)} [bad arguments {record.args!r}: {exc!r}]"
        if record.exc_info:
            message_dict["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            message_dict["exc_info"] = record.exc_text
        if record.stack_info:
            message_dict["stack_info"] = self.formatStack(record.stack_info)
        log_data: dict[str, Any] = {}
        self.add_fields(log_data, record, message_dict)
        return self.jsonify_log_record(log_data), log_data

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        """Fill ``log_data`` with the fixed keys first, then extras, then exception keys."""
        stack = message_dict.pop("exc_info", None)
        log_data.update(
            fixed_fields(
                record.created, record.levelname, record.name, record.message, self.identity
            )
        )
        extras: dict[str, Any] = dict(message_dict)
        merge_record_extra(record, extras, reserved=self._skip_fields)
        has_error = bool(record.exc_info and record.exc_info[0] is not None)
        error_keys = ("exception_type", "stack") if has_error or stack else ()
        for key, value in extras.items():
            log_data["extra_" + key if key in log_data or key in error_keys else key] = value
        if has_error:
            log_data["exception_type"] = record.exc_info[0].__name__  # type: ignore[index,union-attr]
        if stack:
            log_data["stack"] = stack

    def jsonify_log_record(self, log_data: dict[str, Any]) -> str:
        """Serialize; on any failure (odd keys, cycles, bad text) retry with safe values."""
        try:
            text = super().jsonify_log_record(log_data)
            text.encode("utf-8")
        except (TypeError, ValueError, RecursionError, UnicodeEncodeError):
            safe = {
                key: value if isinstance(value, str | int | float | bool | None) else repr(value)
                for key, value in log_data.items()
            }
            text = super().jsonify_log_record(clean_text(safe))
        return text


def _make_record(  # noqa: PLR0917 - logging.Logger.makeRecord's signature
    self: logging.Logger,
    name: str,
    level: int,
    fn: str,
    lno: int,
    msg: object,
    args: Any,
    exc_info: Any,
    func: str | None = None,
    extra: Mapping[str, object] | None = None,
    sinfo: str | None = None,
) -> logging.LogRecord:
    """``Logger.makeRecord`` that renames a clashing ``extra`` key instead of raising."""
    record = _original_make_record(
        self, name, level, fn, lno, msg, args, exc_info, func, None, sinfo
    )
    for key, value in (extra or {}).items():
        clash = key in ("message", "asctime") or key in record.__dict__
        record.__dict__["extra_" + key if clash else key] = value
    return record


_original_make_record = logging.Logger.makeRecord  # fenced: tests/test_fences.py


class ConsoleFormatter(JsonLineFormatter):
    """``log_format: console``: one readable line per record, for a terminal while developing.

    ``07:54:38.123 INFO  sync_worker lifecycle: sync_worker started event=startup_success``,
    then the traceback, if any, on the lines below.
    """

    console = True  # JsonLineHandler writes format()'s text as it is

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as ``time level program logger: msg key=value...``."""
        data = self.format_data(record)[1]
        stack = data.pop("stack", None)
        head = (
            f"{data['ts'][11:23]} {data['level']:<7} {data['program']} "
            f"{data['logger']}: {data['msg']}"
        )
        rest = " ".join(
            _console_field(key, value) for key, value in data.items() if key not in FIXED_KEYS
        )
        text = f"{head} {rest}" if rest else head
        return f"{text}\n{stack}" if stack else text


def _console_field(key: str, value: Any) -> str:
    """``key=value``; a settings report as ``name=value`` pairs, with sources other than default."""
    if key != "settings" or not isinstance(value, dict):
        return f"{key}={value}"
    pairs = []
    for name, entry in value.items():
        if name == "programs" and isinstance(entry, dict):
            pairs += [
                _console_field("settings", {f"{program}.{k}": v for k, v in section.items()})
                for program, section in entry.items()
            ]
        elif isinstance(entry, dict) and "value" in entry:
            source = entry.get("source")
            shown = f"{name}={entry['value']}"
            pairs.append(shown if source == "default" else f"{shown} ({source})")
    return "settings: " + ", ".join(p.removeprefix("settings: ") for p in pairs)


def configure_logging(
    program: str,
    *,
    service: str = "app",
    env: str = "unknown",
    instance: str = "unknown",
    level: str = "INFO",
    fd: int = 1,
    log_format: str = "json",
) -> None:
    """Send every log record (and captured ``warnings``) to ``fd`` (stdout) as JSON lines.

    ``log_format`` "console" writes :class:`ConsoleFormatter` lines instead.

    Replaces any handler already on the root logger, so calling it again (once
    settings are known) updates the identity fields. Also makes every logger
    keep a clashing ``extra`` key as ``extra_<key>`` (one patch of
    ``logging.Logger.makeRecord``, for loggers created before this call too).
    """
    from common.loglines import JsonLineHandler

    logging.Logger.makeRecord = _make_record  # type: ignore[method-assign]
    identity = {"service": service, "program": program, "instance": instance, "env": env}
    handler = JsonLineHandler(fd)
    formatter = ConsoleFormatter if log_format == "console" else JsonLineFormatter
    handler.setFormatter(formatter(identity))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
