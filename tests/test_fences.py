"""Fences: every third-party internal the runtime leans on still has the shape it relies on.

No public API serves these (each use says why, and points here). A release of
supervisor or prometheus-client that renames or reshapes one fails here, with
the library, its installed version and the feature of ours that would break,
before the first sign would be lost counts or a container that no longer stops.
Fast: no process is started.
"""

from __future__ import annotations

import inspect
import json
from importlib.metadata import version
from pathlib import Path
from typing import Any


def fence(library: str, what: str, feature: str) -> str:
    """The failure message: library and installed version, the internal, what of ours breaks."""
    return f"{library} {version(library)}: {what} changed; breaks {feature}"


def parameters(function: Any) -> list[str]:
    """The parameter names of ``function``, in order."""
    return list(inspect.signature(function).parameters)


# --- supervisor ---------------------------------------------------------------------


def test_supervisor_poller_poll_takes_a_timeout() -> None:
    """entrypoint.fastloop and entrypoint.workers wrap ``options.poller.poll(timeout)``."""
    from supervisor import options, poller

    message = fence(
        "supervisor", "options.poller / Poller.poll(timeout)", "fast stop, the watchdog"
    )
    assert isinstance(poller.Poller, type), message
    assert issubclass(poller.Poller, poller.BasePoller), message
    poll_method = inspect.getattr_static(poller.Poller, "poll")
    assert parameters(poll_method) == ["self", "timeout"], message
    assert "self.poller = poller.Poller(self)" in inspect.getsource(options.ServerOptions), message


def test_supervisor_mood_is_an_ordered_state_on_options() -> None:
    """entrypoint.pid1 and workers read and set ``options.mood`` (SHUTDOWN < RUNNING)."""
    from supervisor import supervisord
    from supervisor.states import SupervisorStates

    message = fence("supervisor", "options.mood / SupervisorStates", "fail_fast, the early stop")
    assert SupervisorStates.SHUTDOWN < SupervisorStates.RUNNING, message
    source = inspect.getsource(supervisord.Supervisor)
    assert "self.options.mood < SupervisorStates.RUNNING" in source, message
    assert "self.options.mood = SupervisorStates.SHUTDOWN" in source, message


def test_supervisor_process_groups_and_subprocess_methods() -> None:
    """entrypoint.workers spawns, watches and gives up processes as supervisord itself does."""
    from supervisor import process, supervisord
    from supervisor.states import ProcessStates

    message = fence(
        "supervisor",
        "Supervisor.process_groups / Subprocess.spawn, change_state, give_up, laststart",
        "starting the chosen workers, the watchdog's FATAL",
    )
    assert "self.process_groups = {}" in inspect.getsource(supervisord.Supervisor), message
    subprocess_class = process.Subprocess
    assert parameters(subprocess_class.spawn) == ["self"], message
    assert parameters(subprocess_class.change_state)[:2] == ["self", "new_state"], message
    assert parameters(subprocess_class.give_up) == ["self"], message
    assert parameters(subprocess_class.get_state) == ["self"], message
    assert subprocess_class.laststart == 0, message  # "0 if never" started
    assert hasattr(process.ProcessGroupBase, "__init__"), message
    assert "self.processes = {}" in inspect.getsource(process.ProcessGroupBase), message
    for state in ("STOPPED", "BACKOFF", "STOPPING", "RUNNING", "FATAL"):
        assert hasattr(ProcessStates, state), message


def test_supervisor_events_notify_subscribe_and_remote_communication() -> None:
    """The watchdog hands its lines to the listener as REMOTE_COMMUNICATION events."""
    from supervisor import events

    message = fence(
        "supervisor",
        "events.notify / subscribe / RemoteCommunicationEvent(type, data)",
        "the watchdog's lines and app_watchdog_restarts_total, fail_fast",
    )
    assert parameters(events.notify) == ["event"], message
    assert parameters(events.subscribe) == ["type", "callback"], message
    seen: list[Any] = []
    events.subscribe(events.RemoteCommunicationEvent, seen.append)
    try:
        events.notify(events.RemoteCommunicationEvent("watchdog_restart", '{"a": 1}'))
    finally:
        events.callbacks.remove((events.RemoteCommunicationEvent, seen.append))
    [event] = seen
    assert (event.type, event.data) == ("watchdog_restart", '{"a": 1}'), message
    assert issubclass(events.ProcessStateFatalEvent, events.ProcessStateEvent), message


