"""supervisord programs: one sub-package per ``[program:x]`` block."""
