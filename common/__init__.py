"""Shared library of every program: config, JSON logging, metrics, lifecycle.

Importing it has no side effect and imports nothing heavy; import the module
you need (``common.config``, ``common.logs``, ``common.metrics``,
``common.lifecycle``).
"""