# --- prometheus-client ----------------------------------------------------------------


def test_mmap_dict_round_trip_and_key_format(tmp_path: Path) -> None:
    """common.multiproc compacts with MmapedDict: keys are JSON [metric, sample, labels, help]."""
    from prometheus_client import mmap_dict

    message = fence(
        "prometheus-client",
        "mmap_dict.MmapedDict / read_all_values_from_file / mmap_key",
        "compaction of dead processes' files (exact counters), the watchdog's stamps",
    )
    key = mmap_dict.mmap_key("app_x", "app_x_total", ["program"], ["w"], "help text")
    assert json.loads(key) == ["app_x", "app_x_total", {"program": "w"}, "help text"], message
    path = tmp_path / "counter_1.db"
    written = mmap_dict.MmapedDict(str(path))
    written.write_value(key, 3.5, 12.0)
    written.close()
    values = list(mmap_dict.MmapedDict.read_all_values_from_file(str(path)))
    assert [(k, v, t) for k, v, t, _pos in values] == [(key, 3.5, 12.0)], message


def test_multiprocess_collector_merge_is_a_static_function_of_files(tmp_path: Path) -> None:
    """The exporter calls MultiProcessCollector.merge(files) on the files it chose."""
    from prometheus_client import mmap_dict
    from prometheus_client.multiprocess import MultiProcessCollector

    message = fence(
        "prometheus-client",
        "MultiProcessCollector.merge(files, accumulate=True)",
        "/metrics (the exporter's scrape, quarantine of damaged files)",
    )
    assert isinstance(inspect.getattr_static(MultiProcessCollector, "merge"), staticmethod), message
    assert parameters(MultiProcessCollector.merge) == ["files", "accumulate"], message
    for pid, amount in ((1, 2.0), (2, 3.0)):
        dict_file = mmap_dict.MmapedDict(str(tmp_path / f"counter_{pid}.db"))
        key = mmap_dict.mmap_key("app_x", "app_x_total", ["program"], ["w"], "h")
        dict_file.write_value(key, amount, 0.0)
        dict_file.close()
    [metric] = MultiProcessCollector.merge(sorted(str(p) for p in tmp_path.glob("*.db")))
    assert [(s.name, s.value) for s in metric.samples] == [("app_x_total", 5.0)], message


def test_threading_wsgi_server_is_importable_from_exposition() -> None:
    """The exporter's HTTP server subclasses exposition.ThreadingWSGIServer (not in __all__)."""
    import socketserver
    from wsgiref.simple_server import WSGIServer

    from prometheus_client import exposition

    message = fence(
        "prometheus-client", "exposition.ThreadingWSGIServer", "the exporter's /metrics server"
    )
    server = getattr(exposition, "ThreadingWSGIServer", None)
    assert isinstance(server, type), message
    assert issubclass(server, socketserver.ThreadingMixIn), message
    assert issubclass(server, WSGIServer), message
    assert server.daemon_threads is True, message


# --- the standard library -------------------------------------------------------------


def test_logger_make_record_signature() -> None:
    """common.logs replaces Logger.makeRecord process-wide with one of the same signature."""
    from common import logs

    expected = ["self", "name", "level", "fn", "lno", "msg", "args", "exc_info"]
    expected += ["func", "extra", "sinfo"]
    message = "Python's logging.Logger.makeRecord changed; breaks extra-key renaming in common.logs"
    assert parameters(logs._original_make_record) == expected, message
    assert parameters(logs._make_record) == expected, message
