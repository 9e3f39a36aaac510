"""``app-entrypoint``: validate settings, prepare the runtime dir, exec supervisord."""

import signal

# supervisord's shutdown signals: blocked by app-entrypoint until supervisord handles them.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
