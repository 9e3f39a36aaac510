"""Run the asyncio worker: ``app-async`` or ``python -m services.async_worker``."""

from __future__ import annotations

import sys

from common.config import Settings
from common.lifecycle import run_async_loop
from common.program import program_name, run_program
from services.async_worker.worker import run_once

PROGRAM = program_name("async_worker")


def _main(settings: Settings) -> None:
    run_async_loop(PROGRAM, settings, run_once)


def main() -> None:
    """Console-script entry point; exits 0 (stopped), 1 (crashed) or 78 (bad config)."""
    sys.exit(run_program(PROGRAM, _main))


if __name__ == "__main__":
    main()
