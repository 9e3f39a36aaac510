"""Settings: environment (``APP_*``) > YAML file (``APP_CONFIG_PATH``) > defaults.

Validation has two layers, as in supervisor's ``datatypes.py`` + ``options.py``:
tiny converters in :mod:`common.converters` raise :class:`ValueError` saying what
they expected, and :func:`load_settings` wraps each call with *where* the value
came from. Every problem found in one load is collected into a single
:class:`ConfigError`; nothing falls back silently to a default.

The built-in settings are :class:`Settings`; each worker program may declare
its own (``services/<program>/settings.py``, see :mod:`common.settings`), read
from ``APP_<PROGRAM>__<KEY>`` > ``programs: {<program>: {<key>: ...}}`` >
the declared default. ``loop_sleep_seconds``, ``health_max_age_seconds`` and
``watchdog_seconds`` can be set per program the same way; the top-level value
is every program's default. Any setting's variable ``APP_X`` may be given as ``APP_X_FILE`` (a
path whose content is the value, one trailing newline stripped: the Docker
and Kubernetes secrets convention).

An empty environment variable (``APP_ENV=``) is a value like any other and is
validated as such: it is never read as "unset". Unset it to use the file or the
default.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from common import converters as conv
from common.settings import RESOLVED, Seconds

ENV_PREFIX = "APP_"
CONFIG_PATH_ENV = "APP_CONFIG_PATH"
DEFAULT_CONFIG_PATH = "config.yml"
MAX_CONFIG_BYTES = 1024 * 1024
EX_CONFIG = 78  # sysexits.h: configuration error
MAX_SOCKET_PATH = 107  # bytes: sun_path of struct sockaddr_un on Linux, unix(7)
# The resolved settings app-entrypoint wrote (common.snapshot); programs read only that.
SNAPSHOT_ENV = "APP_RESOLVED_SETTINGS"
# The identity (service, env, instance) app-entrypoint resolved, as JSON, for PID 1's last line.
SUPERVISORD_IDENTITY_ENV = "APP_SUPERVISORD_IDENTITY"
# Which worker programs start, and their watchdog bounds, as JSON (entrypoint.workers).
SUPERVISORD_PROGRAMS_ENV = "APP_SUPERVISORD_PROGRAMS"
# Variables the entrypoint sets for supervisord.conf and PID 1; not settings, not typos.
INTERNAL_ENV = {
    CONFIG_PATH_ENV,
    SNAPSHOT_ENV,
    "APP_SUPERVISORD_USER",
    "APP_SUPERVISORD_FAIL_FAST",
    SUPERVISORD_IDENTITY_ENV,
    SUPERVISORD_PROGRAMS_ENV,
}
SecondsOrOff = Annotated[float, conv.seconds_or_off]  # 0 turns the thing off
COMPUTED = "computed"  # field metadata: the default is derived by load_settings


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
class ProgramSettings:
    """One worker program's resolved settings.

    ``own`` is the instance of the worker's declared ``Settings`` (None when it
    declares none, or when this process did not load its declaration);
    ``sources`` maps each key to where its value came from.
    """

    name: str
    loop_sleep_seconds: float
    health_max_age_seconds: float
    watchdog_seconds: float
    own: Any = None
    sources: Mapping[str, str] = field(default_factory=dict)

    def values(self) -> dict[str, tuple[Any, bool]]:
        """``{key: (value, declared secret)}``: the built-ins, then the declared settings."""
        values: dict[str, tuple[Any, bool]] = {
            key: (getattr(self, key), False) for key in PER_PROGRAM
        }
        if self.own is not None:
            from common.settings import declared_fields

            for item in declared_fields(type(self.own)):
                values[item.key] = (getattr(self.own, item.key), item.secret)
        return values


@dataclass(frozen=True)
class Settings:
    """Resolved, validated settings shared by every program.

    ``sources`` maps each key to where its value came from, e.g.
    ``"env APP_METRICS_PORT"``, ``"config.yml line 4"`` or ``"default"``;
    ``programs`` holds each worker program's section (:class:`ProgramSettings`).
    """

    service_name: Annotated[str, conv.name] = "app"
    env: Annotated[str, conv.name] = "local"
    log_level: Annotated[str, conv.log_level] = "INFO"
    log_format: Literal["json", "console"] = "json"
    metrics_enabled: bool = True
    metrics_host: Annotated[str, conv.host] = "127.0.0.1"
    metrics_port: Annotated[int, conv.port] = 8000
    loop_sleep_seconds: Seconds = 5.0
    health_max_age_seconds: Seconds = field(default=30.0, metadata={COMPUTED: True})
    watchdog_seconds: SecondsOrOff = field(default=120.0, metadata={COMPUTED: True})
    version: Annotated[str, conv.text] = "0.0.0-dev"
    commit: Annotated[str, conv.text] = "unknown"
    instance: Annotated[str, conv.name] = field(default="localhost", metadata={COMPUTED: True})
    runtime_dir: Annotated[Path, conv.directory] = Path(".run")
    # Default: every worker program of supervisord.conf (the loader's declarations).
    workers: Annotated[tuple[str, ...], conv.program_list] = field(
        default=(), metadata={COMPUTED: True}
    )
    fail_fast: bool = True
    # Set-up commands app-entrypoint runs, in order, before supervisord (entrypoint.prestart).
    prestart: Annotated[tuple[str, ...], conv.command_list] = ()
    prestart_timeout_seconds: Seconds = 60.0
    programs: Mapping[str, ProgramSettings] = field(default_factory=dict, metadata={RESOLVED: 1})
    sources: Mapping[str, str] = field(default_factory=dict, metadata={RESOLVED: 1})

    @property
    def multiproc_dir(self) -> Path:
        """The Prometheus multiprocess directory: ``<runtime_dir>/prometheus``."""
        return self.runtime_dir / "prometheus"

    @property
    def supervisor_socket(self) -> Path:
        """Supervisord's control socket, as named in ``supervisord.conf``."""
        return self.runtime_dir / "supervisor.sock"

    def program(self, name: str) -> ProgramSettings:
        """``name``'s section; a program without one gets the top-level values."""
        found = self.programs.get(name)
        if found is not None:
            return found
        return ProgramSettings(
            name, self.loop_sleep_seconds, self.health_max_age_seconds, self.watchdog_seconds
        )


