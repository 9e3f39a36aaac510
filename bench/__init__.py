"""Measurement scripts: each prints the figures the README quotes."""
