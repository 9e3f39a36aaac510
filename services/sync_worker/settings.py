"""The blocking worker's own settings: ``APP_SYNC_WORKER__<KEY>`` or ``programs.sync_worker``.

Replace these fields with yours. Import only the standard library and
``common.settings`` here: ``app-entrypoint`` imports this module (not the
worker's code) to check every setting before anything starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from common.settings import between


@dataclass(frozen=True)
class Settings:
    """``database``: an SQLite file, or ``:memory:``; ``keep_rows``: rows kept, 1..1,000,000."""

    database: str = ":memory:"
    keep_rows: Annotated[int, between(1, 1_000_000)] = 1000
