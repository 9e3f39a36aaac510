"""The asyncio worker's own settings: ``APP_ASYNC_WORKER__<KEY>`` or ``programs.async_worker``.

Replace these fields with yours. Import only the standard library and
``common.settings`` here: ``app-entrypoint`` imports this module (not the
worker's code) to check every setting before anything starts.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.settings import Seconds


@dataclass(frozen=True)
class Settings:
    """Where the feed is, and how the client waits and reconnects.

    ``feed_address``: ``host:port`` of a server that sends one message per line;
    empty (the default) starts a demo feed inside this program, so that it
    runs out of the box. ``demo_interval_seconds``: the demo feed's pace.
    ``idle_heartbeat_seconds``: a heartbeat while connected but no message
    comes. ``reconnect_max_seconds``: the longest wait between two connection
    attempts (the wait doubles from 0.5 s up to it).
    """

    feed_address: str = ""
    demo_interval_seconds: Seconds = 1.0
    idle_heartbeat_seconds: Seconds = 5.0
    reconnect_max_seconds: Seconds = 30.0

    def __post_init__(self) -> None:
        """Check the address's shape (``host:port``) once, at start."""
        if self.feed_address:
            host, _, port = self.feed_address.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"feed_address: expected host:port, got {self.feed_address!r}")
