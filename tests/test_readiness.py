"""Readiness: fresh, stale, stopped and missing workers of both shapes; processes not running."""

from __future__ import annotations

from typing import Any

from services.metrics_exporter.readiness import Samples, readiness


def info(group: str, name: str, state: str, stop: float = 0) -> dict[str, Any]:
    """One process as supervisord's getAllProcessInfo reports it (the fields readiness reads)."""
    return {"group": group, "name": name, "statename": state, "stop": stop}


RUNNING = [info("app", "a", "RUNNING"), info("event_listener", "event_listener", "RUNNING")]


def ten(_name: str) -> float:
    """Every program's max age: 10 s."""
    return 10.0


def periodic(last: dict[str, float], up: dict[str, float] | None = None) -> Samples:
    """Samples of periodic workers only (no heartbeat series)."""
    return Samples(last_iteration=last, up=up if up is not None else dict.fromkeys(last, 1.0))


def judged(
    status: str, age: float | None, freshness: str | None = "last_iteration"
) -> dict[str, Any]:
    """A program's entry in the report, with the 10 s bound."""
    return {"status": status, "freshness": freshness, "age_seconds": age, "max_age_seconds": 10.0}


def test_all_fresh_is_ready() -> None:
    """Every worker up and younger than the max age: ready, nothing listed."""
    ready, report = readiness(
        ["a", "b"], periodic({"a": 95.0, "b": 100.0}), ten, now=100.0, processes=RUNNING
    )
    assert ready is True
    assert report["not_ready"] == []
    assert report["problems"] == []
    assert report["programs"]["a"] == judged("fresh", 5.0)


def test_stale_and_missing_are_named_with_age() -> None:
    """An old timestamp is stale with its age; no timestamp at all (or 0: never set) is missing."""
    samples = periodic({"a": 50.0, "b": 99.0, "d": 0.0})
    ready, report = readiness(["a", "b", "c", "d"], samples, ten, now=100.0, processes=RUNNING)
    assert ready is False
    assert report["not_ready"] == ["a", "c", "d"]
    assert report["problems"] == [
        "a is stale (last_iteration)",
        "c is missing (no heartbeat and no finished iteration yet)",
        "d is missing (no heartbeat and no finished iteration yet)",
    ]
    assert report["programs"]["a"] == judged("stale", 50.0)
    assert report["programs"]["c"] == judged("missing", None, None)


def test_long_running_worker_is_judged_by_its_heartbeat() -> None:
    """A worker with a heartbeat series is fresh by its heartbeat, whatever its last unit."""
    samples = Samples(
        last_iteration={"bot": 10.0}, last_heartbeat={"bot": 98.0, "idle": 0.0}, up={"bot": 1}
    )
    ready, report = readiness(["bot", "idle"], samples, ten, now=100.0, processes=RUNNING)
    assert report["programs"]["bot"] == judged("fresh", 2.0, "last_heartbeat")
    assert report["programs"]["idle"] == judged("missing", None, None)
    assert report["problems"] == ["idle is missing (no heartbeat and no finished iteration yet)"]
    assert ready is False


def test_each_program_has_its_own_max_age() -> None:
    """Each program's bound is its own: the same age is fresh for one, stale for another."""
    bounds = {"fast": 10.0, "slow": 3600.0}
    samples = periodic({"fast": 50.0, "slow": 50.0})
    ready, report = readiness(
        ["fast", "slow"], samples, bounds.__getitem__, now=100.0, processes=RUNNING
    )
    assert report["programs"]["fast"]["status"] == "stale"
    assert report["programs"]["slow"]["status"] == "fresh"
    assert report["programs"]["slow"]["max_age_seconds"] == 3600.0
    assert ready is False


def test_stopped_worker_is_not_ready_before_it_is_stale() -> None:
    """app_up 0 makes a worker "stopped" at once, even with a recent timestamp."""
    samples = periodic({"a": 99.0}, {"a": 0})
    ready, report = readiness(["a"], samples, ten, now=100.0, processes=RUNNING)
    assert ready is False
    assert report["programs"]["a"] == judged("stopped", 1.0)


def test_age_equal_to_max_is_still_fresh() -> None:
    """The bound is inclusive: age == max age is fresh."""
    assert readiness(["a"], periodic({"a": 90.0}), ten, now=100.0, processes=RUNNING)[0] is True


def test_a_process_not_running_is_not_ready() -> None:
    """Fresh workers, but supervisord has a process in BACKOFF: not ready, and it is named."""
    processes = [*RUNNING, info("app", "b", "BACKOFF", stop=90.0)]
    ready, report = readiness(["a"], periodic({"a": 99.0}), ten, now=100.0, processes=processes)
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
    samples = periodic({"a": 99.0})
    assert readiness(["a"], samples, ten, now=100.0, processes=first)[0] is True
    ready, report = readiness(["a"], samples, ten, now=100.0, processes=again)
    assert ready is False
    assert report["problems"] == ["app:b is STARTING again after it ended"]


def test_supervisord_unreachable_is_not_ready() -> None:
    """When supervisord cannot be asked, the reason is the problem."""
    ready, report = readiness(
        ["a"], periodic({"a": 99.0}), ten, now=100.0, processes="supervisord unreachable"
    )
    assert ready is False
    assert report["problems"] == ["supervisord unreachable"]


def test_freshness_unchecked_still_checks_processes() -> None:
    """With metrics off (no timestamps to read) only the processes are judged."""
    ready, report = readiness(["a"], None, ten, now=100.0, processes=RUNNING)
    assert ready is True
    assert report["programs"] == {}
    assert readiness(["a"], None, ten, now=100.0, processes=[])[1]["problems"] == [
        "supervisord runs no process"
    ]
