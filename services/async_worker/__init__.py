"""The asyncio worker, long-running: ``serve`` in :mod:`.worker` is your work."""
