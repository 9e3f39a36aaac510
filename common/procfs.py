"""Process facts read from Linux's /proc (proc(5)): state, parent, children.

``/proc/<pid>/stat`` holds ``pid (comm) state ppid ...``; ``comm`` may itself
contain spaces and parentheses, so the fields are read after the last ``)``.
"""

from __future__ import annotations

from pathlib import Path


def _fields(stat: str) -> list[str]:
    """The fields after ``comm``: ``[state, ppid, ...]``."""
    return stat.rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    """True if ``pid`` exists in this PID namespace and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return _fields(stat)[0] != "Z"


def children_by_parent() -> dict[int, list[int]]:
    """``{ppid: [pid, ...]}`` for every process in /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        children.setdefault(int(_fields(stat)[1]), []).append(int(entry.name))
    return children
