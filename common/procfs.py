"""Process facts read from Linux's /proc (proc(5)): state, parent, children, the stat fields.

``/proc/<pid>/stat`` holds ``pid (comm) state ppid ...``; ``comm`` may itself
contain spaces and parentheses, so the fields are read after the last ``)``.
"""

from __future__ import annotations

import os
from pathlib import Path


def read(path: str) -> bytes:
    """The whole of a small /proc file, in one ``read`` (they are generated per read).

    Raises :class:`OSError` if it cannot be read (the process has exited).
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 8192)
    finally:
        os.close(fd)


def stat_fields(pid: int) -> list[bytes] | None:
    """The fields of ``/proc/<pid>/stat`` after ``comm``: ``[state, ppid, ...]`` (field 3 on).

    None if the process does not exist (any more).
    """
    try:
        stat = read(f"/proc/{pid}/stat")
    except OSError:
        return None
    return stat.rsplit(b")", 1)[1].split()


def alive(pid: int) -> bool:
    """True if ``pid`` exists in this PID namespace and is not a zombie."""
    fields = stat_fields(pid)
    return fields is not None and fields[0] != b"Z"


def children(pid: int) -> list[int]:
    """``pid``'s child processes: each thread's ``/proc/<pid>/task/<tid>/children``.

    Costs a read per thread of ``pid``, not a scan of /proc (Linux 3.5+).
    """
    found: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            found += map(int, read(f"/proc/{pid}/task/{tid}/children").split())
    except OSError:  # exited meanwhile
        pass
    return found


def children_by_parent() -> dict[int, list[int]]:
    """``{ppid: [pid, ...]}`` for every process in /proc."""
    found: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        fields = stat_fields(int(entry.name))
        if fields is not None:
            found.setdefault(int(fields[1]), []).append(int(entry.name))
    return found
