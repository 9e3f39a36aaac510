"""The blocking worker: ``run_once`` in :mod:`services.sync_worker.worker` is your work."""
