"""The blocking worker's logic. Put your own work in :func:`run_once`.

``run_once`` is called every ``loop_sleep_seconds`` (after the previous call
returns). An exception it raises is logged with its stack and counted in
``app_iteration_errors_total``; the loop goes on. It is never interrupted: on
SIGTERM the call in flight finishes first, so keep one call well under
supervisord's ``stopwaitsecs`` (10 s).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def run_once() -> None:
    """Do one unit of blocking work (replace this body with yours)."""
    log.debug("sync iteration done")
