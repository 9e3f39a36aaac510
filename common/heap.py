"""Give the C heap's free memory back to the kernel once a program has started.

Start-up allocates far more than it keeps: importing a module unmarshals its
code and frees the temporaries, and glibc's malloc keeps such freed memory for
reuse instead of returning it (only the top of the heap is trimmed on its own).
``malloc_trim(0)`` (glibc, man 3 malloc_trim) releases the free pages anywhere
in the heap. Measured with this project's imports: about 0.8 MB less resident
memory per worker, 2.5 MB for supervisord. It frees nothing in use, so calling
it is always safe; it does nothing where the C library has no ``malloc_trim``
(musl, macOS) or ``ctypes`` is missing.
"""

from __future__ import annotations


def trim() -> None:
    """Release the C heap's free memory to the kernel (glibc); else do nothing."""
    try:
        import ctypes

        ctypes.CDLL(None).malloc_trim(0)
    except (ImportError, OSError, AttributeError):
        pass
