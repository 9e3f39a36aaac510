"""Errors a program reports to the user and exits on, without a stack trace.

Exception tree::

    Exception
    ├── common.config.ConfigError       -> exit 78, event config_invalid
    ├── EarlyExitError                  -> exit .code, already logged
    └── FatalError                      -> exit 1, event crashed, message only
        ├── common.metrics.MetricsSetupError
        └── services.metrics_exporter.__main__.ListenError

Any other exception escaping a program is a crash: exit 1 with its stack.
"""

from __future__ import annotations


class FatalError(Exception):
    """A fatal condition the user can fix (port in use, missing directory)."""


class EarlyExitError(Exception):
    """The program ends now with exit code ``code``; it has logged why (a failed prestart step)."""

    def __init__(self, code: int) -> None:
        self.code = code
        super().__init__(f"exit {code}")
