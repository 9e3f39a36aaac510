"""Resource figures read from /proc for the exporter: each one follows what the process does."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.metrics_core import Metric

from services.metrics_exporter.resources import ResourceReader, Usage, boot_time, usage
from tests.conftest import PROCESS_FAMILIES

# A child that does what it is told on stdin, one command per line, and answers "ok".
CHILD = r"""
import os, sys, threading, time
held = []
for line in sys.stdin:
    what = line.split()
    if what[0] == "name":
        with open("/proc/self/comm", "w") as comm:
            comm.write(" ".join(what[1:]))
    elif what[0] == "spin":
        end = time.process_time() + float(what[1])
        while time.process_time() < end:
            pass
    elif what[0] == "alloc":
        held.append(bytearray(int(what[1]) * 1024 * 1024))
    elif what[0] == "open":
        held += [open(os.devnull) for _ in range(int(what[1]))]
    elif what[0] == "threads":
        stop = threading.Event()
        held.append(stop)
        for _ in range(int(what[1])):
            threading.Thread(target=stop.wait, daemon=True).start()
    elif what[0] == "fork":  # a grandchild that holds N MiB until we exit (its stdin closes)
        import subprocess
        code = f"import sys; b = bytearray({what[1]} << 20); print(1, flush=True); sys.stdin.read()"
        kid = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        kid.stdout.readline()
        held.append(kid)
        print(kid.pid, end=" ")
    elif what[0] == "spinkid":  # a grandchild that spins S CPU seconds, waited for
        import subprocess
        code = f"import time\nend = time.process_time() + {what[1]}\n"
        code += "while time.process_time() < end: pass"
        subprocess.run([sys.executable, "-c", code], check=True)
    print("ok", flush=True)
"""


@pytest.fixture
def child() -> Iterator[subprocess.Popen[str]]:
    """A Python child that takes commands on stdin; killed at the end."""
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    with proc:  # closes the pipes
        yield proc
        proc.kill()


def tell(proc: subprocess.Popen[str], command: str) -> str:
    """Send one command and wait for its "ok"; what it printed before it."""
    assert proc.stdin is not None
    assert proc.stdout is not None
    proc.stdin.write(command + "\n")
    proc.stdin.flush()
    answer = proc.stdout.readline()
    assert answer.endswith("ok\n"), answer
    return answer.removesuffix("ok\n").strip()


def figures(pid: int) -> Usage:
    """``pid``'s usage now; fails if it cannot be read."""
    found = usage(pid, boot_time())
    assert found is not None
    return found


def test_each_figure_follows_the_process(child: subprocess.Popen[str]) -> None:
    """CPU, RSS, PSS, fds and threads grow by what the child spends, allocates and opens."""
    tell(child, "name")  # started and answering
    before = figures(child.pid)
    tell(child, "spin 0.3")
    tell(child, "alloc 40")
    tell(child, "open 20")
    tell(child, "threads 5")
    after = figures(child.pid)
    assert after.cpu_seconds - before.cpu_seconds >= 0.25
    assert after.resident_bytes - before.resident_bytes >= 38 * 1024 * 1024
    assert before.pss_bytes is not None
    assert after.pss_bytes is not None
    assert after.pss_bytes - before.pss_bytes >= 38 * 1024 * 1024
    assert after.pss_bytes <= after.resident_bytes
    assert before.open_fds is not None
    assert after.open_fds == before.open_fds + 20
    assert after.threads == before.threads + 5 == 6
    assert after.start_time_seconds == before.start_time_seconds


def test_start_time_is_when_the_process_started() -> None:
    """A process started now has a start time within a second of now (boot time + ticks)."""
    started = time.time()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        assert abs(figures(proc.pid).start_time_seconds - started) < 1
    finally:
        proc.kill()
        proc.wait()


def test_a_command_name_with_parentheses_and_spaces_is_read_right(
    child: subprocess.Popen[str],
) -> None:
    """comm ``a) b (c`` does not shift the fields read after it."""
    tell(child, "threads 2")
    expected = figures(child.pid)
    tell(child, "name a) 1 2 (c")
    assert Path(f"/proc/{child.pid}/comm").read_text() == "a) 1 2 (c\n"
    assert figures(child.pid).threads == expected.threads == 3


def test_an_exited_process_is_left_out_not_an_error() -> None:
    """A pid that has gone yields no sample; the other processes' samples stay."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    assert usage(proc.pid, boot_time()) is None
    families = samples(ResourceReader().families({"gone": proc.pid, "me": os.getpid()}))
    assert {labels for name in families for labels in families[name]} == {"me"}
    assert set(families) == set(PROCESS_FAMILIES)


def samples(families: Iterator[Metric]) -> dict[str, dict[str, float]]:
    """``{sample name: {program: value}}``."""
    found: dict[str, dict[str, float]] = {}
    for family in families:
        for sample in family.samples:
            found.setdefault(sample.name, {})[sample.labels["program"]] = sample.value
    return found


def test_pss_is_kept_for_its_max_age_and_rss_is_always_current(
    child: subprocess.Popen[str],
) -> None:
    """Within the max age PSS stays as read (RSS moves); after it, or for a new pid, it is read."""
    tell(child, "name")
    cached, fresh = ResourceReader(pss_max_age=3600), ResourceReader(pss_max_age=0)
    first = samples(cached.families({"w": child.pid}))
    tell(child, "alloc 40")
    kept = samples(cached.families({"w": child.pid}))
    now = samples(fresh.families({"w": child.pid}))
    grown = 38 * 1024 * 1024
    assert kept["process_pss_bytes"] == first["process_pss_bytes"]
    assert (
        kept["process_resident_memory_bytes"]["w"] - first["process_resident_memory_bytes"]["w"]
        >= grown
    )
    assert now["process_pss_bytes"]["w"] - first["process_pss_bytes"]["w"] >= grown
    cached.families({})  # a scrape without the pid forgets it
    list(cached.families({}))
    again = samples(cached.families({"w": child.pid}))
    assert again["process_pss_bytes"]["w"] - first["process_pss_bytes"]["w"] >= grown


def test_a_program_counts_its_subprocesses_and_what_they_used(
    child: subprocess.Popen[str],
) -> None:
    """A grandchild's memory, fds and threads are the program's; a reaped one's CPU stays in it."""
    tell(child, "name")
    alone = figures(child.pid)
    grandchild = int(tell(child, "fork 40"))
    with_kid = figures(child.pid)
    assert with_kid.resident_bytes - alone.resident_bytes >= 38 * 1024 * 1024
    assert with_kid.pss_bytes is not None
    assert alone.pss_bytes is not None
    assert with_kid.pss_bytes - alone.pss_bytes >= 38 * 1024 * 1024
    assert with_kid.threads == alone.threads + 1
    assert with_kid.open_fds is not None
    assert alone.open_fds is not None
    assert with_kid.open_fds > alone.open_fds
    left_out = usage(child.pid, boot_time(), stop_at=frozenset({grandchild}))
    assert left_out is not None
    assert left_out.resident_bytes - alone.resident_bytes < 10 * 1024 * 1024  # another program's
    before = figures(child.pid).cpu_seconds
    tell(child, "spinkid 0.3")  # ran and was waited for: its time is in cutime now
    assert figures(child.pid).cpu_seconds - before >= 0.25
    unreaped = usage(child.pid, boot_time(), reaped=False)
    assert unreaped is not None
    assert figures(child.pid).cpu_seconds - unreaped.cpu_seconds >= 0.25
