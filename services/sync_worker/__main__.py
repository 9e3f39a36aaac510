"""Run this folder's worker: ``python -m <package>``. Copy as it is; see common/worker.py."""

from common.program import run_worker

if __name__ == "__main__":
    run_worker(str(__package__))  # "services.<folder>": the program is named after it
