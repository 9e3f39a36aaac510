"""The blocking worker's logic: a periodic job with a database opened for its whole life.

Replace the bodies with your work. ``lifespan`` opens what lives across calls
(here an SQLite connection; a database pool or an HTTP session in yours) and
closes it at stop, also after a crash. ``run_once`` is called every
``loop_sleep_seconds`` (per program: ``APP_SYNC_WORKER__LOOP_SLEEP_SECONDS``);
an exception it raises is logged and counted, and the loop goes on. The call
in flight is never interrupted: keep one well under supervisord's
``stopwaitsecs`` (10 s). See :mod:`common.worker` for ``ctx``.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator

from common.worker import Context

from .settings import Settings


@contextlib.contextmanager
def lifespan(ctx: Context[Settings]) -> Iterator[sqlite3.Connection]:
    """Open the database once; what this yields is ``ctx.state`` in every call."""
    connection = sqlite3.connect(ctx.settings.database)
    try:
        connection.execute("CREATE TABLE IF NOT EXISTS runs (finished REAL NOT NULL)")
        yield connection
    finally:
        connection.close()


def run_once(ctx: Context[Settings]) -> None:
    """Record this run and keep only the newest ``keep_rows`` rows."""
    database: sqlite3.Connection = ctx.state
    with database:  # one transaction
        database.execute("INSERT INTO runs VALUES (?)", (time.time(),))
        database.execute(
            "DELETE FROM runs WHERE rowid NOT IN"
            " (SELECT rowid FROM runs ORDER BY rowid DESC LIMIT ?)",
            (ctx.settings.keep_rows,),
        )
    (rows,) = database.execute("SELECT count(*) FROM runs").fetchone()
    ctx.log.debug("run recorded", extra={"rows": rows})
