"""The container's entrypoint (and ``make run``'s): fail fast, then become supervisord.

1. Load settings; on any problem log one ``config_invalid`` line and exit 78
   before anything starts.
2. Refuse to start if a supervisord already answers on the runtime dir's socket
   (emptying its metrics would corrupt a running container's counters): exit 1.
3. Create ``runtime_dir`` (mode 0700) and empty ``runtime_dir/prometheus``.
4. Start supervisord in the foreground with ``./supervisord.conf``, with
   ``APP_RUNTIME_DIR``, ``PROMETHEUS_MULTIPROC_DIR``, ``APP_SUPERVISORD_USER``
   and ``PATH`` set for the config's ``%(ENV_...)s`` expansions and its programs:

   - ``fail_fast`` on (the default): as its parent, staying PID 1 in Docker
     (:mod:`entrypoint.init`), so that the container exits with the code the
     event listener leaves when a program goes FATAL (supervisord always
     exits 0);
   - ``fail_fast`` off: by ``exec``, so supervisord takes over this PID.
"""

from __future__ import annotations

import configparser
import logging
import os
import shutil
import socket
import sys
from functools import partial
from pathlib import Path

from common.config import ConfigError, Problem, Settings, suggest
from common.errors import FatalError
from common.program import run_program
from entrypoint.init import supervise

SUPERVISORD_CONF = Path("supervisord.conf")
log = logging.getLogger("entrypoint")


def _socket_answers(path: Path) -> bool:
    """True if something accepts connections on the unix socket ``path``."""
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1.0)
        try:
            sock.connect(str(path))
        except OSError:
            return False
    return True


def prepare_runtime_dir(settings: Settings) -> None:
    """Create ``runtime_dir`` (0700) and an empty multiprocess dir inside it."""
    settings.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if settings.runtime_dir.stat().st_uid == os.getuid():
        settings.runtime_dir.chmod(0o700)  # also when it existed (a tmpfs mount point)
    shutil.rmtree(settings.multiproc_dir, ignore_errors=True)
    settings.multiproc_dir.mkdir(mode=0o700)


def supervisord_environ(settings: Settings) -> dict[str, str]:
    """The environment supervisord and its programs run with."""
    bindir = os.path.dirname(sys.executable)
    environ = dict(os.environ)
    environ.update(
        APP_RUNTIME_DIR=str(settings.runtime_dir),
        PROMETHEUS_MULTIPROC_DIR=str(settings.multiproc_dir),
        # supervisord logs CRIT "running as root" unless user= is set: name ourselves.
        APP_SUPERVISORD_USER=str(os.getuid()),
        PATH=bindir + os.pathsep + environ.get("PATH", os.defpath),
    )
    return environ


def check_workers(settings: Settings, conf: Path) -> None:
    """Raise :class:`ConfigError` if ``conf`` is missing or lacks a program in ``workers``."""
    parser = configparser.RawConfigParser()
    if not parser.read(conf):
        raise ConfigError([Problem(str(conf), f"directory {Path.cwd()}", "file not found")])
    programs = tuple(s.partition(":")[2] for s in parser.sections() if s.startswith("program:"))
    unknown = [name for name in settings.workers if name not in programs]
    if unknown:
        detail = ", ".join(repr(n) + suggest(n, programs) for n in unknown)
        raise ConfigError(
            [Problem("workers", settings.sources["workers"], f"no [program:x] in {conf}: {detail}")]
        )


def fatal_program(runtime_dir: Path) -> str | None:
    """The name of a program supervisord has FATAL, if any (None if it cannot tell)."""
    from common.supervisor_rpc import RPC_ERRORS, process_infos

    try:
        infos = process_infos(runtime_dir, 1.0, SUPERVISORD_CONF.absolute())
    except RPC_ERRORS:
        return None
    fatal = [str(info["name"]) for info in infos if info["statename"] == "FATAL"]
    return fatal[0] if fatal else None


def request_shutdown(runtime_dir: Path) -> None:
    """Ask supervisord to stop everything (it may already be stopping)."""
    from common.supervisor_rpc import RPC_ERRORS, call

    try:
        call(runtime_dir, 5.0, "shutdown", SUPERVISORD_CONF.absolute())
    except RPC_ERRORS as exc:
        log.info("supervisord did not take the shutdown request: %s", exc)


def _main(settings: Settings) -> None:
    check_workers(settings, SUPERVISORD_CONF)
    if _socket_answers(settings.supervisor_socket):
        raise FatalError(
            f"a supervisord already answers on {settings.supervisor_socket}; "
            "stop it or choose another APP_RUNTIME_DIR"
        )
    try:
        prepare_runtime_dir(settings)
    except OSError as exc:
        detail = f"cannot create the directory {settings.runtime_dir}: {exc.strerror}"
        raise ConfigError(
            [Problem("runtime_dir", settings.sources["runtime_dir"], detail)]
        ) from None
    environ = supervisord_environ(settings)
    supervisord = shutil.which("supervisord", path=environ["PATH"])
    if supervisord is None:
        raise FatalError("supervisord not found on PATH; install the project (make run)")
    argv = [supervisord, "--nodaemon", "-c", str(SUPERVISORD_CONF)]
    settings.exit_code_file.unlink(missing_ok=True)
    if settings.fail_fast:
        log.info("starting supervisord, runtime dir %s", settings.runtime_dir)
        code = supervise(
            argv,
            environ,
            settings.exit_code_file,
            partial(fatal_program, settings.runtime_dir),
            partial(request_shutdown, settings.runtime_dir),
        )
        log.info("supervisord ended; exit code %d", code, extra={"event": "exit", "code": code})
        raise SystemExit(code)
    log.info("exec supervisord, runtime dir %s", settings.runtime_dir, extra={"event": "exec"})
    os.execve(supervisord, argv, environ)


def main() -> None:
    """Console-script entry point: 78 (bad config), 1, or supervisord's (or fail-fast's) code."""
    sys.exit(run_program("entrypoint", _main, warn_unknown_env=True, capture_streams=False))


if __name__ == "__main__":
    main()
