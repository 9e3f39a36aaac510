"""A supervisord plugin that stops everything when a process goes FATAL (fail-fast).

supervisord never exits on its own when a program goes FATAL (it gave up
restarting it), and it always exits 0. With this plugin enabled, the first
FATAL process while supervisord is RUNNING makes it shut down as
``supervisorctl shutdown`` would (mood SHUTDOWN, as
``supervisor.rpcinterface.SupervisorNamespaceRPCInterface.shutdown`` does); the
process's name is kept in :data:`fatal`, which :mod:`entrypoint.supervisord`
turns into exit code 1, so the container stops and its restart policy takes
over. A FATAL process while supervisord is already stopping (``docker stop``
during a restart loop) is no failure.

supervisord loads this through its documented ``[rpcinterface:x]`` extension
point, which calls the factory with the supervisord instance each time the
main loop starts, after supervisord cleared its event subscriptions. The
factory subscribes to ``ProcessStateFatalEvent`` in-process (``supervisor.events``),
so unlike an event listener it cannot miss the event when a listener's buffer
overflows. The interface adds one read-only XML-RPC method,
``failfast.getFatalProcess``.
"""

from __future__ import annotations

from typing import Any

from supervisor import events
from supervisor.datatypes import boolean
from supervisor.states import SupervisorStates

fatal: list[str] = []  # "group:name" of the FATAL process that stopped supervisord


class FailFastInterface:
    """XML-RPC namespace ``failfast``: reports whether fail-fast stopped supervisord."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def getFatalProcess(self) -> str:  # noqa: N802 - XML-RPC method names are camelCase
        """Return ``"group:name"`` of the process that triggered fail-fast, else ``""``."""
        return fatal[0] if fatal else ""


def make_interface(supervisord: Any, **config: str) -> FailFastInterface:
    """Shut ``supervisord`` down on the first FATAL process if ``enabled`` (a boolean).

    Raises :class:`ValueError` (supervisord then refuses to start) if
    ``enabled`` is missing or not a supervisor boolean.
    """
    value = config.get("enabled", "")
    try:
        enabled = bool(boolean(value))
    except ValueError:
        raise ValueError(f"enabled must be true or false, got {value!r}") from None

    def on_fatal(event: Any) -> None:
        options = supervisord.options
        if fatal or options.mood < SupervisorStates.RUNNING:
            return
        process = event.process
        name = f"{process.group.config.name}:{process.config.name}"
        fatal.append(name)
        options.logger.critical(f"{name} is FATAL: shutting down (fail_fast)")
        options.mood = SupervisorStates.SHUTDOWN

    if enabled:
        events.subscribe(events.ProcessStateFatalEvent, on_fatal)
    return FailFastInterface(enabled)
