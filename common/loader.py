"""The full load behind :func:`common.config.load_settings`: every source, every problem.

For each declared field (:func:`common.settings.declared_fields`), the values
given are gathered from the YAML file and the environment (``APP_X``, or the
file named by ``APP_X_FILE``), each is converted (also a file value that the
environment overrides), and the last one wins. Problems name the key (a
program's as ``programs.<program>.<key>``), the source (``env APP_X``,
``config.yml line 4``, ``file /run/secrets/x (env APP_X_FILE)``) and what was
expected; all of them are raised at once in one :class:`ConfigError`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from common import converters as conv
from common import integration_env
from common.config import (
    COMPUTED,
    CONFIG_PATH_ENV,
    DEFAULT_CONFIG_PATH,
    ENV_PREFIX,
    MAX_CONFIG_BYTES,
    MAX_SOCKET_PATH,
    PER_PROGRAM,
    ConfigError,
    Problem,
    ProgramSettings,
    SecondsOrOff,
    Settings,
    closest,
    default_health_max_age,
    default_watchdog,
    env_name,
    env_prefix,
    is_secret,
    suggest,
)
from common.settings import Field, Seconds, converter_for, declared_fields, encode
from common.yamlfile import PROGRAMS_KEY, read_config_file

MAX_SECRET_FILE_BYTES = 1024 * 1024
Given = dict[str, tuple[object, str]]  # key -> (raw value, source)


def load(environ: Mapping[str, str], declarations: Mapping[str, type | None]) -> Settings:
    """Read the environment and the config file; see :func:`common.config.load_settings`."""
    path_value = environ.get(CONFIG_PATH_ENV)
    if path_value == "":
        problem = "expected a file path, got ''; unset it to use config.yml"
        raise ConfigError([Problem(CONFIG_PATH_ENV, f"env {CONFIG_PATH_ENV}", problem)])
    path = Path(path_value or DEFAULT_CONFIG_PATH)
    config = read_config_file(path, path_value is not None, MAX_CONFIG_BYTES)
    problems = list(config.problems)

    computed = {f.name for f in dataclasses.fields(Settings) if COMPUTED in f.metadata}
    fields = [
        dataclasses.replace(f, default=_Computed()) if f.key in computed else f
        for f in declared_fields(Settings)
    ]
    keys = (*(f.key for f in fields), PROGRAMS_KEY)
    given: Given = {}
    for key, (value, line) in config.values.items():
        if key in keys:
            given[key] = (value, f"{path} line {line}")
        else:
            problems.append(Problem(key, f"{path} line {line}", "unknown key" + suggest(key, keys)))
    values, sources = resolve(fields, given, environ, None, problems)
    set_at_top = _computed_defaults(values, sources, tuple(declarations), problems)

    names = tuple(declarations)
    for name, (_section, line) in config.programs.items():
        if name not in declarations:
            detail = "no worker program of that name" + suggest(name, names)
            problems.append(Problem(f"{PROGRAMS_KEY}.{name}", f"{path} line {line}", detail))
    _check_program_env(environ, declarations, problems)
    problems += integration_env.problems(environ)  # OTEL_*, SENTRY_DSN: not APP_ settings
    programs = {}
    # Top-level values that failed (their problem is recorded) give way to the
    # defaults, so that every program's section is still checked.
    loop_default = Settings.loop_sleep_seconds
    shared: dict[str, Any] = {
        "loop_sleep_seconds": loop_default,
        "health_max_age_seconds": default_health_max_age(loop_default),
        "watchdog_seconds": default_watchdog(default_health_max_age(loop_default)),
    } | values
    for name, cls in declarations.items():
        section = config.programs.get(name, ({}, 0))[0]
        file_given = {k: (v, f"{path} line {line}") for k, (v, line) in section.items()}
        found = _program(
            name,
            cls,
            given=file_given,
            environ=environ,
            shared=shared,
            set_at_top=set_at_top,
            problems=problems,
        )
        if found is not None:
            programs[name] = found
    if problems:
        raise ConfigError(problems)

    if sources["instance"] == "default":
        import socket  # only here: 10 ms that the healthcheck and snapshot readers skip

        values["instance"] = socket.gethostname() or "localhost"
    settings = Settings(**values, programs=programs, sources=sources)
    sock = len(str(settings.supervisor_socket).encode())
    if sock > MAX_SOCKET_PATH:
        detail = f"too long: the socket path in it would be {sock} bytes, at most {MAX_SOCKET_PATH}"
        raise ConfigError([Problem("runtime_dir", sources["runtime_dir"], detail)])
    return settings


def resolve(
    fields: list[Field],
    given: Given,
    environ: Mapping[str, str],
    program: str | None,
    problems: list[Problem],
) -> tuple[dict[str, Any], dict[str, str]]:
    """``(values, sources)`` of ``fields``: the file's ``given`` values, then the environment.

    A field left unset gets its default (none for a computed one, which the
    caller derives); a required field left unset is a problem.
    """
    prefix = "" if program is None else f"{PROGRAMS_KEY}.{program}."
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for item in fields:
        candidates = [given[item.key]] if item.key in given else []
        before = len(problems)
        from_env = _from_env(environ, env_name(item.key, program), prefix + item.key, problems)
        if from_env is not None:
            candidates.append(from_env)
        sources[item.key] = "default"
        if len(problems) > before:  # the variable or its _FILE is wrong: already said
            continue
        if not candidates:
            if item.required:
                var = env_name(item.key, program)
                where = f"set {var} (or {var}_FILE) or {prefix}{item.key} in the file"
                problems.append(Problem(prefix + item.key, "default", f"required: {where}"))
            elif not isinstance(item.default, _Computed):
                candidates.append((encode(item.default), "default"))  # checked like any value
        for value, source in candidates:
            sources[item.key] = source
            try:
                values[item.key] = item.convert(value)
            except ValueError as exc:
                hint = ""
                if value == "" and source.startswith("env "):
                    hint = "; unset the variable to use the file's value or the default"
                if source == "default":
                    hint = "; the declared default is wrong"
                secret = item.secret or is_secret(item.key)
                shown = "<redacted>" if secret else conv.shown(value)
                problems.append(Problem(prefix + item.key, source, f"{exc}, got {shown}{hint}"))
    return values, sources


def _from_env(
    environ: Mapping[str, str], name: str, key: str, problems: list[Problem]
) -> tuple[object, str] | None:
    """``(value, source)`` from ``name`` or the file named by ``name_FILE``; None if unset."""
    file_var = name + "_FILE"
    if file_var not in environ:
        return (environ[name], f"env {name}") if name in environ else None
    if name in environ:
        problems.append(Problem(key, f"env {name} and env {file_var}", "both are set: unset one"))
        return None
    where = environ[file_var]
    try:
        with open(where, "rb") as handle:
            data = handle.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        detail = f"cannot read the file {where!r}: {exc.strerror or exc}"
        problems.append(Problem(key, f"env {file_var}", detail))
        return None
    if len(data) > MAX_SECRET_FILE_BYTES:
        detail = f"the file {where!r} is larger than {MAX_SECRET_FILE_BYTES} bytes"
        problems.append(Problem(key, f"env {file_var}", detail))
        return None
    text = data.decode("utf-8", "surrogateescape")
    text = text.removesuffix("\n").removesuffix("\r") if text.endswith("\n") else text
    return text, f"file {where} (env {file_var})"


# Per-program built-ins whose default is derived from another, in order: (key, basis, default).
_DERIVED = (
    ("health_max_age_seconds", "loop_sleep_seconds", default_health_max_age),
    ("watchdog_seconds", "health_max_age_seconds", default_watchdog),
)


def _computed_defaults(
    values: dict[str, Any],
    sources: dict[str, str],
    workers: tuple[str, ...],
    problems: list[Problem],
) -> dict[str, bool]:
    """Derive the top-level computed defaults; return which of them were set instead.

    ``health_max_age_seconds`` from the loop, ``watchdog_seconds`` from that,
    ``workers`` = every worker program (``workers``); the first two are checked.
    """
    set_at_top = {key: sources[key] != "default" for key in PER_PROGRAM}
    for key, basis, default in _DERIVED:
        if not set_at_top[key] and basis in values:
            values[key] = default(values[basis])
    _check_max_age(values, sources, "", problems)
    _check_watchdog(values, sources, "", problems)
    if sources["workers"] == "default":
        values["workers"] = workers
    return set_at_top


class _Computed:
    """The default of a field that :func:`load` derives (``health_max_age_seconds``...)."""


def _check_max_age(
    values: dict[str, Any], sources: dict[str, str], prefix: str, problems: list[Problem]
) -> None:
    max_age, loop = values.get("health_max_age_seconds"), values.get("loop_sleep_seconds")
    if max_age is not None and loop is not None and max_age <= loop:
        detail = f"must be greater than loop_sleep_seconds ({loop:g}), or workers are always stale"
        key = prefix + "health_max_age_seconds"
        problems.append(Problem(key, sources["health_max_age_seconds"], detail))


def _check_watchdog(
    values: dict[str, Any], sources: dict[str, str], prefix: str, problems: list[Problem]
) -> None:
    """``watchdog_seconds`` is 0 or at least ``health_max_age_seconds`` (readiness first).

    A program's section inheriting a top-level value already refused adds nothing.
    """
    watchdog, max_age = values.get("watchdog_seconds"), values.get("health_max_age_seconds")
    source = sources["watchdog_seconds"]
    derived = source == "default"  # 4 x a max age already checked
    said = source == "top-level watchdog_seconds" and any(
        p.key == "watchdog_seconds" for p in problems
    )
    if watchdog and max_age is not None and watchdog < max_age and not (derived or said):
        detail = (
            f"must be 0 (off) or at least health_max_age_seconds ({max_age:g}): readiness"
            " reports a slow worker before the watchdog restarts it"
        )
        problems.append(Problem(prefix + "watchdog_seconds", source, detail))


def _program(
    name: str,
    cls: type | None,
    *,
    given: Given,
    environ: Mapping[str, str],
    shared: dict[str, Any],
    set_at_top: dict[str, bool],
    problems: list[Problem],
) -> ProgramSettings | None:
    """One program's section: the per-program built-ins, then its declared settings.

    A built-in the section does not set takes the top-level value if that was
    set (``set_at_top``), else its default computed from the section's own loop.
    """
    prefix = f"{PROGRAMS_KEY}.{name}."
    convert, _ = converter_for(Seconds)
    loop_default = shared["loop_sleep_seconds"]
    builtins = [Field("loop_sleep_seconds", convert, loop_default, float, False)]
    builtins.append(Field("health_max_age_seconds", convert, _Computed(), float, False))
    off_or_seconds, _ = converter_for(SecondsOrOff)
    builtins.append(Field("watchdog_seconds", off_or_seconds, _Computed(), float, False))
    own_fields: list[Field] = []
    if cls is not None:
        try:
            own_fields = list(declared_fields(cls))
        except TypeError as exc:
            problems.append(Problem(prefix.rstrip("."), f"module {cls.__module__}", str(exc)))
            return None
        clash = [f.key for f in own_fields if f.key in PER_PROGRAM]
        if clash:
            detail = f"declares {clash[0]!r}, a built-in per-program setting: rename it"
            problems.append(Problem(prefix + clash[0], f"module {cls.__module__}", detail))
            return None
    keys = (*PER_PROGRAM, *(f.key for f in own_fields))
    for key, (_value, source) in given.items():
        if key not in keys:
            problems.append(Problem(prefix + key, source, "unknown key" + suggest(key, keys)))
    names = {env_name(key, name) for key in keys}  # env names are case-sensitive
    known = tuple(sorted(names | {var + "_FILE" for var in names}))
    for var in sorted(environ):
        if var.startswith(env_prefix(name) + "__") and var not in known:
            key = prefix + var.partition("__")[2].lower()
            problems.append(Problem(key, f"env {var}", "unknown key" + suggest(var, known)))
    before = len(problems)
    values, sources = resolve([*builtins, *own_fields], given, environ, name, problems)
    for key, basis, default in _DERIVED:
        if basis in values and sources[key] == "default":
            if set_at_top[key]:
                values[key] = shared[key]
                sources[key] = f"top-level {key}"
            else:
                values[key] = default(values[basis])
    _check_max_age(values, sources, prefix, problems)
    _check_watchdog(values, sources, prefix, problems)
    if len(problems) > before:
        return None
    own = None
    if cls is not None:
        try:
            own = cls(**{f.key: values[f.key] for f in own_fields})
        except Exception as exc:  # the declaration's own checks (__post_init__)
            detail = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
            problems.append(Problem(prefix.rstrip("."), f"checks of {cls.__qualname__}", detail))
            return None
    builtin_values = {key: values[key] for key in PER_PROGRAM}
    return ProgramSettings(name, **builtin_values, own=own, sources=sources)


def _check_program_env(
    environ: Mapping[str, str], declarations: Mapping[str, type | None], problems: list[Problem]
) -> None:
    """An ``APP_<PROGRAM>__<KEY>`` variable must name a known program (its keys: _program)."""
    prefixes = tuple(env_prefix(name) for name in declarations)
    for var in sorted(environ):
        head, _, rest = var.partition("__")
        if not var.startswith(ENV_PREFIX) or "__" not in var or head in prefixes:
            continue
        close = closest(
            head, prefixes
        )  # the whole variable: APP_URL_CHECKR__URL -> ..._CHECKER__URL
        hint = f"; did you mean {close + '__' + rest!r}?" if close else ""
        name = head.removeprefix(ENV_PREFIX).lower()
        detail = "no worker program of that name" + hint
        problems.append(Problem(f"{PROGRAMS_KEY}.{name}", f"env {var}", detail))
