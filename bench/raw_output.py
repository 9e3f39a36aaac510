"""What raw output (a subprocess's lines, C-level writes) costs: the event listener's part.

A program's own log records never take this path (they go straight to its
stdout: ``make bench``'s JSON rate). Bytes written to its file descriptors
1 and 2 reach the event listener as ``PROCESS_LOG_STDERR`` events, and
:meth:`services.event_listener.listener.Handler.raw_output` turns each into
one JSON record. This measures that step, in this process, writing the
records to a pipe that a thread drains: microseconds per event for events of
1 line and of 20 lines (80 bytes each), median of RUNS rounds of 5,000.
Run: ``.venv/bin/python bench/raw_output.py [RUNS]``.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.config import load_settings
from services.event_listener.listener import Handler

EVENTS = 5000


def per_event(handler: Handler, lines: int) -> float:
    """Microseconds per raw_output call carrying ``lines`` lines of 80 bytes."""
    chunk = ("x" * 79 + "\n") * lines
    started = time.perf_counter()
    for _ in range(EVENTS):
        handler.raw_output("sync_worker", 4242, chunk)
    return (time.perf_counter() - started) / EVENTS * 1e6


def main(runs: int) -> None:
    """Print the medians."""
    read_fd, write_fd = os.pipe()

    def empty_the_pipe() -> None:
        while os.read(read_fd, 1 << 16):
            pass

    drain = threading.Thread(target=empty_the_pipe, daemon=True)
    drain.start()
    os.dup2(write_fd, 2)  # the listener writes its records to fd 2
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "c.yml"
        config.write_text("")
        handler = Handler(load_settings({"APP_CONFIG_PATH": str(config)}), None)
        results = {
            n: statistics.median(per_event(handler, n) for _ in range(runs)) for n in (1, 20)
        }
    out = sys.stdout
    out.write(f"{runs} runs of {EVENTS} events; Python {platform.python_version()}\n")
    for lines, micros in results.items():
        out.write(f"event of {lines:2d} line(s): {micros:7.1f} us per event,"
                  f" {micros / lines:6.1f} us per line\n")  # fmt: skip


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
