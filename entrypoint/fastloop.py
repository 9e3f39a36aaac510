"""A supervisord plugin that makes its main loop wake every 0.1 s instead of every 1 s.

supervisord's main loop waits in ``poll`` with a fixed 1 s timeout
(``supervisord.Supervisor.runforever``), and Python retries an interrupted
``poll`` (PEP 475), so a SIGTERM is noticed up to 1 s late; and when the last
program's output pipe reaches EOF a moment before the kernel turns it into a
zombie, supervisord waits another full second to reap it. Measured with
supervisor 4.3 (``bench/lifecycle_times.py``): SIGTERM to exit took 0.3-2.1 s,
median 0.9-1.1 s; with a 0.1 s wake-up 0.16-0.32 s, median 0.22-0.27 s, for
about 2.4 ms of supervisord CPU per second.

supervisord loads this through its documented ``[rpcinterface:x]`` extension
point, which calls the factory with the supervisord instance before the main
loop starts. The factory caps the poller's timeout; the interface it returns
adds one read-only XML-RPC method, ``fastloop.getPollInterval``. At that point
supervisord has imported everything and parsed its config, so the factory also
gives the C heap's free memory back to the kernel (:func:`common.heap.trim`):
about 2 MB less resident memory for supervisord (``bench/memory.py``).
"""

from __future__ import annotations

from typing import Any

from common import heap


class FastLoopInterface:
    """XML-RPC namespace ``fastloop``: reports the cap in force."""

    def __init__(self, interval: float) -> None:
        self.interval = interval

    def getPollInterval(self) -> float:  # noqa: N802 - XML-RPC method names are camelCase
        """Return the longest wait of supervisord's main loop, in seconds."""
        return self.interval


def make_interface(supervisord: Any, **config: str) -> FastLoopInterface:
    """Cap supervisord's poll timeout at ``poll_interval_seconds`` (default 0.1, 0.01..1)."""
    interval = float(config.get("poll_interval_seconds", "0.1"))
    if not 0.01 <= interval <= 1.0:
        raise ValueError(f"poll_interval_seconds must be in 0.01..1, got {interval!r}")
    poller = supervisord.options.poller  # internal, fenced: tests/test_fences.py
    poll = poller.poll

    def capped_poll(timeout: float) -> Any:
        return poll(min(timeout, interval))

    poller.poll = capped_poll
    heap.trim()
    return FastLoopInterface(interval)
