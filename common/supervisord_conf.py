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
