"""The resolved settings, written once by ``app-entrypoint`` and read by every program.

``app-entrypoint`` validates every setting of every program before anything
starts and writes the result to ``<runtime_dir>/settings.json`` (mode 0600: it
holds the secrets' values), then names it in ``APP_RESOLVED_SETTINGS``. A
program that supervisord starts or restarts reads that file: it needs neither
PyYAML nor the loader, and every restart runs with the settings the container
was validated with (a config file edited while the container runs is read at
the next container start, not by a restarted program).

Shape: ``{"shared": {key: [value, source]}, "programs": {name: {key: [value,
source]}}}``, values as :func:`common.settings.encode` writes them; a
program's own values are read again by their converters, so they come back
as the types they declare.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from common.config import (
    PER_PROGRAM,
    ConfigError,
    Problem,
    ProgramSettings,
    Settings,
)
from common.settings import declared_fields, encode

FILE_NAME = "settings.json"


def write_snapshot(settings: Settings, path: Path) -> None:
    """Write ``settings`` (every program's section too) to ``path``, mode 0600, atomically."""
    shared = {key: [encode(getattr(settings, key)), src] for key, src in settings.sources.items()}
    programs = {
        name: {
            key: [encode(value), section.sources.get(key, "default")]
            for key, (value, _secret) in section.values().items()
        }
        for name, section in settings.programs.items()
    }
    data = json.dumps({"shared": shared, "programs": programs}).encode()
    partial = path.with_name(path.name + ".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(partial, path)


def read_snapshot(path: Path, declarations: Mapping[str, type | None]) -> Settings:
    """The :class:`Settings` in ``path``; own settings rebuilt for ``declarations``' programs.

    Raises :class:`ConfigError` if the file cannot be read or does not match
    the declarations (the code changed since the container started).
    """
    where = f"env APP_RESOLVED_SETTINGS ({path})"
    try:
        data = json.loads(path.read_bytes())
        shared = {key: value for key, (value, _src) in data["shared"].items()}
        sources = {key: src for key, (_value, src) in data["shared"].items()}
        shared["runtime_dir"] = Path(shared["runtime_dir"])
        shared["workers"] = tuple(shared["workers"])
        shared["prestart"] = tuple(shared["prestart"])
        programs = {
            name: _program(name, section, declarations.get(name))
            for name, section in data["programs"].items()
        }
        missing = sorted(set(declarations) - set(programs))
        if missing:
            raise KeyError(f"no section for {missing}: restart the container after a new worker")
        return Settings(**shared, programs=programs, sources=sources)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        detail = f"cannot read the resolved settings: {type(exc).__name__}: {exc}"
        raise ConfigError([Problem("resolved settings", where, detail)]) from None


def _program(name: str, section: dict[str, Any], cls: type | None) -> ProgramSettings:
    values = {key: value for key, (value, _src) in section.items()}
    sources = {key: src for key, (_value, src) in section.items()}
    own = None
    if cls is not None:  # each value read again by its converter: the type it declares
        own = cls(**{f.key: f.convert(values[f.key]) for f in declared_fields(cls)})
    builtins = {key: values[key] for key in PER_PROGRAM}
    return ProgramSettings(name, **builtins, own=own, sources=sources)
