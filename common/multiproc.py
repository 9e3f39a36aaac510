"""The Prometheus multiprocess directory: exact totals, bounded size, no broken scrape.

prometheus-client writes one file per process and metric kind
(``counter_<pid>.db``, ``gauge_mostrecent_<pid>.db``...) and its
``MultiProcessCollector`` re-reads every file at every scrape, dead processes'
included (client_python docs, "Multiprocess Mode"). Here:

- :func:`compact` merges dead processes' files into one archive per kind and
  gauge mode (``counter_archive.db``...): counters, histograms and summaries
  are summed, ``mostrecent`` gauges keep the newest value, ``max``/``min``/
  ``sum`` gauges combine as their mode says, ``live*`` gauges of dead processes
  are dropped (as ``mark_process_dead`` does); ``all`` gauges stay as they are.
  So the directory holds O(live processes) files.
- Exactness: compaction holds an exclusive ``flock`` on ``.lock`` and commits
  through a journal (``compaction.json``, written by atomic rename): until the
  journal exists nothing visible has changed; once it exists, whoever takes the
  lock next (compactor or scrape) finishes it. A ``kill -9`` at any point loses
  or doubles no count. Scrapes read under a shared lock.
- :func:`collect` is the scrape path: a file that cannot be read (0 bytes,
  truncated, corrupt) of a dead process is moved to ``quarantine/`` and reported;
  one of a live process (a file being created) is skipped for this scrape.

``prometheus_client`` is imported only once a file must be read or written: a
compaction that finds no dead process's file (the steady state) costs the event
listener no import of it (about 10 MB of memory per process).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from common import procfs

ARCHIVE = "archive"
_GAUGE_MODES = ("all", "liveall", "min", "livemin", "max", "livemax", "sum", "livesum",
                "mostrecent", "livemostrecent")  # fmt: skip
KINDS = {"counter", "histogram", "summary", *(f"gauge_{mode}" for mode in _GAUGE_MODES)}
JOURNAL = "compaction.json"
QUARANTINE = "quarantine"
_SUMMED = {"counter", "histogram", "summary", "gauge_sum"}
_COMBINE: dict[str, Callable[[float, float], float]] = {"gauge_max": max, "gauge_min": min}


def kind_and_pid(path: str) -> tuple[str, str]:
    """``("gauge_mostrecent", "123")`` for ``.../gauge_mostrecent_123.db``."""
    stem = os.path.basename(path)[: -len(".db")]
    kind, _, pid = stem.rpartition("_")
    return kind, pid


def db_files(directory: Path) -> list[str]:
    """Paths of the ``*.db`` files in ``directory``, as ``glob("*.db")`` finds them (no dotfiles).

    ``os.scandir`` with a suffix test: a third of glob's cost, on every scrape.
    """
    with os.scandir(directory) as entries:
        return [e.path for e in entries if e.name.endswith(".db") and not e.name.startswith(".")]


def pid_alive(pid: str) -> bool:
    """True if the file-name part ``pid`` names a living process (not "archive", say)."""
    return pid.isdigit() and procfs.alive(int(pid))


@contextmanager
def locked(directory: Path, exclusive: bool) -> Iterator[None]:
    """Hold ``directory/.lock`` shared (scrape) or exclusive (compaction)."""
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)


def _apply_journal(directory: Path) -> None:
    """Finish a committed compaction (idempotent); drop uncommitted temp archives.

    A journal that cannot be read (not written by :func:`compact`) is quarantined.
    """
    journal = directory / JOURNAL
    if journal.exists():
        try:
            plan = json.loads(journal.read_text())
            renames, deletes = list(plan["renames"]), list(plan["delete"])
        except (ValueError, KeyError, TypeError):
            quarantine(directory, str(journal))
            renames, deletes = [], []
            plan = {"renames": renames, "delete": deletes}
        for tmp, final in plan["renames"]:
            if (directory / tmp).exists():
                os.replace(directory / tmp, directory / final)
        for name in plan["delete"]:
            (directory / name).unlink(missing_ok=True)
        journal.unlink(missing_ok=True)
    for stray in directory.glob("*.db.tmp"):
        stray.unlink()


def _read(path: str) -> list[tuple[str, float, float]]:
    """Every ``(key, value, timestamp)`` of a file; raises if it is damaged.

    Damaged: an unknown kind in the name, a header or entry that does not parse,
    or a key not shaped ``[metric, sample, {labels}, help]`` as prometheus-client writes it.
    """
    if kind_and_pid(path)[0] not in KINDS:
        raise ValueError(f"not a prometheus-client file name: {path}")
    from prometheus_client.mmap_dict import MmapedDict  # fenced: tests/test_fences.py

    values = list(MmapedDict.read_all_values_from_file(path))
    for key, _, _, _ in values:
        metric, sample, labels, help_text = json.loads(key)
        if not (isinstance(metric, str) and isinstance(sample, str) and isinstance(help_text, str)):
            raise ValueError(f"bad key {key!r}")
        if not (isinstance(labels, dict) and all(isinstance(v, str) for v in labels.values())):
            raise ValueError(f"bad labels in {key!r}")
    return [(key, value, ts) for key, value, ts, _ in values]


def quarantine(directory: Path, path: str) -> Path:
    """Move a damaged file out of the scrape's sight (hold the exclusive lock); return where."""
    target = directory / QUARANTINE / os.path.basename(path)
    target.parent.mkdir(exist_ok=True)
    os.replace(path, target)
    return target


