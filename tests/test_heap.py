"""common.heap: giving the C heap's free memory back cannot hurt a running program."""

from __future__ import annotations

import subprocess
import sys

import pytest

FRAGMENT_AND_TRIM = """
from common import heap
def rss_kb():
    with open("/proc/self/status") as status:
        return next(int(l.split()[1]) for l in status if l.startswith("VmRSS:"))
keep = [bytearray(b"x" * 16_000) for _ in range(4_000)]  # 64 MB of the C heap (not mmap)
top = bytearray(1000)                              # pins the top: free() cannot shrink it
del keep[::2]                                      # half of it free, scattered
before = rss_kb()
heap.trim()
intact = sum(block.count(b"x") == 16_000 for block in keep)
print(before - rss_kb(), intact, len(top))
"""


def test_trim_releases_scattered_free_memory_and_keeps_live_data() -> None:
    """Freed blocks between live ones go back to the kernel; live objects are untouched."""
    result = subprocess.run(
        [sys.executable, "-c", FRAGMENT_AND_TRIM], capture_output=True, text=True, check=True
    )
    released_kb, intact, top = map(int, result.stdout.split())
    assert (intact, top) == (2_000, 1000)
    assert released_kb > 16_000  # most of the 32 MB freed


def test_trim_does_nothing_where_the_c_library_has_no_malloc_trim(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """musl, macOS: no malloc_trim (AttributeError) or no C library to load: no error."""
    import ctypes

    from common import heap

    for error in (AttributeError("malloc_trim"), OSError("no libc")):

        def cdll(name: object, error: Exception = error) -> object:
            raise error

        monkeypatch.setattr(ctypes, "CDLL", cdll)
        heap.trim()
