"""Logs through the real supervisord: nothing torn, nothing lost, nothing but JSON.

The programs are the real ones. What they write is injected with a
``sitecustomize`` module on ``PYTHONPATH`` (Python imports it at start-up in
every process), so no test hook lives in the programs' code.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import EXPORTER, TEST_WORKERS, Stack

pytestmark = pytest.mark.stack  # make test-quick leaves these out

FLOOD_RECORDS = 10_000
FLOOD = """
import logging, os, threading
if os.environ.get("SUPERVISOR_PROCESS_NAME") in {programs!r}:
    def flood():
        import time
        # By name, not by an import here: importing common.loglines in this thread while
        # the main thread imports it can fail (seen under coverage: "KeyError:
        # 'common.loglines'" in this thread, 11 times in 40 starts); the flood never came.
        while not any(type(h).__name__ == "JsonLineHandler" for h in logging.getLogger().handlers):
            time.sleep(0.01)
        time.sleep(0.3)  # settings loaded, logging configured for good
        log = logging.getLogger("flood")
        for seq in range({count}):
            size = (40, 400, 2500)[seq % 3]
            size = 5_000 if seq % 200 == 199 else size
            size = 70_000 if seq % 1000 == 999 else size
            log.info("flood %d", seq, extra={{"seq": seq, "payload": "x" * size}})
        log.info("flood done", extra={{"event": "flood_done"}})
    threading.Thread(target=flood, daemon=True).start()
"""
STRAY_OUTPUT = """
import os, sys, threading, time
if os.environ.get("SUPERVISOR_PROCESS_NAME") == "sync_worker":
    os.write(2, b"raw bytes on fd 2 before logging exists\\n")
    def later():
        time.sleep(1.5)
        print("printed by user code")
        sys.stderr.write("written to sys.stderr\\n")
        os.write(2, b"a C extension writes to fd 2\\n")
    threading.Thread(target=later, daemon=True).start()
"""


def injected(tmp_path: Path, code: str) -> dict[str, str]:
    """``PYTHONPATH`` holding a ``sitecustomize`` module with ``code``."""
    directory = tmp_path / "site"
    directory.mkdir()
    (directory / "sitecustomize.py").write_text(code)
    return {"PYTHONPATH": str(directory)}


def parse(lines: list[str]) -> list[dict[str, Any]]:
    """Every stdout line as JSON (failing on any other line), split records joined."""
    records: list[dict[str, Any]] = []
    parts: dict[str, dict[int, dict[str, Any]]] = {}
    for line in lines:
        assert len(line.encode()) < 4096, line[:200]
        record = json.loads(line)
        if "record_id" not in record:
            records.append(record)
            continue
        pieces = parts.setdefault(record["record_id"], {})
        pieces[record["part"]] = record
        if len(pieces) == record["parts"]:
            del parts[record["record_id"]]
            records.append(json.loads("".join(pieces[i]["chunk"] for i in sorted(pieces))))
    assert parts == {}, f"{len(parts)} split records never completed"
    return records


def test_flood_from_every_program_arrives_whole_and_complete(
    tmp_path: Path, start_stack: Callable[..., Stack]
) -> None:
    """Both workers and the exporter log at full speed: every line parses, every record is there."""
    programs = {*TEST_WORKERS, EXPORTER}
    code = FLOOD.format(programs=programs, count=FLOOD_RECORDS)
    stack = start_stack(extra_env=injected(tmp_path, code), loop_sleep_seconds="0.05")

    def done() -> bool:
        finished = {r["program"] for r in parse_done(stack.lines)}
        return finished == programs

    try:
        stack.wait_until(done, 120, "every program's flood_done line")
    except BaseException:  # say who is missing, and what supervisord saw
        finished = {r["program"] for r in parse_done(stack.lines)}
        started = Counter(
            json.loads(line)["program"] for line in list(stack.lines) if '"part": 1,' in line
        )
        log = (stack.runtime_dir / "supervisord.log").read_text()[-3000:]
        stack.kill()
        pytest.fail(f"done: {finished}; big records begun: {dict(started)}; supervisord: {log}")
    stack.kill()
    records = parse(stack.lines)
    floods = Counter(r["program"] for r in records if r["logger"] == "flood" and "seq" in r)
    assert floods == dict.fromkeys(programs, FLOOD_RECORDS)
    for program in programs:
        seqs = sorted(r["seq"] for r in records if r["program"] == program and "seq" in r)
        assert seqs == list(range(FLOOD_RECORDS))
    big = [r for r in records if "seq" in r and r["seq"] % 1000 == 999]
    assert len(big) == len(programs) * (FLOOD_RECORDS // 1000)
    assert all(len(r["payload"]) == 70_000 for r in big)


def parse_done(lines: list[str]) -> list[dict[str, Any]]:
    """The flood_done records seen so far (cheap: no joining)."""
    return [json.loads(line) for line in list(lines) if '"flood_done"' in line]


def test_stray_output_on_stdout_and_stderr_becomes_json(
    tmp_path: Path, start_stack: Callable[..., Stack]
) -> None:
    """print(), sys.stderr and raw fd-2 bytes (even before logging exists) all become JSON."""
    stack = start_stack(extra_env=injected(tmp_path, STRAY_OUTPUT), loop_sleep_seconds="0.2")
    stack.wait_ready()

    def seen_all() -> bool:
        return sum("a C extension" in line for line in list(stack.lines)) == 1

    stack.wait_until(seen_all, 15, "the late fd-2 write")
    stack.kill()
    records = [r for r in parse(stack.lines) if r["program"] == "sync_worker"]
    by_text = {r["msg"]: r for r in records}
    early = by_text["raw bytes on fd 2 before logging exists"]
    assert (early["logger"], early["event"], early["level"]) == ("stderr", "stderr", "ERROR")
    assert by_text["printed by user code"]["logger"] == "stdout"
    assert by_text["written to sys.stderr"]["logger"] == "stderr"
    assert by_text["a C extension writes to fd 2"]["event"] == "stderr"
