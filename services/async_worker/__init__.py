"""The asyncio worker: ``run_once`` in :mod:`services.async_worker.worker` is your work."""
