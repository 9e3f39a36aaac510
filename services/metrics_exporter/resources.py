"""Each process's CPU, memory, file descriptors and threads, read from /proc at scrape time.

Multiprocess mode exports no ``process_*`` series (a worker's collectors are not
written to the multiprocess directory, prometheus/client_python#433), so the
exporter reads them for every process supervisord runs, and for supervisord
itself, with the standard names of the Prometheus clients' process collectors
and a ``program`` label:

============================== ======= =================================================
``process_cpu_seconds_total``  counter user + system CPU seconds (``utime + stime``)
``process_resident_memory_bytes`` gauge resident set size (``rss``)
``process_pss_bytes``          gauge   proportional set size (``smaps_rollup``): shared
                                       pages divided among their users, so the sum over
                                       programs is the container's real use; at most
                                       :data:`PSS_MAX_AGE_SECONDS` old (see below)
``process_open_fds``           gauge   open file descriptors (entries of ``fd/``)
``process_threads``            gauge   threads (``num_threads``)
``process_start_time_seconds`` gauge   Unix time the process started (``starttime``)
============================== ======= =================================================

Each program's figures are those of its process and of its descendants (a
worker's subprocesses: see :class:`ResourceReader`). The fields are proc(5)'s
``/proc/<pid>/stat`` (numbered from 1: utime 14, stime 15, cutime 16, cstime
17, num_threads 20, starttime 22 in clock ticks since boot, rss 24 in pages),
``/proc/<pid>/task/<tid>/children``, ``/proc/stat``'s ``btime`` and
``/proc/<pid>/smaps_rollup``'s ``Pss:`` (kB, Linux 4.14+). A counter resets
when its program restarts (a new pid); ``rate()`` handles that. A file that
cannot be read (the process just exited, another user's process) leaves that
sample out, never the scrape.

Cost, measured (``make bench``): ``stat``, ``fd/`` and ``children`` take
about 30 µs per process. ``smaps_rollup`` takes about 360 µs for one of our 27 MB processes and
grows with the process's memory, while the kernel walks its page tables under
its memory-map lock (which the process's own ``mmap`` and ``brk`` wait for):
so PSS is read once per :data:`PSS_MAX_AGE_SECONDS` per process, not at every
scrape, and the RSS beside it is always current.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric

from common import procfs

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")  # per second, the unit of utime, stime and starttime
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")  # the unit of rss
PSS_MAX_AGE_SECONDS = 60.0


@dataclass(frozen=True)
class Usage:
    """One process's figures; ``pss_bytes`` and ``open_fds`` are None where unreadable."""

    cpu_seconds: float
    resident_bytes: int
    pss_bytes: int | None
    open_fds: int | None
    threads: int
    start_time_seconds: float


def boot_time() -> float:
    """Unix time the machine booted: ``btime`` of ``/proc/stat``, in seconds."""
    with open("/proc/stat", "rb") as stat:
        for line in stat:
            if line.startswith(b"btime "):
                return float(line.split()[1])
    raise OSError("/proc/stat has no btime line")


def pss_bytes(pid: int) -> int | None:
    """``pid``'s proportional set size in bytes, or None if ``smaps_rollup`` is unreadable."""
    try:
        rollup = procfs.read(f"/proc/{pid}/smaps_rollup")
        start = rollup.index(b"\nPss:") + 5
        return int(rollup[start : rollup.index(b"kB", start)]) * 1024
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class _Stat:
    """The fields of one ``/proc/<pid>/stat`` this module reads, in their units (ticks, pages)."""

    own_ticks: int  # utime + stime
    reaped_ticks: int  # cutime + cstime: children it has waited for
    threads: int
    start_ticks: int
    rss_pages: int


def _stat(pid: int) -> _Stat | None:
    fields = procfs.stat_fields(pid)  # from field 3 (state) on
    if fields is None:
        return None
    return _Stat(
        own_ticks=int(fields[11]) + int(fields[12]),
        reaped_ticks=int(fields[13]) + int(fields[14]),
        threads=int(fields[17]),
        start_ticks=int(fields[19]),
        rss_pages=int(fields[21]),
    )


