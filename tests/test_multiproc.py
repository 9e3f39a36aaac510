"""Compaction of dead processes' metric files: exact totals, whatever dies when."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from common import multiproc
from tests.conftest import ROOT

pytestmark = pytest.mark.stack  # make test-quick leaves these out

WORKER = """
import sys
from common.metrics import WorkerMetrics
m = WorkerMetrics(sys.argv[1])
m.started()
for _ in range(int(sys.argv[2])):
    m.iteration_finished(0.02, failed=False)
m.iteration_finished(0.3, failed=True)
"""


def run_worker(directory: Path, program: str, iterations: int) -> None:
    """A real process records ``iterations`` + 1 iterations (one failed), then exits."""
    env = dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(directory))
    subprocess.run(
        [sys.executable, "-c", WORKER, program, str(iterations)],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=30,
    )


def totals(directory: Path) -> dict[str, float]:
    """``{sample: value}`` as a scrape sees it (timestamps excluded: they differ by process)."""
    return {
        f"{s.name}{sorted(s.labels.items())}": s.value
        for family in multiproc.collect(directory)
        for s in family.samples
        if family.name != "app_last_iteration_timestamp_seconds"
    }


@pytest.fixture(scope="module")
def dead_processes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the files of 12 dead worker processes of two programs."""
    directory = tmp_path_factory.mktemp("dead")
    for n in range(12):
        run_worker(directory, ("a", "b")[n % 2], n)
    return directory


def copy(source: Path, tmp_path: Path) -> Path:
    """A private copy of a prepared directory."""
    target = tmp_path / "prom"
    shutil.copytree(source, target)
    return target


def test_compaction_keeps_totals_and_leaves_one_file_per_kind(
    dead_processes: Path, tmp_path: Path
) -> None:
    """36 dead files become 3 archives; every counter, histogram and gauge reads the same."""
    directory = copy(dead_processes, tmp_path)
    before = totals(directory)
    assert len(list(directory.glob("*.db"))) == 36
    assert multiproc.compact(directory) == 36
    assert sorted(p.name for p in directory.glob("*.db")) == [
        "counter_archive.db", "gauge_mostrecent_archive.db", "histogram_archive.db",
    ]  # fmt: skip
    assert totals(directory) == before
    assert before["app_iterations_total[('program', 'a')]"] == sum(n + 1 for n in range(0, 12, 2))


def test_archive_and_new_files_merge_again_exactly(dead_processes: Path, tmp_path: Path) -> None:
    """A second compaction folds new dead files into the archive without doubling it."""
    directory = copy(dead_processes, tmp_path)
    multiproc.compact(directory)
    run_worker(directory, "a", 5)
    before = totals(directory)
    multiproc.compact(directory)
    assert totals(directory) == before
    assert len(list(directory.glob("*.db"))) == 3


def test_mostrecent_gauge_keeps_the_newest_value(tmp_path: Path) -> None:
    """app_last_iteration_timestamp_seconds after compaction is the newest process's."""
    run_worker(tmp_path, "a", 1)
    run_worker(tmp_path, "a", 1)
    newest = max(
        s.value
        for f in multiproc.collect(tmp_path)
        for s in f.samples
        if s.name.endswith("seconds")
    )
    multiproc.compact(tmp_path)
    after = [
        s.value
        for f in multiproc.collect(tmp_path)
        for s in f.samples
        if s.name.endswith("seconds")
    ]
    assert after == [newest]


class SimulatedKillError(Exception):
    """Stands for a kill -9 at one file operation of the compaction."""


# 36 dead files: operation 1 commits the journal, 2-4 rename the archives into
# place, 5-40 delete the merged files, 41 removes the journal.
@pytest.mark.parametrize("step", [1, 2, 3, 4, 5, 6, 20, 40, 41])
def test_death_at_any_step_loses_and_doubles_nothing(
    dead_processes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: int
) -> None:
    """Compaction dying at its n-th rename/unlink: the next scrape and compaction stay exact."""
    directory = copy(dead_processes, tmp_path)
    before = totals(directory)
    calls = {"n": 0}
    real_replace, real_unlink = os.replace, Path.unlink

    def counted(real: Any) -> Any:
        def operation(*args: Any, **kwargs: Any) -> Any:
            calls["n"] += 1
            if calls["n"] == step:
                raise SimulatedKillError
            return real(*args, **kwargs)

        return operation

    monkeypatch.setattr(os, "replace", counted(real_replace))
    monkeypatch.setattr(Path, "unlink", counted(real_unlink))
    with pytest.raises(SimulatedKillError):
        multiproc.compact(directory)
    monkeypatch.undo()
    assert totals(directory) == before
    multiproc.compact(directory)
    assert totals(directory) == before
    assert len(list(directory.glob("*.db"))) == 3


