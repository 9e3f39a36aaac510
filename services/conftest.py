"""What every worker's own tests (``services/<name>/test_worker.py``) share."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _collect_garbage() -> Iterator[None]:
    """Collect after each test, so what it left open warns in it, not in a later test.

    A socket or file nobody closed warns (``ResourceWarning``) when it is
    garbage-collected, and the suite makes warnings errors: without this the
    error lands on whichever test runs next, often another worker's.
    """
    yield
    gc.collect()
