"""The blocking worker, periodic: ``run_once`` in :mod:`.worker` is your work."""
