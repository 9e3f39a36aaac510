"""Run this folder's worker as its program: ``python -m services.<folder>``.

Every worker's ``__main__.py`` is this file: copy the folder, keep it as it is.
Your code goes in ``worker.py`` (and your settings in ``settings.py``); see
:mod:`common.worker` for what ``ctx`` holds.
"""

from __future__ import annotations

from common.program import run_worker


def main() -> None:
    """Run the worker; exits 0 (stopped), 1 (crashed) or 78 (bad config)."""
    run_worker(str(__package__))  # "services.<folder>", however it is started


if __name__ == "__main__":
    main()
