"""Readiness: every worker's last iteration is fresh and supervisord runs every process.

A worker is *fresh* when ``now - app_last_iteration_timestamp_seconds`` is at
most ``health_max_age_seconds``; *stale* when older; *stopped* when its
``app_up`` is 0 (it stopped cleanly or crashed: no need to wait until it is
stale); *missing* when it has never finished an iteration. Every process
supervisord runs (programs and the event listener) must be RUNNING, or STARTING
for the first time: supervisord calls a process RUNNING only once it has lived
``startsecs`` (2 s), and requiring that would hold every start of the
container back by 2 s. A process STARTING again after it ended (``stop`` > 0 in
supervisord's process info) is restarting, not ready. (A crash loop slower
than ``startsecs`` is RUNNING between its crashes and then looks ready; each
start counts in ``app_starts_total``, which the ``AppWorkerRestarting`` alert
in ``deploy/prometheus/alerts.yml`` watches.) This one
judgement serves ``/readyz`` and, through it, ``app-health``.
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
    last: dict[str, float] | None,
    up: dict[str, float],
    max_age_seconds: float,
    *,
    now: float,
    processes: list[dict[str, Any]] | str,
) -> tuple[bool, dict[str, Any]]:
    """Judge each worker and each process; return ``(ready, report)`` with a JSON-ready ``report``.

    ``last`` is None when freshness is not checked (``metrics_enabled`` false).
    ``processes`` is supervisord's ``getAllProcessInfo()`` (dicts with ``group``,
    ``name``, ``statename``, ``stop``), or why supervisord could not be asked;
    ``report["processes"]`` is ``{"group:name": state name}``. ``report["programs"][name]`` is
    ``{"status": "fresh"|"stale"|"stopped"|"missing", "age_seconds": float | None}``;
    ``report["not_ready"]`` lists the non-fresh workers; ``report["problems"]``
    says in words what is wrong (empty when ready).
    """
    programs: dict[str, dict[str, Any]] = {}
    for name in workers:
        if last is None:
            break
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
    problems = [f"{name} is {programs[name]['status']}" for name in not_ready]
    if isinstance(processes, str):
        problems.append(processes)
        states: dict[str, str] | str = processes
    else:
        states = {f"{p['group']}:{p['name']}": str(p["statename"]) for p in processes}
        problems += [_process_problem(p) for p in processes if not _process_up(p)]
        if not processes:
            problems.append("supervisord runs no process")
    report = {
        "ready": not problems,
        "problems": problems,
        "max_age_seconds": max_age_seconds if last is not None else None,
        "not_ready": not_ready,
        "programs": programs,
        "processes": states,
    }
    return not problems, report


def _process_up(info: dict[str, Any]) -> bool:
    return info["statename"] == "RUNNING" or (info["statename"] == "STARTING" and not info["stop"])


def _process_problem(info: dict[str, Any]) -> str:
    again = " again after it ended" if info["statename"] == "STARTING" else ""
    return f"{info['group']}:{info['name']} is {info['statename']}{again}"
