"""Run the blocking worker: ``app-sync`` or ``python -m services.sync_worker``."""

from __future__ import annotations

import sys

from common.config import Settings
from common.lifecycle import run_sync_loop
from common.program import program_name, run_program
from services.sync_worker.worker import run_once

PROGRAM = program_name("sync_worker")


def _main(settings: Settings) -> None:
    run_sync_loop(PROGRAM, settings, run_once)


def main() -> None:
    """Console-script entry point; exits 0 (stopped), 1 (crashed) or 78 (bad config)."""
    sys.exit(run_program(PROGRAM, _main))


if __name__ == "__main__":
    main()
