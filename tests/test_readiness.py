"""Readiness: fresh, stale, stopped and missing workers; processes supervisord does not run."""

from __future__ import annotations

from services.metrics_exporter.readiness import readiness

RUNNING = {"app:a": "RUNNING", "event_listener:event_listener": "RUNNING"}


def test_all_fresh_is_ready() -> None:
    """Every worker up and younger than the max age: ready, nothing listed."""
    ready, report = readiness(
        ["a", "b"], {"a": 95.0, "b": 100.0}, {"a": 1}, 10.0, now=100.0, processes=RUNNING
    )
    assert ready is True
    assert report["not_ready"] == []
    assert report["problems"] == []
    assert report["programs"]["a"] == {"status": "fresh", "age_seconds": 5.0}


def test_stale_and_missing_are_named_with_age() -> None:
    """An old timestamp is stale with its age; no timestamp at all is missing."""
    ready, report = readiness(
        ["a", "b", "c"], {"a": 50.0, "b": 99.0}, {}, 10.0, now=100.0, processes=RUNNING
    )
    assert ready is False
    assert report["not_ready"] == ["a", "c"]
    assert report["problems"] == ["a is stale", "c is missing"]
    assert report["programs"]["a"] == {"status": "stale", "age_seconds": 50.0}
    assert report["programs"]["c"] == {"status": "missing", "age_seconds": None}


def test_stopped_worker_is_not_ready_before_it_is_stale() -> None:
    """app_up 0 makes a worker "stopped" at once, even with a recent timestamp."""
    ready, report = readiness(["a"], {"a": 99.0}, {"a": 0}, 10.0, now=100.0, processes=RUNNING)
    assert ready is False
    assert report["programs"]["a"] == {"status": "stopped", "age_seconds": 1.0}


def test_age_equal_to_max_is_still_fresh() -> None:
    """The bound is inclusive: age == max age is fresh."""
    assert readiness(["a"], {"a": 90.0}, {"a": 1}, 10.0, now=100.0, processes=RUNNING)[0] is True


def test_a_process_not_running_is_not_ready() -> None:
    """Fresh workers, but supervisord has a process in BACKOFF: not ready, and it is named."""
    processes = RUNNING | {"app:b": "BACKOFF"}
    ready, report = readiness(["a"], {"a": 99.0}, {"a": 1}, 10.0, now=100.0, processes=processes)
    assert ready is False
    assert report["problems"] == ["app:b is BACKOFF"]
    assert report["processes"] == processes


def test_a_starting_process_is_not_a_problem() -> None:
    """STARTING (alive, younger than startsecs) counts as up: no 2 s wait at every start."""
    processes = RUNNING | {"app:b": "STARTING"}
    ready, _ = readiness(["a"], {"a": 99.0}, {"a": 1}, 10.0, now=100.0, processes=processes)
    assert ready is True


def test_supervisord_unreachable_is_not_ready() -> None:
    """When supervisord cannot be asked, the reason is the problem."""
    ready, report = readiness(
        ["a"], {"a": 99.0}, {"a": 1}, 10.0, now=100.0, processes="supervisord unreachable"
    )
    assert ready is False
    assert report["problems"] == ["supervisord unreachable"]


def test_freshness_unchecked_still_checks_processes() -> None:
    """With metrics off (no timestamps to read) only the processes are judged."""
    ready, report = readiness(["a"], None, {}, 10.0, now=100.0, processes=RUNNING)
    assert ready is True
    assert report["programs"] == {}
    assert readiness(["a"], None, {}, 10.0, now=100.0, processes={})[1]["problems"] == [
        "supervisord runs no process"
    ]
