"""A live worker's freshness stamp, read from its own metric file, for the watchdog.

The watchdog (:mod:`entrypoint.workers`) runs inside supervisord, which is PID 1
for the container's life: importing ``prometheus_client`` there would cost
about 10 MB for good (its package ``__init__`` imports the exposition stack).
The file format is prometheus-client's, and so is the reader used here: its
``prometheus_client/mmap_dict.py``, loaded on its own from the installed
package, without running the package's ``__init__``. No public API reads one
file without that import; ``tests/test_stamps.py`` fails loudly if the module
moves, starts importing the rest of the package, or stops reading what
prometheus-client writes.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import struct
from pathlib import Path
from types import ModuleType

STAMPS = ("app_last_heartbeat_timestamp_seconds", "app_last_iteration_timestamp_seconds")
FILE_KIND = "gauge_mostrecent"  # both stamps are multiprocess_mode="mostrecent" gauges


@functools.cache
def mmap_dict() -> ModuleType:
    """``prometheus_client.mmap_dict``, executed alone (its imports: stdlib only).

    Raises :class:`ImportError` if prometheus-client is not installed or has no
    such file.
    """
    package = importlib.util.find_spec("prometheus_client")  # finds, does not import
    if package is None or not package.submodule_search_locations:
        raise ImportError("prometheus_client is not installed")
    path = Path(next(iter(package.submodule_search_locations))) / "mmap_dict.py"
    spec = importlib.util.spec_from_file_location("_stamps_mmap_dict", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise ImportError(f"no {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stamp(multiproc_dir: Path, pid: int, program: str) -> float:
    """The newest freshness stamp (Unix seconds) process ``pid`` wrote for ``program``; 0 if none.

    Freshness is the last heartbeat or the last finished iteration, whichever
    is newer (both 0 until written). A file that does not exist yet, or that
    cannot be read while it is being created, reads as 0.
    """
    path = os.path.join(multiproc_dir, f"{FILE_KIND}_{pid}.db")
    newest = 0.0
    try:  # the reader is a generator: a damaged entry raises while iterating
        for key, value, _timestamp, _pos in mmap_dict().MmapedDict.read_all_values_from_file(path):
            if key.startswith('["app_last_') and value > newest:
                metric, _sample, labels, _help = json.loads(key)
                if metric in STAMPS and labels.get("program") == program:
                    newest = value
    except (OSError, ValueError, RuntimeError, struct.error):  # gone, being created, damaged
        return 0.0
    return newest
