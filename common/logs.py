"""Single-line JSON logs on stdout, one object per record (python-json-logger).

Every line carries, in this order: ``ts`` (RFC 3339, UTC, milliseconds),
``level``, ``service``, ``program``, ``logger``, ``instance``, ``env``, ``msg``;
then ``event`` for lifecycle lines, the record's ``extra`` fields, and for
errors ``exception_type`` and ``stack``. An ``extra`` key that would overwrite
one of these is kept under ``extra_<key>`` instead.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from pythonjsonlogger.core import RESERVED_ATTRS, merge_record_extra
from pythonjsonlogger.json import JsonFormatter

# Lifecycle events (the ``event`` key), shared by every program.
STARTUP_SUCCESS = "startup_success"
SHUTTING_DOWN = "shutting_down"
SHUTDOWN_COMPLETE = "shutdown_complete"
CRASHED = "crashed"
CONFIG_INVALID = "config_invalid"


def rfc3339(created: float) -> str:
    """``created`` (seconds since the epoch) as ``2026-11-30T06:33:26.123Z``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + (
        f".{int(created % 1 * 1000):03d}Z"
    )


class JsonLineFormatter(JsonFormatter):
    """Formats a record as one JSON object; ``identity`` holds service/program/instance/env."""

    def __init__(self, identity: dict[str, str]) -> None:
        super().__init__(reserved_attrs=[*RESERVED_ATTRS, "message"])
        self.identity = identity

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        """Fill ``log_data`` with the fixed keys first, then extras, then exception keys."""
        stack = message_dict.pop("exc_info", None)
        log_data["ts"] = rfc3339(record.created)
        log_data["level"] = record.levelname
        log_data["service"] = self.identity.get("service")
        log_data["program"] = self.identity.get("program")
        log_data["logger"] = record.name
        log_data["instance"] = self.identity.get("instance")
        log_data["env"] = self.identity.get("env")
        log_data["msg"] = record.message
        extras: dict[str, Any] = dict(message_dict)
        merge_record_extra(record, extras, reserved=self._skip_fields)
        for key, value in extras.items():
            log_data["extra_" + key if key in log_data else key] = value
        if record.exc_info and record.exc_info[0] is not None:
            log_data["exception_type"] = record.exc_info[0].__name__
        if stack:
            log_data["stack"] = stack


def configure_logging(
    program: str,
    *,
    service: str = "app",
    env: str = "unknown",
    instance: str = "unknown",
    level: str = "INFO",
) -> None:
    """Send every log record (and captured ``warnings``) to stdout as JSON lines.

    Replaces any handler already on the root logger, so calling it again (once
    settings are known) updates the identity fields.
    """
    handler = logging.StreamHandler(sys.stdout)
    identity = {"service": service, "program": program, "instance": instance, "env": env}
    handler.setFormatter(JsonLineFormatter(identity))
    root = logging.getLogger()
    for old in root.handlers[:]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
