"""Readiness: whether every worker is running and its last iteration is fresh.

A worker is *fresh* when ``now - app_last_iteration_timestamp_seconds`` is at
most ``health_max_age_seconds``; *stale* when older; *stopped* when its
``app_up`` is 0 (it stopped cleanly or crashed: no need to wait until it is
stale); *missing* when it has never finished an iteration.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

LAST_ITERATION = "app_last_iteration_timestamp_seconds"
UP = "app_up"


def worker_samples(metric_families: Iterable[Any]) -> tuple[dict[str, float], dict[str, float]]:
    """``({program: last iteration, unix s}, {program: app_up})`` from collected families.

    ``metric_families`` are prometheus-client ``Metric`` objects, e.g. from
    ``MultiProcessCollector.collect()``.
    """
    found: dict[str, dict[str, float]] = {LAST_ITERATION: {}, UP: {}}
    for family in metric_families:
        if family.name in found:
            for sample in family.samples:
                program = sample.labels.get("program")
                if program is not None:
                    found[family.name][program] = sample.value
    return found[LAST_ITERATION], found[UP]


def readiness(
    workers: Iterable[str],
    last: dict[str, float],
    up: dict[str, float],
    max_age_seconds: float,
    now: float,
) -> tuple[bool, dict[str, Any]]:
    """Judge each worker; return ``(ready, report)`` with a JSON-ready ``report``.

    ``report["programs"][name]`` is ``{"status": "fresh"|"stale"|"stopped"|"missing",
    "age_seconds": float | None}``; ``report["not_ready"]`` lists the non-fresh ones.
    """
    programs: dict[str, dict[str, Any]] = {}
    for name in workers:
        stamp = last.get(name)
        age = None if stamp is None else round(max(0.0, now - stamp), 3)
        if age is None:
            status = "missing"
        elif up.get(name) == 0:
            status = "stopped"
        else:
            status = "fresh" if age <= max_age_seconds else "stale"
        programs[name] = {"status": status, "age_seconds": age}
    not_ready = [name for name, state in programs.items() if state["status"] != "fresh"]
    report = {
        "ready": not not_ready,
        "max_age_seconds": max_age_seconds,
        "not_ready": not_ready,
        "programs": programs,
    }
    return not not_ready, report
