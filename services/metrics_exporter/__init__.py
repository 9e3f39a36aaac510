"""The one HTTP endpoint of the container: /metrics (all processes), /healthz, /readyz."""
