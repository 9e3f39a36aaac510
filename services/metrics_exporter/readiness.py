"""Readiness: every worker is fresh and supervisord runs every process.

A worker's *freshness* is its last heartbeat for a long-running worker (only
those write ``app_last_heartbeat_timestamp_seconds``) and its last finished
iteration for a periodic one (``app_last_iteration_timestamp_seconds``). It is
*fresh* when ``now - that timestamp`` is at most its program's
``health_max_age_seconds``; *stale* when older; *stopped* when its ``app_up``
is 0 (it stopped cleanly or crashed: no need to wait until it is stale);
*missing* when it has written neither yet. Only the workers the ``workers``
setting starts are judged. Every other process supervisord runs (the
exporter and the event listener; not the workers left unstarted) must be RUNNING, or STARTING
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

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

LAST_ITERATION = "app_last_iteration_timestamp_seconds"
LAST_HEARTBEAT = "app_last_heartbeat_timestamp_seconds"
UP = "app_up"


@dataclass(frozen=True)
class Samples:
    """``{program: value}`` of each gauge readiness reads (timestamps in Unix seconds)."""

    last_iteration: dict[str, float] = field(default_factory=dict)
    last_heartbeat: dict[str, float] = field(default_factory=dict)
    up: dict[str, float] = field(default_factory=dict)


def worker_samples(metric_families: Iterable[Any]) -> Samples:
    """The gauges readiness reads, from collected families.

    ``metric_families`` are prometheus-client ``Metric`` objects, e.g. from
    ``MultiProcessCollector.collect()``.
    """
    samples = Samples()
    found = {LAST_ITERATION: samples.last_iteration, LAST_HEARTBEAT: samples.last_heartbeat,
             UP: samples.up}  # fmt: skip
    for family in metric_families:
        if family.name in found:
            for sample in family.samples:
                program = sample.labels.get("program")
                if program is not None:
                    found[family.name][program] = sample.value
    return samples


def judge(name: str, samples: Samples, max_age_seconds: float, now: float) -> dict[str, Any]:
    """One worker's ``{"status", "freshness", "age_seconds", "max_age_seconds"}``.

    ``freshness`` is the gauge judged ("last_heartbeat" or "last_iteration"),
    None while the worker has written neither (missing).
    """
    freshness, stamp = None, None
    for gauge, values in ((LAST_HEARTBEAT, samples.last_heartbeat),
                          (LAST_ITERATION, samples.last_iteration)):  # fmt: skip
        if values.get(name):  # a mostrecent gauge never set is not exported (or 0)
            freshness, stamp = (
                gauge.removeprefix("app_").removesuffix("_timestamp_seconds"),
                values[name],
            )
            break
    age = None if stamp is None else round(max(0.0, now - stamp), 3)
    if age is None:
        status = "missing"
    elif samples.up.get(name) == 0:
        status = "stopped"
    else:
        status = "fresh" if age <= max_age_seconds else "stale"
    return {
        "status": status,
        "freshness": freshness,
        "age_seconds": age,
        "max_age_seconds": max_age_seconds,
    }


def readiness(
    workers: Iterable[str],
    samples: Samples | None,
    max_age_seconds: Callable[[str], float],
    *,
    now: float,
    processes: list[dict[str, Any]] | str,
    unjudged: frozenset[str] = frozenset(),
) -> tuple[bool, dict[str, Any]]:
    """Judge each worker and each process; return ``(ready, report)`` with a JSON-ready ``report``.

    ``samples`` is None when freshness is not checked (``metrics_enabled``
    false); ``max_age_seconds(program)`` is that program's bound. ``processes``
    is supervisord's ``getAllProcessInfo()`` (dicts with ``group``, ``name``,
    ``statename``, ``stop``), or why supervisord could not be asked;
    ``report["processes"]`` is ``{"group:name": state name}``; the programs in
    ``unjudged`` (the workers this container does not start) are listed there
    but never a problem, in whatever state an operator left them.
    ``report["programs"][name]`` is :func:`judge`'s dict (``status`` "fresh",
    "stale", "stopped" or "missing"; ``freshness`` "last_heartbeat" or
    "last_iteration"); ``report["not_ready"]`` lists the non-fresh workers;
    ``report["problems"]`` says in words what is wrong (empty when ready).
    """
    programs: dict[str, dict[str, Any]] = {}
    for name in workers:
        if samples is None:
            break
        programs[name] = judge(name, samples, max_age_seconds(name), now)
    not_ready = [name for name, state in programs.items() if state["status"] != "fresh"]
    problems = [_worker_problem(name, programs[name]) for name in not_ready]
    if isinstance(processes, str):
        problems.append(processes)
        states: dict[str, str] | str = processes
    else:
        states = {f"{p['group']}:{p['name']}": str(p["statename"]) for p in processes}
        problems += [
            _process_problem(p)
            for p in processes
            if not _process_up(p) and p["name"] not in unjudged
        ]
        if not processes:
            problems.append("supervisord runs no process")
    report = {
        "ready": not problems,
        "problems": problems,
        "not_ready": not_ready,
        "programs": programs,
        "processes": states,
    }
    return not problems, report


def _worker_problem(name: str, judged: dict[str, Any]) -> str:
    if judged["freshness"] is None:
        return f"{name} is missing (no heartbeat and no finished iteration yet)"
    return f"{name} is {judged['status']} ({judged['freshness']})"


def _process_up(info: dict[str, Any]) -> bool:
    return info["statename"] == "RUNNING" or (info["statename"] == "STARTING" and not info["stop"])


def _process_problem(info: dict[str, Any]) -> str:
    again = " again after it ended" if info["statename"] == "STARTING" else ""
    return f"{info['group']}:{info['name']} is {info['statename']}{again}"
