"""Readiness: fresh, stale, stopped and missing workers."""

from __future__ import annotations

from services.metrics_exporter.readiness import readiness


def test_all_fresh_is_ready() -> None:
    """Every worker up and younger than the max age: ready, nothing listed."""
    ready, report = readiness(["a", "b"], {"a": 95.0, "b": 100.0}, {"a": 1}, 10.0, now=100.0)
    assert ready is True
    assert report["not_ready"] == []
    assert report["programs"]["a"] == {"status": "fresh", "age_seconds": 5.0}


def test_stale_and_missing_are_named_with_age() -> None:
    """An old timestamp is stale with its age; no timestamp at all is missing."""
    ready, report = readiness(["a", "b", "c"], {"a": 50.0, "b": 99.0}, {}, 10.0, now=100.0)
    assert ready is False
    assert report["not_ready"] == ["a", "c"]
    assert report["programs"]["a"] == {"status": "stale", "age_seconds": 50.0}
    assert report["programs"]["c"] == {"status": "missing", "age_seconds": None}


def test_stopped_worker_is_not_ready_before_it_is_stale() -> None:
    """app_up 0 makes a worker "stopped" at once, even with a recent timestamp."""
    ready, report = readiness(["a"], {"a": 99.0}, {"a": 0}, 10.0, now=100.0)
    assert ready is False
    assert report["programs"]["a"] == {"status": "stopped", "age_seconds": 1.0}


def test_age_equal_to_max_is_still_fresh() -> None:
    """The bound is inclusive: age == max age is fresh."""
    assert readiness(["a"], {"a": 90.0}, {"a": 1}, 10.0, now=100.0)[0] is True
