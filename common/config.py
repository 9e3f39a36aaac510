"""Settings: environment (``APP_*``) > YAML file (``APP_CONFIG_PATH``) > defaults.

Validation has two layers, as in supervisor's ``datatypes.py`` + ``options.py``:
tiny converters in :mod:`common.converters` raise :class:`ValueError` saying what
they expected, and :func:`load_settings` wraps each call with *where* the value
came from. Every problem found in one load is collected into a single
:class:`ConfigError`; nothing falls back silently to a default.

An empty environment variable (``APP_ENV=``) is a value like any other and is
validated as such: it is never read as "unset". Unset it to use the file or the
default.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import converters as conv

ENV_PREFIX = "APP_"
CONFIG_PATH_ENV = "APP_CONFIG_PATH"
DEFAULT_CONFIG_PATH = "config.yml"
MAX_CONFIG_BYTES = 1024 * 1024
EX_CONFIG = 78  # sysexits.h: configuration error
MAX_SOCKET_PATH = 107  # bytes: sun_path of struct sockaddr_un on Linux, unix(7)


@dataclass(frozen=True)
class Problem:
    """One invalid setting: which key, where it came from, what was wrong."""

    key: str
    source: str
    detail: str

    def __str__(self) -> str:
        return f"{self.key} ({self.source}): {self.detail}"


class ConfigError(Exception):
    """Raised when settings cannot be loaded; ``problems`` lists every one found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


@dataclass(frozen=True)
class Settings:
    """Resolved, validated settings shared by every program.

    ``sources`` maps each key to where its value came from, e.g.
    ``"env APP_METRICS_PORT"``, ``"config.yml line 4"`` or ``"default"``.
    """

    service_name: str
    env: str
    log_level: str
    metrics_enabled: bool
    metrics_host: str
    metrics_port: int
    loop_sleep_seconds: float
    health_max_age_seconds: float
    version: str
    commit: str
    instance: str
    runtime_dir: Path
    workers: tuple[str, ...]
    fail_fast: bool
    sources: Mapping[str, str]

    @property
    def multiproc_dir(self) -> Path:
        """The Prometheus multiprocess directory: ``<runtime_dir>/prometheus``."""
        return self.runtime_dir / "prometheus"

    @property
    def supervisor_socket(self) -> Path:
        """Supervisord's control socket, as named in ``supervisord.conf``."""
        return self.runtime_dir / "supervisor.sock"


_COMPUTED = object()  # a default that load_settings derives from other values

# key -> (converter, default)
_FIELDS: dict[str, tuple[Callable[[object], Any], object]] = {
    "service_name": (conv.name, "app"),
    "env": (conv.name, "local"),
    "log_level": (conv.log_level, "INFO"),
    "metrics_enabled": (conv.boolean, True),
    "metrics_host": (conv.host, "127.0.0.1"),
    "metrics_port": (conv.port, 8000),
    "loop_sleep_seconds": (conv.positive_seconds, 5.0),
    "health_max_age_seconds": (conv.positive_seconds, _COMPUTED),
    "version": (conv.text, "0.0.0-dev"),
    "commit": (conv.text, "unknown"),
    "instance": (conv.name, _COMPUTED),
    "runtime_dir": (conv.text, ".run"),
    "workers": (conv.program_list, "sync_worker,async_worker"),
    "fail_fast": (conv.boolean, True),
}
KEYS = tuple(_FIELDS)
# The identity (service, env, instance) app-entrypoint resolved, as JSON, for PID 1's last line.
SUPERVISORD_IDENTITY_ENV = "APP_SUPERVISORD_IDENTITY"
# Variables the entrypoint sets for supervisord.conf and PID 1; not settings, not typos.
_INTERNAL_ENV = {
    CONFIG_PATH_ENV,
    "APP_SUPERVISORD_USER",
    "APP_SUPERVISORD_FAIL_FAST",
    SUPERVISORD_IDENTITY_ENV,
}


def default_health_max_age(loop_sleep_seconds: float) -> float:
    """Default freshness bound in seconds: ``max(30, 3 * loop_sleep_seconds)``."""
    return max(30.0, 3.0 * loop_sleep_seconds)


