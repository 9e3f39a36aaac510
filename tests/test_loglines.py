"""Every record becomes whole JSON lines of at most 4096 bytes, whatever it holds."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import json
import logging
import os
import threading
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from common.loglines import MAX_LINE_BYTES, JsonLineHandler, StreamToLog, split_record
from common.logs import JsonLineFormatter, configure_logging

IDENTITY = {"service": "svc", "program": "prog", "instance": "i", "env": "test"}


@pytest.fixture
def lines() -> Iterator[Callable[[], list[bytes]]]:
    """Route the root logger to a pipe through JsonLineHandler; yield a reader of its lines."""
    configure_logging("prog", service="svc", env="test", instance="i", level="DEBUG")
    read_fd, write_fd = os.pipe()
    handler = JsonLineHandler(fd=write_fd)
    handler.setFormatter(JsonLineFormatter(IDENTITY))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    chunks: list[bytes] = []
    reader = threading.Thread(target=lambda: _drain(read_fd, chunks), daemon=True)
    reader.start()

    def read() -> list[bytes]:
        os.close(write_fd)
        reader.join(10)
        return b"".join(chunks).splitlines(keepends=True)

    try:
        yield read
    finally:
        root.handlers.clear()
        logging.captureWarnings(False)
        logging.Logger.makeRecord = _ORIGINAL_MAKE_RECORD  # type: ignore[method-assign]


_ORIGINAL_MAKE_RECORD = logging.Logger.makeRecord


def _drain(fd: int, chunks: list[bytes]) -> None:
    while data := os.read(fd, 65536):
        chunks.append(data)
    os.close(fd)


def records(raw: list[bytes]) -> list[dict[str, Any]]:
    """Parse every line (each must be <= 4096 bytes) and join split records."""
    parsed = []
    parts: dict[str, list[dict[str, Any]]] = {}
    for line in raw:
        assert len(line) <= MAX_LINE_BYTES
        assert line.endswith(b"\n")
        record = json.loads(line)
        if "record_id" in record:
            parts.setdefault(record["record_id"], []).append(record)
            if record["part"] == record["parts"]:
                chunks = sorted(parts.pop(record["record_id"]), key=lambda r: r["part"])
                assert [c["part"] for c in chunks] == list(range(1, record["parts"] + 1))
                parsed.append(json.loads("".join(c["chunk"] for c in chunks)))
        else:
            parsed.append(record)
    assert not parts
    return parsed


class Unprintable:
    """An object whose str() and repr() both raise."""

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_values_json_cannot_hold_are_written_as_text(lines: Callable[[], list[bytes]]) -> None:
    """Objects, bytes, sets, datetimes, Decimal, exceptions, odd keys, cycles: one valid line."""
    cycle: list[Any] = []
    cycle.append(cycle)
    log = logging.getLogger("t")
    log.info(
        "odd",
        extra={
            "obj": object(),
            "raw": b"\xff\x00",
            "set": {1, 2},
            "when": dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
            "amount": decimal.Decimal("1.10"),
            "error": ValueError("bad"),
            "unprintable": Unprintable(),
        },
    )
    log.info("tuple keys", extra={"mapping": {(1, 2): "x"}})
    log.info("cycle", extra={"cycle": cycle})
    [odd, tuple_keys, cyc] = records(lines())
    assert odd["amount"] == "1.10"
    assert odd["when"].startswith("2026-01-02T00:00:00")
    assert odd["error"] == "ValueError: bad"
    assert odd["raw"] == "_wA="  # python-json-logger: URL-safe base64 of the bytes
    assert odd["set"] in ("{1, 2}", "{2, 1}")
    assert odd["unprintable"] == "__could_not_encode__"
    assert tuple_keys["mapping"] == "{(1, 2): 'x'}"
    assert cyc["cycle"] == "[[...]]"


def test_bad_text_and_bad_arguments_never_raise(lines: Callable[[], list[bytes]]) -> None:
    """Undecodable bytes, control characters, newlines and wrong % arguments stay in one line."""
    log = logging.getLogger("t")
    log.info("bytes \udcff\udcfe end, control \x00\x1b, new\nline")
    log.info("%d items", "not a number")
    log.info("%s and %s", "only one")  # noqa: PLE1206 - the wrong call under test
    first, second, third = records(lines())
    assert first["msg"] == "bytes \\xff\\xfe end, control \x00\x1b, new\nline"
    assert second["msg"].startswith("%d items [bad arguments ('not a number',)")
    assert third["msg"].startswith("%s and %s [bad arguments ('only one',)")


def test_extra_keys_that_clash_are_kept_not_raised(lines: Callable[[], list[bytes]]) -> None:
    """A clashing extra key (message, name, level...) never raises; it is kept as extra_*."""
    logging.getLogger("t").info(
        "clash", extra={"message": 1, "name": 2, "args": 3, "level": 4, "asctime": 5}
    )
    [record] = records(lines())
    assert record["msg"] == "clash"
    assert record["logger"] == "t"
    assert record["level"] == "INFO"
    for key, value in {"message": 1, "name": 2, "args": 3, "level": 4, "asctime": 5}.items():
        assert record[f"extra_{key}"] == value


def test_chained_exceptions_with_notes_are_in_the_stack(lines: Callable[[], list[bytes]]) -> None:
    """exception_type and a stack holding the cause, the context and the notes."""
    try:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            outer = RuntimeError("outer")
            outer.add_note("a note for the reader")
            raise outer from inner
    except RuntimeError:
        logging.getLogger("t").exception("failed")
    [record] = records(lines())
    assert record["exception_type"] == "RuntimeError"
    assert "KeyError: 'inner'" in record["stack"]
    assert "direct cause of the following exception" in record["stack"]
    assert "a note for the reader" in record["stack"]


def test_threads_and_tasks_never_interleave(lines: Callable[[], list[bytes]]) -> None:
    """Records from 8 threads and 8 asyncio tasks at once: every line whole, none lost."""
    log = logging.getLogger("t")

    def worker(n: int) -> None:
        for i in range(300):
            log.info("thread", extra={"who": n, "i": i, "pad": "x" * (i * 7)})

    async def task(n: int) -> None:
        for i in range(100):
            log.info("task", extra={"who": n, "i": i})
            await asyncio.sleep(0)

    async def tasks() -> None:
        await asyncio.gather(*(task(n) for n in range(8)))

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    asyncio.run(tasks())
    for thread in threads:
        thread.join()
    parsed = [r for r in records(lines()) if r["logger"] == "t"]  # not asyncio's own
    assert sorted((r["msg"], r["who"], r["i"]) for r in parsed) == sorted(
        [("thread", n, i) for n in range(8) for i in range(300)]
        + [("task", n, i) for n in range(8) for i in range(100)]
    )


def test_warnings_are_logged_as_json(lines: Callable[[], list[bytes]]) -> None:
    """warnings.warn becomes a JSON record of logger py.warnings."""
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        logging.captureWarnings(True)  # catch_warnings restored showwarning: capture again
        warnings.warn("deprecated thing", DeprecationWarning, stacklevel=1)
    [record] = records(lines())
    assert record["logger"] == "py.warnings"
    assert "DeprecationWarning: deprecated thing" in record["msg"]


@pytest.mark.parametrize("size", [4000, 70_000, 1024 * 1024])
def test_large_records_are_split_and_join_back_exactly(
    lines: Callable[[], list[bytes]], size: int
) -> None:
    """A record over 4 KiB arrives as parts <= 4096 bytes whose chunks join to the record."""
    text = ('"quoted" \\ ünïcødé 🙂 ' * (size // 20 + 1))[:size]
    logging.getLogger("t").warning("big", extra={"payload": text})
    raw = lines()
    [record] = records(raw)
    assert record["payload"] == text
    assert record["msg"] == "big"
    if size > MAX_LINE_BYTES:
        first = json.loads(raw[0])
        assert (first["part"], first["parts"]) == (1, len(raw))
        assert first["level"] == "WARNING"
        assert first["msg"] == "big"


def test_split_record_keeps_a_short_record_whole() -> None:
    """A record under 4096 bytes is one line, unchanged."""
    assert split_record('{"a": 1}', {}) == [b'{"a": 1}\n']


def test_print_becomes_a_record(lines: Callable[[], list[bytes]]) -> None:
    """Text written to a StreamToLog (what sys.stdout becomes) is logged line by line."""
    stream = StreamToLog("stdout", logging.INFO)
    print("hello", "world", file=stream)
    stream.write("partial ")
    stream.write("line\nsecond")
    stream.flush()
    assert [(r["logger"], r["msg"]) for r in records(lines())] == [
        ("stdout", "hello world"),
        ("stdout", "partial line"),
        ("stdout", "second"),
    ]


def test_std_stream_replacements_behave_like_text_streams(lines: Callable[[], list[bytes]]) -> None:
    """buffer takes bytes (a character split across writes waits), fileno/isatty/encoding answer."""
    stream = StreamToLog("stdout", logging.INFO, 1)
    data = "caf\u00e9 \xff\n".encode()[:-1] + b"\xff\n"  # valid, then one invalid byte
    stream.buffer.write(data[:4])
    stream.buffer.write(data[4:])
    assert (stream.fileno(), stream.buffer.fileno(), stream.isatty()) == (1, 1, False)
    assert (stream.encoding, stream.errors) == ("utf-8", "replace")
    [record] = records(lines())
    assert record["msg"] == "caf\u00e9 \u00ff\ufffd"
