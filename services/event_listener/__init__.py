"""supervisord event listener: what the programs write to file descriptor 2, as JSON."""