KEYS = tuple(f.name for f in dataclasses.fields(Settings) if RESOLVED not in f.metadata)
PER_PROGRAM = ("loop_sleep_seconds", "health_max_age_seconds", "watchdog_seconds")
WATCHDOG_PER_MAX_AGE = 4  # watchdog_seconds defaults to this many health_max_age_seconds


def default_health_max_age(loop_sleep_seconds: float) -> float:
    """Default freshness bound in seconds: ``max(30, 3 * loop_sleep_seconds)``."""
    return max(30.0, 3.0 * loop_sleep_seconds)


def default_watchdog(health_max_age_seconds: float) -> float:
    """Default hang bound in seconds: 4 x ``health_max_age_seconds`` (120 s by default).

    Readiness (``/readyz`` 503) reacts first, at 1 x; a restart needs four times
    as long without progress, so an iteration that is only slow is reported,
    not killed.
    """
    return WATCHDOG_PER_MAX_AGE * health_max_age_seconds


def closest(word: str, choices: tuple[str, ...]) -> str | None:
    """The one of ``choices`` closest to ``word`` (:mod:`difflib`), or None."""
    import difflib  # only on the error path

    close = difflib.get_close_matches(word, choices, n=1)
    return close[0] if close else None


def suggest(word: str, choices: tuple[str, ...]) -> str:
    """Return ``"; did you mean 'x'?"`` for the closest of ``choices``, or ``""``."""
    close = closest(word, choices)
    return f"; did you mean {close!r}?" if close else ""


def env_prefix(program: str) -> str:
    """``APP_<PROGRAM>``: what a program's variables start with, before ``__<KEY>``."""
    return ENV_PREFIX + program.upper().replace("-", "_")


def env_name(key: str, program: str | None = None) -> str:
    """``APP_<KEY>``, or ``APP_<PROGRAM>__<KEY>`` for a program's own section."""
    if program is None:
        return ENV_PREFIX + key.upper()
    return f"{env_prefix(program)}__{key.upper()}"


def load_settings(
    environ: Mapping[str, str] | None = None,
    declarations: Mapping[str, type | None] | None = None,
) -> Settings:
    """Load and validate every setting; raise :class:`ConfigError` carrying every problem.

    ``declarations`` maps each worker program whose section may appear to its
    declared ``Settings`` class (or None). When ``APP_RESOLVED_SETTINGS`` names a
    snapshot (under supervisord), that is read instead of the environment and
    the file (:mod:`common.snapshot`).
    """
    environ = os.environ if environ is None else environ
    declarations = declarations or {}
    snapshot = environ.get(SNAPSHOT_ENV)
    if snapshot:
        from common.snapshot import read_snapshot

        return read_snapshot(Path(snapshot), declarations)
    from common.loader import load

    return load(environ, declarations)


SECRET_WORDS = ("password", "secret", "token", "key", "dsn")


def is_secret(key: str) -> bool:
    """True for a key whose value must never be logged (it names a password, token...)."""
    return any(word in key.lower() for word in SECRET_WORDS)


def effective_settings(
    settings: Settings, programs: tuple[str, ...] | None = None
) -> dict[str, Any]:
    """``{key: {"value": ..., "source": ...}}`` for logging; secret values are redacted.

    ``programs`` (default: every section held) adds ``"programs": {name: {...}}``.
    """
    from common.settings import shown

    report: dict[str, Any] = {
        key: {
            "value": shown(getattr(settings, key), is_secret(key)),
            "source": settings.sources[key],
        }
        for key in KEYS
    }
    sections: dict[str, Any] = {}
    for name in settings.programs if programs is None else programs:
        section = settings.program(name)
        sections[name] = {
            key: {
                "value": shown(value, secret or is_secret(key)),
                "source": section.sources.get(key, "default"),
            }
            for key, (value, secret) in section.values().items()
        }
    if sections:
        report["programs"] = sections
    return report


def unknown_env_names(
    environ: Mapping[str, str] | None = None, programs: tuple[str, ...] = ()
) -> list[str]:
    """Top-level ``APP_*`` variables that name no setting, each with a suggestion if close.

    Not an error: orchestrators inject their own ``APP_*`` variables (Kubernetes
    service links for a Service named ``app``), so these are logged as warnings.
    Variables with ``__`` address a program's section and are checked, as
    errors, by the loader.
    """
    environ = os.environ if environ is None else environ
    names = {env_name(key) for key in KEYS}
    known = names | {name + "_FILE" for name in names} | INTERNAL_ENV
    env_keys = tuple(sorted(known))
    return [
        name + suggest(name, env_keys)
        for name in sorted(environ)
        if name.startswith(ENV_PREFIX) and name not in known and "__" not in name
    ]