def suggest(word: str, choices: tuple[str, ...]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest of ``choices``, or ``""``."""
    import difflib  # only on the error path

    close = difflib.get_close_matches(word, choices, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Load and validate settings from ``environ`` (default ``os.environ``) and YAML.

    Raises :class:`ConfigError` carrying every problem found (bad value, unknown
    YAML key, unreadable or malformed file).
    """
    from common.yamlfile import read_config_file  # lazy: PyYAML only if needed

    environ = os.environ if environ is None else environ
    problems: list[Problem] = []
    path_value = environ.get(CONFIG_PATH_ENV)
    if path_value == "":
        problem = "expected a file path, got ''; unset it to use config.yml"
        raise ConfigError([Problem(CONFIG_PATH_ENV, f"env {CONFIG_PATH_ENV}", problem)])
    path = Path(path_value or DEFAULT_CONFIG_PATH)
    file_values, file_problems = read_config_file(path, path_value is not None, MAX_CONFIG_BYTES)
    problems.extend(file_problems)
    candidates: dict[str, list[tuple[object, str]]] = {key: [] for key in _FIELDS}
    for key, (value, line) in file_values.items():
        if key not in _FIELDS:
            problems.append(Problem(key, f"{path} line {line}", "unknown key" + suggest(key, KEYS)))
        else:
            candidates[key].append((value, f"{path} line {line}"))
    for key in _FIELDS:
        env_name = ENV_PREFIX + key.upper()
        if env_name in environ:
            candidates[key].append((environ[env_name], f"env {env_name}"))

    # Every given value is checked, also a file value that the environment overrides.
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key, (convert, default) in _FIELDS.items():
        given = candidates[key] or [(default, "default")]
        for value, source in given:
            sources[key] = source
            if value is _COMPUTED:
                continue
            try:
                values[key] = convert(value)
            except ValueError as exc:
                hint = ""
                if value == "" and source.startswith("env "):
                    hint = "; unset the variable to use the file's value or the default"
                shown = "<redacted>" if is_secret(key) else conv.shown(value)
                problems.append(Problem(key, source, f"{exc}, got {shown}{hint}"))

    if "health_max_age_seconds" not in values and "loop_sleep_seconds" in values:
        values["health_max_age_seconds"] = default_health_max_age(values["loop_sleep_seconds"])
    max_age, loop = values.get("health_max_age_seconds"), values.get("loop_sleep_seconds")
    if max_age is not None and loop is not None and max_age <= loop:
        detail = f"must be greater than loop_sleep_seconds ({loop:g}), or workers are always stale"
        problems.append(
            Problem("health_max_age_seconds", sources["health_max_age_seconds"], detail)
        )
    if problems:
        raise ConfigError(problems)

    if "instance" not in values:
        values["instance"] = socket.gethostname() or "localhost"
    values["runtime_dir"] = Path(values["runtime_dir"]).absolute()
    settings = Settings(**values, sources=sources)
    sock = len(str(settings.supervisor_socket).encode())
    if sock > MAX_SOCKET_PATH:
        detail = f"too long: the socket path in it would be {sock} bytes, at most {MAX_SOCKET_PATH}"
        raise ConfigError([Problem("runtime_dir", sources["runtime_dir"], detail)])
    return settings


SECRET_WORDS = ("password", "secret", "token", "key", "dsn")


def is_secret(key: str) -> bool:
    """True for a key whose value must never be logged (it names a password, token...)."""
    return any(word in key.lower() for word in SECRET_WORDS)


def effective_settings(settings: Settings) -> dict[str, dict[str, object]]:
    """``{key: {"value": ..., "source": ...}}`` for logging; secret values are redacted."""
    report: dict[str, dict[str, object]] = {}
    for key in KEYS:
        value = getattr(settings, key)
        if is_secret(key):
            value = "<redacted>"
        elif isinstance(value, Path | tuple):
            value = str(value) if isinstance(value, Path) else list(value)
        report[key] = {"value": value, "source": settings.sources[key]}
    return report


def unknown_env_names(environ: Mapping[str, str] | None = None) -> list[str]:
    """``APP_*`` variables that name no setting, each with a suggestion if one is close.

    Not an error: orchestrators inject their own ``APP_*`` variables (Kubernetes
    service links for a Service named ``app``), so these are logged as warnings.
    """
    environ = os.environ if environ is None else environ
    known = {ENV_PREFIX + key.upper() for key in KEYS} | _INTERNAL_ENV
    env_keys = tuple(sorted(known))
    return [
        name + suggest(name, env_keys)
        for name in sorted(environ)
        if name.startswith(ENV_PREFIX) and name not in known
    ]
