"""Readiness: fresh, stale, stopped and missing workers; processes supervisord does not run."""

from __future__ import annotations

from typing import Any

from services.metrics_exporter.readiness import readiness


def info(group: str, name: str, state: str, stop: float = 0) -> dict[str, Any]:
    """One process as supervisord's getAllProcessInfo reports it (the fields readiness reads)."""
    return {"group": group, "name": name, "statename": state, "stop": stop}


RUNNING = [info("app", "a", "RUNNING"), info("event_listener", "event_listener", "RUNNING")]


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
    processes = [*RUNNING, info("app", "b", "BACKOFF", stop=90.0)]
    ready, report = readiness(["a"], {"a": 99.0}, {"a": 1}, 10.0, now=100.0, processes=processes)
    assert ready is False
    assert report["problems"] == ["app:b is BACKOFF"]
    assert report["processes"] == {
        "app:a": "RUNNING",
        "event_listener:event_listener": "RUNNING",
        "app:b": "BACKOFF",
    }


def test_a_first_start_is_up_a_restart_is_not() -> None:
    """STARTING for the first time counts as up (no 2 s wait); STARTING after an exit does not."""
    first = [*RUNNING, info("app", "b", "STARTING")]
    again = [*RUNNING, info("app", "b", "STARTING", stop=95.0)]
    assert readiness(["a"], {"a": 99.0}, {"a": 1}, 10.0, now=100.0, processes=first)[0] is True
    ready, report = readiness(["a"], {"a": 99.0}, {"a": 1}, 10.0, now=100.0, processes=again)
    assert ready is False
    assert report["problems"] == ["app:b is STARTING again after it ended"]


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
    assert readiness(["a"], None, {}, 10.0, now=100.0, processes=[])[1]["problems"] == [
        "supervisord runs no process"
    ]
