"""``app-entrypoint``: validate settings, prepare the runtime dir, exec supervisord."""
