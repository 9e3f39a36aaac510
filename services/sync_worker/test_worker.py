"""The blocking worker's own tests: its code, without supervisord or metrics (keep and extend)."""

from __future__ import annotations

import sqlite3

import pytest

from common.worker import make_context
from services.sync_worker.settings import Settings
from services.sync_worker.worker import lifespan, run_once


def test_run_once_keeps_only_the_newest_rows() -> None:
    """Each call records one row; rows beyond keep_rows are deleted, oldest first."""
    ctx = make_context(Settings(keep_rows=3))
    with lifespan(ctx) as ctx.state:
        for _ in range(5):
            run_once(ctx)
        finished = [row[0] for row in ctx.state.execute("SELECT finished FROM runs")]
    assert len(finished) == 3
    assert finished == sorted(finished)


def test_lifespan_closes_the_database() -> None:
    """After the lifespan, the connection is closed (stop and crash alike)."""
    ctx = make_context(Settings())
    with lifespan(ctx) as database:
        pass
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        database.execute("SELECT 1")
