"""Process facts from /proc: alive, zombie, children."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from common.procfs import alive, children_by_parent


def test_a_running_child_is_alive_and_listed_under_its_parent() -> None:
    """A child we start is alive and appears among our children."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        assert alive(child.pid)
        assert child.pid in children_by_parent()[os.getpid()]
    finally:
        child.kill()
        child.wait()


def test_a_zombie_and_a_reaped_pid_are_not_alive() -> None:
    """An exited, unreaped child (zombie) is not alive; once reaped, neither."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not alive(child.pid)
    child.wait()
    assert not alive(child.pid)
