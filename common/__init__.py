"""The runtime's shared library: config, JSON logging, metrics, lifecycle.

Your worker code imports from three modules only, whose ``__all__`` is the
public API (kept stable; ``tests/test_layout.py`` checks that the shipped
workers use nothing else):

- :mod:`common.worker`: ``Context``, ``AsyncContext`` (the ``ctx`` your
  ``run_once``/``serve``/``lifespan`` get), ``NoSettings``, and
  ``make_context``/``make_async_context`` for unit tests;
- :mod:`common.settings`: ``URL``, ``Secret``, ``Seconds``, ``between`` for your
  ``settings.py``;
- :mod:`common.program`: ``run_worker``, called by each worker's ``__main__.py``.

Everything else is plumbing that only the runtime's programs use. Importing
this package has no side effect and imports nothing heavy.
"""
