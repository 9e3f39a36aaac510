"""The asyncio worker's logic. Put your own work in :func:`run_once`.

``run_once`` is awaited every ``loop_sleep_seconds`` (after the previous call
returns). An exception it raises is logged with its stack and counted in
``app_iteration_errors_total``; the loop goes on. On SIGTERM the call in flight
is awaited to its end, never cancelled. Never block the event loop in it: use
``await`` (or ``asyncio.to_thread`` for blocking calls).
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


async def run_once() -> None:
    """Do one unit of asynchronous work (replace this body with yours)."""
    await asyncio.sleep(0)
    log.debug("async iteration done")