def quarantine_reporter(logger: logging.Logger) -> Callable[[Path], None]:
    """An ``on_bad_file`` callback: count in ``app_metric_files_quarantined_total``, warn."""

    def report(moved_to: Path) -> None:
        from common.metrics import quarantined_files_counter

        quarantined_files_counter().inc()
        logger.warning(
            "damaged metric file quarantined: %s",
            moved_to,
            extra={"event": "metric_file_quarantined", "file": str(moved_to)},
        )

    return report


def compact(directory: Path, on_bad_file: Callable[[Path], None] = lambda p: None) -> int:
    """Merge dead processes' files into archives; return how many files were merged."""
    with locked(directory, exclusive=True):
        _apply_journal(directory)
        groups: dict[str, list[str]] = {}
        doomed: list[str] = []
        for path in db_files(directory):
            kind, pid = kind_and_pid(path)
            if kind not in KINDS:
                on_bad_file(quarantine(directory, path))
                continue
            if pid == ARCHIVE or pid_alive(pid) or kind in ("gauge_all", "gauge_liveall"):
                continue
            if kind.startswith("gauge_live"):
                doomed.append(path)  # mark_process_dead's job
            else:
                groups.setdefault(kind, []).append(path)
        renames: list[tuple[str, str]] = []
        for kind, paths in groups.items():
            merged: dict[str, tuple[float, float]] = {}
            archive = directory / f"{kind}_{ARCHIVE}.db"
            sources = [str(archive)] if archive.exists() else []
            readable = []
            for path in [*sources, *paths]:
                try:
                    rows = _read(path)
                except Exception:
                    on_bad_file(quarantine(directory, path))
                    continue
                readable.append(path)
                for key, value, ts in rows:
                    merged[key] = _merge(kind, merged.get(key), (value, ts))
            tmp = archive.with_suffix(".db.tmp")
            from prometheus_client.mmap_dict import MmapedDict

            archive_file = MmapedDict(str(tmp))
            for key, (value, ts) in merged.items():
                archive_file.write_value(key, value, ts)
            archive_file.close()
            renames.append((tmp.name, archive.name))
            doomed.extend(p for p in paths if p in readable)
        if not doomed:
            return 0
        plan = {"renames": renames, "delete": [os.path.basename(p) for p in doomed]}
        (directory / (JOURNAL + ".tmp")).write_text(json.dumps(plan))
        os.replace(directory / (JOURNAL + ".tmp"), directory / JOURNAL)  # the commit
        _apply_journal(directory)
        return len(doomed)


def _merge(
    kind: str, old: tuple[float, float] | None, new: tuple[float, float]
) -> tuple[float, float]:
    if old is None:
        return new
    if kind in _SUMMED:
        return old[0] + new[0], max(old[1], new[1])
    if kind in _COMBINE:
        return _COMBINE[kind](old[0], new[0]), max(old[1], new[1])
    return new if new[1] >= old[1] else old  # mostrecent: the newer timestamp wins


def collect(directory: Path, on_bad_file: Callable[[Path], None] = lambda p: None) -> Any:
    """Metric families merged from every readable file (the scrape path).

    Reads under the shared lock. If a file cannot be read, or a compactor died
    after its commit, it retakes the lock exclusively to put things right first.
    """
    from prometheus_client.multiprocess import MultiProcessCollector  # .merge: test_fences.py

    with locked(directory, exclusive=False):
        if not os.path.exists(os.path.join(directory, JOURNAL)):
            try:
                return MultiProcessCollector.merge(db_files(directory))
            except Exception:  # noqa: S110 - sorted out below, under the exclusive lock
                pass
    with locked(directory, exclusive=True):
        _apply_journal(directory)
        good = []
        for path in db_files(directory):
            try:
                _read(path)
            except Exception:
                kind, pid = kind_and_pid(path)
                if kind not in KINDS or not pid_alive(pid):
                    on_bad_file(quarantine(directory, path))
                continue  # a live process's file being created: next scrape
            good.append(path)
        return MultiProcessCollector.merge(good)
