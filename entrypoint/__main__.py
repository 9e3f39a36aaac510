"""The container's entrypoint (and ``make run``'s): fail fast, then become supervisord.

1. Load every setting, each worker program's section included (its
   ``settings`` module is imported, not its code); on any problem log one
   ``config_invalid`` line and exit 78 before anything starts.
2. Refuse to start if a supervisord already answers on the runtime dir's socket
   (emptying its metrics would corrupt a running container's counters): exit 1.
3. Create ``runtime_dir`` (mode 0700), empty ``runtime_dir/prometheus``,
   refuse it with less than 4 MiB free (exit 78), and write the resolved
   settings to ``runtime_dir/settings.json`` (:mod:`common.snapshot`), which
   every program then reads.
4. Run the ``prestart`` commands in order (:mod:`entrypoint.prestart`); the
   first that fails stops everything with its exit code, a stop signal with 0.
5. ``exec`` supervisord (:mod:`entrypoint.supervisord`, which exits 1 after
   fail-fast) in the foreground with ``./supervisord.conf``, so that it takes
   over this PID (PID 1 in Docker), with ``APP_RUNTIME_DIR``,
   ``PROMETHEUS_MULTIPROC_DIR``, ``APP_SUPERVISORD_USER``,
   ``APP_SUPERVISORD_FAIL_FAST``, ``APP_RESOLVED_SETTINGS`` and ``PATH`` set for the config's
   ``%(ENV_...)s`` expansions and its programs, and ``TMPDIR`` (``runtime_dir/tmp``,
   unless set: the one writable place under a read-only root).
"""

from __future__ import annotations

import configparser
import errno
import fcntl
import importlib
import json
import logging
import os
import shutil
import signal
import socket
import stat
import sys
from pathlib import Path

from common import exporter_address
from common.config import (
    SNAPSHOT_ENV,
    SUPERVISORD_IDENTITY_ENV,
    SUPERVISORD_PROGRAMS_ENV,
    ConfigError,
    Problem,
    Settings,
    suggest,
)
from common.converters import FALSE_WORDS
from common.errors import FatalError
from common.program import declared_settings, run_program
from common.snapshot import FILE_NAME, write_snapshot
from common.supervisord_conf import module_programs, read_conf, worker_packages
from entrypoint import STOP_SIGNALS

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


def temp_dir(settings: Settings) -> Path:
    """``runtime_dir/tmp``: the programs' ``TMPDIR`` unless the environment sets one.

    Under a read-only root it is the one writable place: supervisord itself
    needs a temporary directory as it starts (its ``ServerOptions`` calls
    ``tempfile.gettempdir()``, which raises when none is writable).
    """
    return settings.runtime_dir / "tmp"


def prepare_runtime_dir(settings: Settings) -> None:
    """Create ``runtime_dir`` (0700), an empty multiprocess dir and an empty temp dir in it."""
    settings.runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    if settings.runtime_dir.stat().st_uid == os.getuid():
        settings.runtime_dir.chmod(0o700)  # also when it existed (a tmpfs mount point)
    exporter_address.remove(settings.runtime_dir)  # a past run's
    for directory in (settings.multiproc_dir, temp_dir(settings)):
        shutil.rmtree(directory, ignore_errors=True)
        directory.mkdir(mode=0o700)


# The Dockerfile's APP_RUNTIME_DIR (tests/test_entrypoint.py checks they agree).
IMAGE_RUNTIME_DIR = "/dev/shm/app"  # noqa: S108 - a container's own tmpfs, see the Dockerfile
# The least free space check_free_space accepts in the runtime dir (bytes).
MIN_FREE_BYTES = 4 * 1024 * 1024


def mount_hint(path: Path, uid: int) -> str:
    """What to change when ``path`` cannot be written by ``uid``: per engine, the mount to use.

    Names the owner and mode of ``path`` or of its nearest existing parent.
    Docker's ``--tmpfs`` is mode 1777 (docker run reference); Podman's is
    root's, and on a path the image already has it takes that directory's mode
    (its tmpcopyup: 0755 for most), unless ``:U`` (podman-run(1): "U" chowns
    it to the container's user). Under the image's default, a missing
    ``/dev/shm`` (``--ipc=none``) is said first.
    """
    shm = Path(IMAGE_RUNTIME_DIR).parent
    if path.is_relative_to(shm) and not shm.is_dir():
        return (
            f" (this container has no {shm}, where the image keeps its runtime dir:"
            f" run it without --ipc=none, or mount a tmpfs at {shm},"
            f" or set APP_RUNTIME_DIR to a directory mounted for it)"
        )
    existing = path.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        info = existing.stat()
    except OSError:
        return ""
    owner = f"{existing} is owned by uid {info.st_uid}, mode {stat.S_IMODE(info.st_mode):04o}"
    return (
        f" ({owner}; this process runs as uid {uid}). Mount a directory this user can write:"
        f" Docker --tmpfs {path}; Podman --tmpfs {path}:U (without U it is root's);"
        f" Kubernetes an emptyDir volume at {path};"
        f" or set APP_RUNTIME_DIR to a writable directory (the image's default,"
        f" {IMAGE_RUNTIME_DIR}, is in the container's own /dev/shm and needs no mount)"
    )