def usage(
    pid: int,
    booted: float,
    pss: Callable[[int, int], int | None] = lambda pid, _start: pss_bytes(pid),
    stop_at: frozenset[int] = frozenset(),
    reaped: bool = True,
) -> Usage | None:
    """The figures of ``pid`` and its descendants, or None if ``pid`` has exited.

    The tree is summed: CPU (each process's own, plus, if ``reaped``, what its
    waited-for children used), RSS, PSS, fds and threads; the start time is
    ``pid``'s. Descendants in ``stop_at`` (other programs) and theirs are left
    out. ``pss(pid, start ticks)`` gives a process's PSS (by default read now).
    """
    root = _stat(pid)
    if root is None:
        return None
    cpu = rss = fds = threads = pss_total = 0
    fds_known = pss_known = True
    pending = [(pid, root)]
    while pending:
        member, stat = pending.pop()
        cpu += stat.own_ticks + (stat.reaped_ticks if reaped else 0)
        rss += stat.rss_pages
        threads += stat.threads
        member_pss = pss(member, stat.start_ticks)
        pss_known = pss_known and member_pss is not None
        pss_total += member_pss or 0
        try:
            fds += len(os.listdir(f"/proc/{member}/fd"))
        except OSError:
            fds_known = False
        for child in procfs.children(member):
            found = _stat(child) if child not in stop_at else None
            if found is not None:
                pending.append((child, found))
    return Usage(
        cpu_seconds=cpu / CLOCK_TICKS,
        resident_bytes=rss * PAGE_BYTES,
        pss_bytes=pss_total if pss_known else None,
        open_fds=fds if fds_known else None,
        threads=threads,
        start_time_seconds=booted + root.start_ticks / CLOCK_TICKS,
    )


class ResourceReader:
    """Turns ``{program: pid}`` into the six families above, one sample per readable program.

    Each program is its process and every descendant that is no other
    program's (a worker's subprocesses, a multiprocessing pool), so the
    programs' PSS adds up to the container's. ``supervisord`` is counted
    without the CPU of the children it reaped: those were programs, already
    counted while they ran. Keeps each process's PSS for ``pss_max_age``
    seconds (monotonic clock), keyed by pid and start time; the processes no
    longer seen are forgotten.
    """

    def __init__(self, pss_max_age: float = PSS_MAX_AGE_SECONDS) -> None:
        self.booted = boot_time()
        self.pss_max_age = pss_max_age
        self._pss: dict[tuple[int, int], tuple[float, int | None]] = {}  # (pid, start): (at, B)
        self._seen: set[tuple[int, int]] = set()

    def _cached_pss(self, pid: int, start_ticks: int) -> int | None:
        key, now = (pid, start_ticks), time.monotonic()
        self._seen.add(key)
        read_at, value = self._pss.get(key, (None, None))
        if read_at is None or now - read_at >= self.pss_max_age:
            value = pss_bytes(pid)
            self._pss[key] = (now, value)
        return value

    def families(self, pids: Mapping[str, int]) -> Iterator[Metric]:
        """Yield every family (possibly without samples): the names are always served."""
        cpu = CounterMetricFamily(
            "process_cpu_seconds", "User and system CPU time of the process, in seconds.",
            labels=["program"],
        )  # fmt: skip
        rss = _gauge("process_resident_memory_bytes", "Resident memory size in bytes.")
        pss = _gauge(
            "process_pss_bytes",
            "Proportional set size in bytes: shared pages divided among the processes using them.",
        )
        fds = _gauge("process_open_fds", "Number of open file descriptors.")
        threads = _gauge("process_threads", "Number of threads of the process.")
        start = _gauge(
            "process_start_time_seconds", "Start time of the process since unix epoch in seconds."
        )
        roots = frozenset(pids.values())
        self._seen = set()
        for program, pid in pids.items():
            found = usage(
                pid, self.booted, self._cached_pss, roots - {pid}, program != "supervisord"
            )
            if found is None:
                continue
            cpu.add_metric([program], found.cpu_seconds)
            rss.add_metric([program], found.resident_bytes)
            threads.add_metric([program], found.threads)
            start.add_metric([program], found.start_time_seconds)
            if found.pss_bytes is not None:
                pss.add_metric([program], found.pss_bytes)
            if found.open_fds is not None:
                fds.add_metric([program], found.open_fds)
        for gone in self._pss.keys() - self._seen:
            del self._pss[gone]
        yield from (cpu, rss, pss, fds, threads, start)


def _gauge(name: str, documentation: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, labels=["program"])
