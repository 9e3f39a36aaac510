"""Readiness: whether every worker's last iteration is fresh.

A worker is *fresh* when ``now - app_last_iteration_timestamp_seconds`` is at
most ``health_max_age_seconds``; *stale* when older; *missing* when it has
never finished an iteration (no sample in the multiprocess directory).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

LAST_ITERATION = "app_last_iteration_timestamp_seconds"


def last_iterations(metric_families: Iterable[Any]) -> dict[str, float]:
    """``{program: unix seconds}`` from collected metric families (prometheus-client ``Metric``)."""
    found: dict[str, float] = {}
    for family in metric_families:
        if family.name == LAST_ITERATION:
            for sample in family.samples:
                program = sample.labels.get("program")
                if program is not None:
                    found[program] = max(sample.value, found.get(program, float("-inf")))
    return found


def readiness(
    workers: Iterable[str], last: dict[str, float], max_age_seconds: float, now: float
) -> tuple[bool, dict[str, Any]]:
    """Judge each worker; return ``(ready, report)`` with a JSON-ready ``report``.

    ``report["programs"][name]`` is ``{"status": "fresh"|"stale"|"missing",
    "age_seconds": float | None}``; ``report["not_ready"]`` lists the others.
    """
    programs: dict[str, dict[str, Any]] = {}
    for name in workers:
        stamp = last.get(name)
        if stamp is None:
            programs[name] = {"status": "missing", "age_seconds": None}
            continue
        age = round(max(0.0, now - stamp), 3)
        programs[name] = {
            "status": "fresh" if age <= max_age_seconds else "stale",
            "age_seconds": age,
        }
    not_ready = [name for name, state in programs.items() if state["status"] != "fresh"]
    report = {
        "ready": not not_ready,
        "max_age_seconds": max_age_seconds,
        "not_ready": not_ready,
        "programs": programs,
    }
    return not not_ready, report
