"""What measuring coverage in every process costs a test's process at its start.

``make test`` runs under coverage.py with ``patch = subprocess``: every Python
process a test starts imports coverage and starts measuring. This times a
process that imports the settings and logging modules (what each program does
first), without and with coverage, and prints the median of each and the
difference in milliseconds. Run: ``.venv/bin/python bench/coverage_cost.py``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 15
CODE = "import common.settings, common.logs"


def median_ms(env: dict[str, str]) -> float:
    """Median wall time of RUNS starts of ``python -c CODE`` with ``env``, in milliseconds."""
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", CODE], env=env, cwd=ROOT, check=True)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    """Print both medians and their difference."""
    import coverage

    plain = {k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")}
    with tempfile.TemporaryDirectory() as data:
        cov = coverage.Coverage(data_file=str(Path(data) / ".coverage"))
        cov.start()  # sets COVERAGE_PROCESS_CONFIG, as `coverage run` does for make test
        measured = dict(os.environ)
        cov.stop()
        without, with_coverage = median_ms(plain), median_ms(measured)
    print(f"process start without coverage: {without:.0f} ms")
    print(f"process start with coverage:    {with_coverage:.0f} ms")
    print(f"added by coverage:              {with_coverage - without:.0f} ms")


if __name__ == "__main__":
    main()