def runtime_dir_error(settings: Settings, detail: str) -> ConfigError:
    """The :class:`ConfigError` (exit 78) of one ``runtime_dir`` problem, naming its source."""
    return ConfigError([Problem("runtime_dir", settings.sources["runtime_dir"], detail)])


def check_free_space(settings: Settings) -> None:
    """Refuse a runtime dir with less than :data:`MIN_FREE_BYTES` free; ConfigError (exit 78).

    The metric files are memory-mapped and grow by ``truncate`` (prometheus-client's
    ``mmap_dict``): on a full tmpfs the first write to a new page kills the
    process with SIGBUS, long after the start. Too small a ``/dev/shm``
    (``--shm-size``) is refused here, before anything runs.
    """
    info = os.statvfs(settings.runtime_dir)
    free = info.f_bavail * info.f_frsize
    if free < MIN_FREE_BYTES:
        mib = 1024 * 1024
        raise runtime_dir_error(
            settings,
            f"{settings.runtime_dir} has {free / mib:.1f} MiB free, at least"
            f" {MIN_FREE_BYTES // mib} MiB needed (supervisord's log up to 2 MiB, the"
            " metric files 192 KiB and more per process; a full file system kills"
            " programs with SIGBUS): give it room (Docker's and Podman's"
            " --shm-size default, 64m, does), or set APP_RUNTIME_DIR to a larger mount",
        )


def supervisord_environ(settings: Settings) -> dict[str, str]:
    """The environment supervisord and its programs run with.

    ``TMPDIR`` is :func:`temp_dir` unless the environment already sets it.
    """
    bindir = os.path.dirname(sys.executable)
    identity = {
        "service": settings.service_name,
        "env": settings.env,
        "instance": settings.instance,
    }
    environ = dict(os.environ)
    environ.setdefault("TMPDIR", str(temp_dir(settings)))
    environ.update(
        APP_RUNTIME_DIR=str(settings.runtime_dir),
        PROMETHEUS_MULTIPROC_DIR=str(settings.multiproc_dir),
        # supervisord logs CRIT "running as root" unless user= is set: name ourselves.
        APP_SUPERVISORD_USER=str(os.getuid()),
        APP_SUPERVISORD_FAIL_FAST=str(settings.fail_fast).lower(),
        **{SUPERVISORD_PROGRAMS_ENV: programs_environ(settings)},
        **{SUPERVISORD_IDENTITY_ENV: json.dumps(identity)},
        PATH=bindir + os.pathsep + environ.get("PATH", os.defpath),
        **{SNAPSHOT_ENV: str(settings.runtime_dir / FILE_NAME)},
    )
    return environ


def _parse(conf: Path) -> configparser.RawConfigParser:
    try:
        return read_conf(conf)
    except OSError:
        raise ConfigError(
            [Problem(str(conf), f"directory {Path.cwd()}", "file not found")]
        ) from None
    except configparser.Error as exc:
        raise ConfigError([Problem(str(conf), str(conf), str(exc))]) from None


def declarations(conf: Path) -> dict[str, type | None]:
    """Every worker program of ``conf`` with its declared settings class (or None).

    Imports each worker's ``settings`` module (only that: not its code).
    Raises :class:`ConfigError` if ``conf`` is missing or does not parse, or
    a program's ``python -m`` module does not exist (a typo would crash-loop).
    """
    packages = worker_packages(_parse(conf))
    missing = [name for name, package in packages.items() if package is None]
    if missing:
        modules = module_programs(_parse(conf))
        raise ConfigError(
            [
                Problem(
                    f"[program:{name}] command",
                    str(conf),
                    f"python -m {modules[name]}: no such module" + _close_package(modules[name]),
                )
                for name in missing
            ]
        )
    return {name: declared_settings(package) for name, package in packages.items() if package}


def _close_package(module: str) -> str:
    """``"; did you mean 'services.x'?"`` among the packages beside ``module``'s parent."""
    import pkgutil

    parent = module.rpartition(".")[0]
    try:
        path = importlib.import_module(parent).__path__ if parent else None
    except ImportError:
        return ""
    names = tuple(f"{parent}.{m.name}" if parent else m.name for m in pkgutil.iter_modules(path))
    return suggest(module, names)


