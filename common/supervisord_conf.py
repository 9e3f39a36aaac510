"""Reading ``supervisord.conf`` exactly as supervisord reads it (standard library only)."""

from __future__ import annotations

import configparser
from pathlib import Path


def read_conf(conf: Path) -> configparser.RawConfigParser:
    """``conf`` parsed as supervisord parses it: ``;``/``#`` inline comments, repeats allowed.

    (``supervisor.options.UnhosedConfigParser``.) Raises :class:`OSError` if it
    cannot be read and :class:`configparser.Error` if it does not parse.
    """
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";", "#"), strict=False)
    if not parser.read(conf):
        raise OSError(f"cannot read {conf}")
    return parser


def programs(parser: configparser.RawConfigParser) -> tuple[str, ...]:
    """The ``[program:x]`` names, in file order."""
    return tuple(s.partition(":")[2] for s in parser.sections() if s.startswith("program:"))


def module_programs(parser: configparser.RawConfigParser) -> dict[str, str]:
    """``{program: module}`` of each program whose command is ``python [options] -m <module>``.

    Interpreter options before ``-m`` (``-u``, ``-X dev``...) are allowed.
    """
    import shlex

    found: dict[str, str] = {}
    for name in programs(parser):
        args = shlex.split(parser.get(f"program:{name}", "command", fallback=""))
        if not args or not Path(args[0]).name.startswith("python") or "-m" not in args:
            continue
        at = args.index("-m")
        if at + 1 < len(args) and _interpreter_options(args[1:at]):
            found[name] = args[at + 1]
    return found


def _interpreter_options(args: list[str]) -> bool:
    """True if ``args`` are only interpreter options (``-u``, ``-X dev``, ``-W error``)."""
    value_next = False
    for arg in args:
        if value_next:
            value_next = False
        elif not arg.startswith("-") or arg == "-c":
            return False
        else:
            value_next = arg in ("-X", "-W")
    return not value_next


def worker_packages(parser: configparser.RawConfigParser) -> dict[str, str | None]:
    """``{program: package}`` of the worker programs (see :mod:`common.worker`).

    A worker's command is ``python -m <package>`` and its package has a
    ``worker`` module. A ``python -m`` module that cannot be found maps to None.
    """
    import importlib.util

    found: dict[str, str | None] = {}
    for name, package in module_programs(parser).items():
        try:
            if importlib.util.find_spec(package) is None:
                found[name] = None
            elif importlib.util.find_spec(package + ".worker") is not None:
                found[name] = package
        except ImportError:  # a parent package does not exist
            found[name] = None
    return found
