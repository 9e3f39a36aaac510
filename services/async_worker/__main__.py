"""Run the asyncio worker: ``app-async`` or ``python -m services.async_worker``.

To add a worker, copy this folder: the program name comes from supervisord
(``SUPERVISOR_PROCESS_NAME``) or else the folder's name, and ``run_once`` from
the folder's own ``worker.py``.
"""

from __future__ import annotations

import sys

from common.config import Settings
from common.lifecycle import run_async_loop
from common.program import program_name, run_program

PROGRAM = program_name((__package__ or "").rpartition(".")[2])


def _main(settings: Settings) -> None:
    from .worker import run_once  # imported here: an error in it is logged as JSON

    run_async_loop(PROGRAM, settings, run_once)


def main() -> None:
    """Console-script entry point; exits 0 (stopped), 1 (crashed) or 78 (bad config)."""
    sys.exit(run_program(PROGRAM, _main))


if __name__ == "__main__":
    main()