def check_workers(settings: Settings, conf: Path) -> None:
    """Raise :class:`ConfigError` unless each of ``workers`` is a worker program of ``conf``.

    Also if a worker program's block starts it by itself (``autostart`` not
    false): then ``workers`` could not keep it from starting. Raises for a
    missing or unparsable ``conf`` too.
    """
    parser = _parse(conf)
    names = tuple(worker_packages(parser))
    unknown = [name for name in settings.workers if name not in names]
    problems = []
    if unknown:
        others = {section.partition(":")[2] for section in parser.sections()}  # always run
        detail = f"not a worker program of {conf} (python -m <package> with a worker module): "
        detail += ", ".join(
            repr(n) + (" (not a worker: it always runs)" if n in others else suggest(n, names))
            for n in unknown
        )
        problems.append(Problem("workers", settings.sources["workers"], detail))
    numprocs = [n for n in names if parser.get(f"program:{n}", "numprocs", fallback="1") != "1"]
    for name in numprocs:
        detail = "must be 1 for a worker (one program name per process): copy the block instead"
        problems.append(Problem(f"[program:{name}] numprocs", str(conf), detail))
    for name in names:
        value = parser.get(f"program:{name}", "autostart", fallback="true")
        if value.strip().lower() not in FALSE_WORDS:
            detail = "must be false in a worker's block: the workers setting starts the chosen ones"
            problems.append(Problem(f"[program:{name}] autostart", str(conf), detail))
    if problems:
        raise ConfigError(problems)


def check_watchdog(settings: Settings) -> None:
    """Raise :class:`ConfigError` for a ``watchdog_seconds`` set while metrics are off.

    The watchdog reads freshness from the metric files; its default is simply
    off then (``APP_SUPERVISORD_PROGRAMS`` says 0), a value set on purpose is
    a contradiction.
    """
    if settings.metrics_enabled:
        return
    detail = "needs metrics_enabled: true (freshness is read from the metric files); set 0"
    given = [("watchdog_seconds", settings.sources["watchdog_seconds"], settings.watchdog_seconds)]
    given += [
        (f"programs.{name}.watchdog_seconds", section.sources.get("watchdog_seconds", ""),
         section.watchdog_seconds)
        for name, section in settings.programs.items()
    ]  # fmt: skip
    problems = [
        Problem(key, source, detail)
        for key, source, value in given
        if value and source not in ("default", "", "top-level watchdog_seconds")
    ]
    if problems:
        raise ConfigError(problems)


def programs_environ(settings: Settings) -> str:
    """``APP_SUPERVISORD_PROGRAMS`` for :mod:`entrypoint.workers`, as JSON.

    ``{program: {"start": bool, "watchdog_seconds": float}}`` for every worker
    program: ``start`` for those named by ``workers``; the watchdog is off (0)
    while metrics are.
    """
    return json.dumps(
        {
            name: {
                "start": name in settings.workers,
                "watchdog_seconds": section.watchdog_seconds if settings.metrics_enabled else 0.0,
            }
            for name, section in settings.programs.items()
        }
    )


def append_to_regular_stdout() -> None:
    """If stdout is a regular file (``make run > out.log``), make every write append.

    supervisord opens ``/dev/stdout`` anew (its own file offset, in append mode);
    without O_APPEND on ours, the last line (fail-fast) would overwrite its output.
    """
    if stat.S_ISREG(os.fstat(1).st_mode):
        fcntl.fcntl(1, fcntl.F_SETFL, fcntl.fcntl(1, fcntl.F_GETFL) | os.O_APPEND)


def _main(settings: Settings) -> None:
    check_workers(settings, SUPERVISORD_CONF)
    check_watchdog(settings)
    if _socket_answers(settings.supervisor_socket):
        raise FatalError(
            f"a supervisord already answers on {settings.supervisor_socket}; "
            "stop it or choose another APP_RUNTIME_DIR"
        )
    try:
        prepare_runtime_dir(settings)
    except OSError as exc:
        detail = f"cannot create the directory {settings.runtime_dir}: {exc.strerror}"
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            detail += mount_hint(settings.runtime_dir, os.getuid())
        raise runtime_dir_error(settings, detail) from None
    check_free_space(settings)
    try:
        write_snapshot(settings, settings.runtime_dir / FILE_NAME)
    except OSError as exc:
        detail = f"cannot write {FILE_NAME} in it: {exc.strerror}"
        raise runtime_dir_error(settings, detail) from None
    environ = supervisord_environ(settings)
    if settings.prestart:
        from entrypoint.prestart import run_steps

        run_steps(settings.prestart, settings.prestart_timeout_seconds, environ)
    argv = [
        sys.executable,
        "-m",
        "entrypoint.supervisord",
        "--nodaemon",
        "-c",
        str(SUPERVISORD_CONF),
    ]
    log.info("exec supervisord, runtime dir %s", settings.runtime_dir, extra={"event": "exec"})
    append_to_regular_stdout()
    os.execve(sys.executable, argv, environ)


def main() -> None:
    """Console-script entry point: 78 (bad config), 1, or (after exec) supervisord's code.

    The stop signals stay blocked from here through the exec, until supervisord
    handles them (see :mod:`entrypoint.supervisord`): a ``docker stop`` during
    start-up is kept, not dropped. ``app-entrypoint`` blocks them even earlier
    (:mod:`entrypoint.launch`); blocking again is harmless.
    """
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    os.environ.pop(SNAPSHOT_ENV, None)  # the entrypoint always reads the sources themselves
    sys.exit(
        run_program(
            "entrypoint",
            _main,
            declarations=lambda: declarations(SUPERVISORD_CONF),
            log_programs=None,
            warn_unknown_env=True,
            capture_streams=False,
        )
    )


if __name__ == "__main__":
    main()