def test_kill_9_of_the_compactor_while_scraping_keeps_totals(
    dead_processes: Path, tmp_path: Path
) -> None:
    """Real SIGKILLs of compactor processes at random moments, scrapes in between: exact."""
    directory = copy(dead_processes, tmp_path)
    before = totals(directory)
    code = (
        "import sys; from pathlib import Path; from common.multiproc import compact;"
        " compact(Path(sys.argv[1]))"
    )
    seen: list[dict[str, float]] = []
    stop = threading.Event()

    def scrape() -> None:
        while not stop.is_set():
            seen.append(totals(directory))

    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        for _ in range(15):
            run_worker(directory, "b", 3)
            expected = totals(directory)
            proc = subprocess.Popen([sys.executable, "-c", code, str(directory)], cwd=ROOT)
            threading.Event().wait(random.uniform(0.03, 0.09))  # noqa: S311 - timing, not crypto
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            assert totals(directory) == expected
    finally:
        stop.set()
        scraper.join(10)
    assert seen
    iterations = [t["app_iterations_total[('program', 'b')]"] for t in seen]
    assert iterations == sorted(iterations)
    assert before["app_iterations_total[('program', 'b')]"] <= iterations[0]


def test_damaged_file_of_a_dead_process_is_quarantined(tmp_path: Path) -> None:
    """A 0-byte or truncated file does not break the scrape; it is moved aside and reported."""
    run_worker(tmp_path, "a", 2)
    good = totals(tmp_path)
    (tmp_path / "counter_999999.db").write_bytes(b"")
    (tmp_path / "histogram_999998.db").write_bytes(b"\x40\x00\x00\x00\x00\x00\x00\x00\x09")
    reported: list[Path] = []
    assert totals_with(tmp_path, reported.append) == good
    assert sorted(p.name for p in reported) == ["counter_999999.db", "histogram_999998.db"]
    assert sorted(p.name for p in (tmp_path / "quarantine").iterdir()) == [
        "counter_999999.db", "histogram_999998.db",
    ]  # fmt: skip


def totals_with(directory: Path, on_bad_file: Any) -> dict[str, float]:
    """Like :func:`totals`, reporting damaged files to ``on_bad_file``."""
    return {
        f"{s.name}{sorted(s.labels.items())}": s.value
        for family in multiproc.collect(directory, on_bad_file)
        for s in family.samples
        if family.name != "app_last_iteration_timestamp_seconds"
    }


def test_damaged_file_of_a_live_process_is_skipped_not_moved(tmp_path: Path) -> None:
    """A live process's file being created (0 bytes) is left alone for the next scrape."""
    run_worker(tmp_path, "a", 2)
    mine = tmp_path / f"counter_{os.getpid()}.db"
    mine.write_bytes(b"")
    reported: list[Path] = []
    totals_with(tmp_path, reported.append)
    assert reported == []
    assert mine.exists()


def test_junk_files_and_journal_never_break_the_scrape(tmp_path: Path) -> None:
    """A foreign .db name, a wrongly shaped key, a garbage journal: quarantined, scrape exact."""
    run_worker(tmp_path, "a", 2)
    good = totals(tmp_path)
    live = next(tmp_path.glob("counter_*.db"))
    shutil.copy(live, tmp_path / "weird_1.db")
    shaped = tmp_path / "counter_999997.db"
    from prometheus_client.mmap_dict import MmapedDict

    wrong = MmapedDict(str(shaped))
    wrong.write_value('["oops"]', 1.0, 0.0)
    wrong.close()
    (tmp_path / multiproc.JOURNAL).write_text("garbage")
    reported: list[Path] = []
    assert totals_with(tmp_path, reported.append) == good
    multiproc.compact(tmp_path, reported.append)
    assert totals_with(tmp_path, reported.append) == good
    moved = sorted(p.name for p in (tmp_path / "quarantine").iterdir())
    assert moved == ["compaction.json", "counter_999997.db", "weird_1.db"]
