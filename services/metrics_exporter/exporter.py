"""The exporter's WSGI app and HTTP server (stdlib ``wsgiref``, threaded).

Routes:

- ``GET /metrics``: every process's metrics from the multiprocess directory
  (:class:`DirectoryCollector`), supervisord's view of each process
  (:class:`SupervisorCollector`), each process's CPU, memory, file
  descriptors and threads (:mod:`services.metrics_exporter.resources`) and
  ``app_build_info``; text or OpenMetrics format and gzip as negotiated by
  ``prometheus_client.make_wsgi_app``. 404 when ``metrics_enabled`` is false.
- ``GET /healthz``: 200 while this process serves HTTP.
- ``GET /readyz``: 200 when every worker that ``workers`` starts is fresh and
  supervisord runs every process (the workers not started aside), else 503;
  JSON from :func:`services.metrics_exporter.readiness.readiness`.
  ``app-health`` prints this JSON.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer  # fenced: tests/test_fences.py
from prometheus_client.metrics_core import GaugeMetricFamily, InfoMetricFamily, Metric

from common import multiproc
from common.config import Settings
from common.supervisor_rpc import RPC_ERRORS, SupervisorClient, describe
from services.metrics_exporter.readiness import readiness, worker_samples
from services.metrics_exporter.resources import ResourceReader

log = logging.getLogger("exporter")
StartResponse = Callable[..., Any]


class BuildInfoCollector:
    """Yields ``app_build_info{version,commit,env} 1`` from this process's settings.

    Collected here, not written to the multiprocess directory: it is constant for
    the container and every process shares the same settings.
    """

    def __init__(self, settings: Settings) -> None:
        self._labels = {"version": settings.version, "commit": settings.commit, "env": settings.env}

    def collect(self) -> Iterator[Metric]:
        """Yield the one info metric."""
        yield InfoMetricFamily("app_build", "Build and deployment of this container.", self._labels)


class WorkersCollector:
    """Yields ``app_worker_expected{program} 1`` for each worker the ``workers`` setting starts.

    Alert rules and the dashboard join on it: which workers must report is
    known here, not kept in a list in the rules (``absent()`` cannot know it).
    """

    def __init__(self, settings: Settings) -> None:
        self.workers = settings.workers

    def collect(self) -> Iterator[Metric]:
        """Yield the one gauge family."""
        expected = GaugeMetricFamily(
            "app_worker_expected",
            "1 for each worker program this container starts (the workers setting).",
            labels=["program"],
        )
        for name in self.workers:
            expected.add_metric([name], 1)
        yield expected


class DirectoryCollector:
    """Every process's metrics from the multiprocess directory (:func:`common.multiproc.collect`).

    A damaged file of a dead process is quarantined, counted in
    ``app_metric_files_quarantined_total`` and named in a warning line.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._bad_file = multiproc.quarantine_reporter(log)

    def collect(self) -> Iterable[Metric]:
        """Merge every readable file, under the directory's lock."""
        result: Iterable[Metric] = multiproc.collect(self.directory, self._bad_file)
        return result


class SupervisorCollector:
    """Each process's state as supervisord sees it, asked at scrape time (1 s at most).

    ``app_supervisor_up`` is 1 when supervisord answered; then per program
    ``app_process_running`` (1 or 0), ``app_process_state{state}`` (1 for the
    current state) and ``app_process_start_time_seconds``. Exits are counted by
    the event listener (``app_process_exits_total``). Then the ``process_*``
    families (:class:`~services.metrics_exporter.resources.ResourceReader`) of
    every process that has a pid, and of ``supervisord_pid`` as program
    ``supervisord``.
    """

    TIMEOUT_SECONDS = 1.0

    def __init__(self, supervisor: SupervisorClient, supervisord_pid: int | None = None) -> None:
        self.supervisor = supervisor
        self.supervisord_pid = supervisord_pid
        self.resources = ResourceReader()

    def collect(self) -> Iterator[Metric]:
        """Ask supervisord; a timeout or error yields ``app_supervisor_up 0`` only."""
        up = GaugeMetricFamily("app_supervisor_up", "1 if supervisord answered this scrape.")
        infos = process_infos(self.supervisor)
        if isinstance(infos, str):
            log.warning("%s", infos, extra={"event": "supervisor_down"})
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        running = GaugeMetricFamily(
            "app_process_running",
            "1 while supervisord has the program RUNNING.",
            labels=["program"],
        )
        state = GaugeMetricFamily(
            "app_process_state", "1 for the program's current supervisord state.",
            labels=["program", "state"],
        )  # fmt: skip
        started = GaugeMetricFamily(
            "app_process_start_time_seconds",
            "Unix time supervisord last started the program.",
            labels=["program"],
        )
        pids = {} if self.supervisord_pid is None else {"supervisord": self.supervisord_pid}
        for info in infos:
            name = str(info["name"])
            running.add_metric([name], 1 if info["statename"] == "RUNNING" else 0)
            state.add_metric([name, str(info["statename"])], 1)
            started.add_metric([name], float(info["start"]))
            if int(info.get("pid", 0)) > 0:
                pids[name] = int(info["pid"])
        yield from (up, running, state, started)
        yield from self.resources.families(pids)


