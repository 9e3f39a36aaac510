"""The workers' Prometheus metrics, in prometheus-client's multiprocess mode.

prometheus-client chooses multiprocess mode when ``prometheus_client`` is first
imported, if ``PROMETHEUS_MULTIPROC_DIR`` is set (client_python docs,
"Multiprocess Mode"). So this module imports it only inside
:func:`worker_metrics`, after :func:`check_multiproc_dir`. Every value is a
memory-mapped file ``<kind>_<pid>.db`` in that directory; the exporter merges
them. Each metric carries the supervisord ``program`` label.

Gauge modes, chosen on purpose (a gauge's default, ``all``, would leak a ``pid``
label and keep one series per dead process):

- ``app_last_iteration_timestamp_seconds``: ``mostrecent`` -- the newest write
  across all processes of a program wins, so a restarted worker continues the
  series and a stopped one keeps its last timestamp (its age grows: stale).
- ``app_last_heartbeat_timestamp_seconds``: ``mostrecent``, as above; only
  long-running workers (``serve``) have it, so its presence says which
  freshness readiness judges.
- ``app_up``: ``mostrecent`` -- 1 written at start, 0 at clean stop or crash;
  the newest write is the program's state. (A worker killed with SIGKILL and
  never restarted keeps its last 1: health also checks supervisord's state.)

Counters and the histogram are summed over every process file, dead ones
included, so totals never go down when a worker restarts.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import FatalError

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0)


class MetricsSetupError(FatalError):
    """The multiprocess directory is missing: metrics would be silently lost."""


def check_multiproc_dir() -> Path:
    """Return ``$PROMETHEUS_MULTIPROC_DIR``; raise :class:`MetricsSetupError` if unusable."""
    value = os.environ.get(MULTIPROC_ENV, "")
    if not value or not os.path.isdir(value):
        raise MetricsSetupError(
            f"env {MULTIPROC_ENV} is not set or not a directory ({value!r}); "
            "start the programs through app-entrypoint"
        )
    return Path(value)


_families: dict[str, Any] = {}


def _metric_families() -> dict[str, Any]:
    """Create the metric families once per process (unregistered: nobody serves them here)."""
    if not _families:
        from prometheus_client import Counter, Gauge, Histogram

        labels = ["program"]
        _families.update(
            starts=Counter(
                "app_starts",
                "Times the worker's loop started: 1 plus its restarts.",
                labels,
                registry=None,
            ),
            iterations=Counter(
                "app_iterations", "Loop iterations finished (ok or failed).", labels, registry=None
            ),
            errors=Counter(
                "app_iteration_errors",
                "Loop iterations whose run_once raised an exception.",
                labels,
                registry=None,
            ),
            duration=Histogram(
                "app_iteration_duration_seconds",
                "Wall time of one run_once call, in seconds.",
                labels,
                buckets=DURATION_BUCKETS,
                registry=None,
            ),
            last=Gauge(
                "app_last_iteration_timestamp_seconds",
                "Unix time (seconds) when the last iteration finished.",
                labels,
                multiprocess_mode="mostrecent",
                registry=None,
            ),
            heartbeat=Gauge(
                "app_last_heartbeat_timestamp_seconds",
                "Unix time (seconds) of a long-running worker's last heartbeat.",
                labels,
                multiprocess_mode="mostrecent",
                registry=None,
            ),
            up=Gauge(
                "app_up",
                "1 while the worker's loop runs, 0 after it stopped.",
                labels,
                multiprocess_mode="mostrecent",
                registry=None,
            ),
        )
    return _families


@dataclass
class WorkerMetrics:
    """One program's metric children; ``enabled=False`` makes every call a no-op.

    ``heartbeats`` (long-running workers) creates the heartbeat series at start,
    at 0 ("never yet").
    """

    program: str
    enabled: bool = True
    heartbeats: bool = False

    def __post_init__(self) -> None:
        if self.enabled:
            check_multiproc_dir()
            fam = _metric_families()
            self._iterations = fam["iterations"].labels(self.program)
            self._errors = fam["errors"].labels(self.program)
            self._duration = fam["duration"].labels(self.program)
            self._last = fam["last"].labels(self.program)
            self._up = fam["up"].labels(self.program)
            self._starts = fam["starts"].labels(self.program)
            self._heartbeat = fam["heartbeat"].labels(self.program) if self.heartbeats else None

    def started(self) -> None:
        """Count a start and set ``app_up`` to 1."""
        if self.enabled:
            self._starts.inc()
            self._up.set(1)

    def stopped(self) -> None:
        """Set ``app_up`` to 0 (clean stop or crash)."""
        if self.enabled:
            self._up.set(0)

    def heartbeat(self) -> None:
        """Stamp the heartbeat gauge with the current time (long-running workers only)."""
        if self.enabled and self._heartbeat is not None:
            self._heartbeat.set(time.time())

    def iteration_finished(self, seconds: float, failed: bool) -> None:
        """Count one iteration that took ``seconds`` and stamp its end time."""
        if self.enabled:
            self._iterations.inc()
            if failed:
                self._errors.inc()
            self._duration.observe(seconds)
            self._last.set(time.time())


@functools.cache
def process_exits_counter() -> Any:
    """``app_process_exits_total{program, expected}``: exits supervisord reported (listener).

    Created on first call (one per process).
    """
    return _unregistered_counter(
        "app_process_exits",
        'Process exits seen by supervisord; expected="false" means a crash or kill.',
        ("program", "expected"),
    )


@functools.cache
def watchdog_restarts_counter() -> Any:
    """``app_watchdog_restarts_total{program}``: hung workers restarted (listener).

    Created on first call (one per process).
    """
    return _unregistered_counter(
        "app_watchdog_restarts",
        "Workers restarted by the watchdog: no progress for watchdog_seconds.",
        ("program",),
    )


@functools.cache
def quarantined_files_counter() -> Any:
    """``app_metric_files_quarantined_total``: damaged files set aside (exporter, listener).

    Created on first call (one per process).
    """
    return _unregistered_counter(
        "app_metric_files_quarantined",
        "Damaged files of dead processes moved out of the multiprocess directory.",
    )


def _unregistered_counter(name: str, documentation: str, labels: tuple[str, ...] = ()) -> Any:
    """A multiprocess-mode Counter kept out of any registry (the exporter merges the files)."""
    check_multiproc_dir()  # before prometheus_client is first imported
    from prometheus_client import Counter

    return Counter(name, documentation, labels, registry=None)
