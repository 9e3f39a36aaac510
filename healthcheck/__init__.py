"""``app-health``: the Docker HEALTHCHECK command (exit 0 healthy, 1 unhealthy)."""
