"""What the image runs, run as the image runs it: app-entrypoint execs supervisord as PID 1.

A new PID namespace (``unshare --pid --fork --mount-proc``) makes supervisord
PID 1, as ``docker run`` does: it must stop everything on SIGTERM, exit 0 and
reap the orphans the kernel hands to PID 1.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from common.procfs import children_by_parent
from tests.conftest import TEST_PROCESSES, Stack, descendants

pytestmark = pytest.mark.stack  # make test-quick leaves these out

PID_NAMESPACE = ("--pid", "--fork", "--mount-proc", "--kill-child")


def unshare_prefix() -> tuple[str, ...]:
    """An ``unshare`` command that gives a new PID namespace here, or skip the test."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare not found (Debian package util-linux)")
    refusals = []
    for extra in ((), ("--user", "--map-root-user")):
        probe = subprocess.run(
            [unshare, *extra, *PID_NAMESPACE, "true"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        if probe.returncode == 0:
            return (unshare, *extra, *PID_NAMESPACE)
        refusals.append(probe.stderr.strip())
    pytest.skip(f"the kernel refuses a new PID namespace here: {refusals}")


def comm(pid: int) -> str:
    """The process name of ``pid`` ("" once it is gone)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


@pytest.fixture
def pid1(tmp_path: Path) -> Iterator[tuple[Stack, int]]:
    """A ready stack whose supervisord is PID 1 of a new namespace; yields it and that host pid."""
    stack = Stack(tmp_path, {"loop_sleep_seconds": "30"}, prefix=unshare_prefix())
    try:
        stack.wait_ready()
        [init] = children_by_parent()[stack.proc.pid]  # unshare's one child
        yield stack, init
    finally:
        stack.kill()


def test_sigterm_to_pid_1_stops_everything(pid1: tuple[Stack, int]) -> None:
    """SIGTERM to PID 1 stops every process within 2 s, exit 0, stdout JSON lines only."""
    stack, init = pid1
    assert (stack.runtime_dir / "supervisord.pid").read_text().strip() == "1"
    assert b"entrypoint.supervisord" in Path(f"/proc/{init}/cmdline").read_bytes()
    programs = descendants(init)
    assert len(programs) == len(TEST_PROCESSES)
    started = time.monotonic()
    os.kill(init, signal.SIGTERM)
    try:
        code = stack.proc.wait(5)
    except subprocess.TimeoutExpired:
        alive = {pid: comm(pid) for pid in programs | {init} if Path(f"/proc/{pid}").exists()}
        log = (stack.runtime_dir / "supervisord.log").read_text()[-2000:]
        pytest.fail(f"still alive 5 s after SIGTERM: {alive}; log: {log}; out: {stack.lines[-8:]}")
    assert code == 0
    assert time.monotonic() - started < 2.0
    assert not any(Path(f"/proc/{pid}").exists() for pid in programs | {init})
    stack.kill()  # joins the output reader
    records = [json.loads(line) for line in stack.lines]
    assert [r["program"] for r in records if r.get("event") == "shutdown_complete"]


def test_pid_1_reaps_orphaned_grandchildren(pid1: tuple[Stack, int]) -> None:
    """A process orphaned in the namespace is adopted by PID 1 and reaped: no zombie."""
    _, init = pid1
    nsenter = shutil.which("nsenter")
    if nsenter is None:
        pytest.skip("nsenter not found (Debian package util-linux)")
    # sh exits at once; its child sleep is orphaned, adopted by PID 1, exits 1 s later.
    subprocess.run(
        [nsenter, "--target", str(init), "--pid", "--", "sh", "-c", "sleep 1 & exit 0"],
        check=True,
        timeout=10,
    )
    deadline = time.monotonic() + 3  # until adopted and exec'd (its comm is "sh" before)
    orphans: list[int] = []
    while not orphans and time.monotonic() < deadline:
        orphans = [pid for pid in children_by_parent().get(init, []) if comm(pid) == "sleep"]
        time.sleep(0.01)
    [orphan] = orphans
    deadline = time.monotonic() + 4
    while Path(f"/proc/{orphan}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{orphan}").exists(), f"pid {orphan} is {comm(orphan)!r}, not reaped"


def blocked_signals(pid: int) -> int:
    """The blocked-signal mask of ``pid`` (SigBlk in /proc/<pid>/status; 0 once it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return int(
        next(line.split()[1] for line in status.splitlines() if line.startswith("SigBlk")), 16
    )


def test_sigterm_while_pid_1_starts_is_not_lost(tmp_path: Path) -> None:
    """SIGTERM while the entrypoint validates: kept through the exec, stops before any spawn.

    Without a handler the kernel would drop it: PID 1 ignores default-action signals.
    """
    prefix = unshare_prefix()
    stack = Stack(tmp_path, {"loop_sleep_seconds": "30"}, prefix=prefix)
    try:
        deadline = time.monotonic() + 5
        while not children_by_parent().get(stack.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.002)
        [init] = children_by_parent()[stack.proc.pid]  # unshare's one child
        sigterm_bit = 1 << (signal.SIGTERM - 1)
        # unshare's child starts with SIGTERM blocked too (unshare blocks it around the
        # fork, util-linux unshare.c) and unblocks it before its exec: only a blocked
        # SIGTERM after the exec is the entrypoint's.
        cmdline = Path(f"/proc/{init}/cmdline")
        unshare = prefix[0].encode()
        while time.monotonic() < deadline and (
            cmdline.read_bytes().startswith(unshare) or not blocked_signals(init) & sigterm_bit
        ):
            time.sleep(0.002)
        assert blocked_signals(init) & sigterm_bit, "the entrypoint never blocked SIGTERM"
        os.kill(init, signal.SIGTERM)
        assert stack.proc.wait(5) == 0
    finally:
        stack.kill()
    assert stack.leftovers() == []
    assert not [r for r in stack.records() if r.get("event") == "startup_success"]