def process_infos(supervisor: SupervisorClient) -> list[dict[str, Any]] | str:
    """supervisord's ``getAllProcessInfo()``, or why it did not answer."""
    try:
        return supervisor.process_infos()
    except RPC_ERRORS as exc:
        return f"supervisord unreachable: {describe(exc)}"


def _json(start_response: StartResponse, status: str, body: dict[str, Any]) -> list[bytes]:
    data = json.dumps(body).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
    )
    return [data]


def make_app(
    settings: Settings, multiproc_dir: Path
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """Build the WSGI app; every request reads the files in ``multiproc_dir`` afresh."""
    collector = DirectoryCollector(multiproc_dir)
    registry = CollectorRegistry()
    registry.register(collector)
    registry.register(BuildInfoCollector(settings))
    registry.register(WorkersCollector(settings))
    supervisor = SupervisorClient(settings.runtime_dir, SupervisorCollector.TIMEOUT_SECONDS)
    # Under supervisord (it sets SUPERVISOR_ENABLED for its children), the parent is supervisord.
    parent = os.getppid() if os.environ.get("SUPERVISOR_ENABLED") else None
    registry.register(SupervisorCollector(supervisor, parent))
    not_started = frozenset(settings.programs) - frozenset(settings.workers)
    metrics_app = make_wsgi_app(registry)

    def ready_report() -> tuple[str, dict[str, Any]]:
        samples = worker_samples(collector.collect()) if settings.metrics_enabled else None
        ready, report = readiness(
            settings.workers,
            samples,
            lambda name: settings.program(name).health_max_age_seconds,
            now=time.time(),
            processes=process_infos(supervisor),
            unjudged=not_started,
        )
        return ("200 OK" if ready else "503 Service Unavailable"), report

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        route = environ.get("PATH_INFO", "")
        try:
            if route == "/metrics" and settings.metrics_enabled:
                return metrics_app(environ, start_response)  # type: ignore[no-any-return]
            if route == "/healthz":
                return _json(start_response, "200 OK", {"status": "ok"})
            if route == "/readyz":
                return _json(start_response, *ready_report())
            return _json(start_response, "404 Not Found", {"error": f"no route {route!r}"})
        except Exception:
            log.exception("request %s failed", route, extra={"event": "request_failed"})
            return _json(start_response, "500 Internal Server Error", {"error": "internal error"})

    return app


class _QuietHandler(WSGIRequestHandler):
    """No per-request lines on stderr (they would not be JSON)."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


class _Server(ThreadingWSGIServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """Log a failed connection as JSON instead of printing a traceback to stderr."""
        log.warning("connection from %s failed", client_address, exc_info=True)


class _Server6(_Server):
    address_family = socket.AF_INET6


def make_http_server(settings: Settings, multiproc_dir: Path) -> WSGIServer:
    """Bind ``metrics_host:metrics_port`` (IPv6 if the host has a colon).

    Raises :class:`OSError` if the port is taken or the host cannot be bound.
    """
    return make_server(
        settings.metrics_host,
        settings.metrics_port,
        make_app(settings, multiproc_dir),
        server_class=_Server6 if ":" in settings.metrics_host else _Server,
        handler_class=_QuietHandler,
    )
