"""Tiny value converters: each takes a raw value (an env string or a YAML scalar).

Each returns the parsed value or raises :class:`ValueError` whose message says
what was expected ("expected an integer in 1..65535"); the caller adds the key
and the source. Modelled on supervisor's ``datatypes.py``.
"""

from __future__ import annotations

import math
import re
import reprlib
from pathlib import Path

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
TRUE_WORDS = frozenset({"true", "yes", "on", "1"})  # also supervisor's (supervisor.datatypes)
FALSE_WORDS = frozenset({"false", "no", "off", "0"})
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
_PROGRAM = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,62}")
MAX_SECONDS = 7 * 24 * 3600.0


_REPR = reprlib.Repr()
_REPR.maxstring = _REPR.maxother = 80
_REPR.maxlevel, _REPR.maxlist, _REPR.maxdict = 2, 4, 4


def shown(value: object) -> str:
    """A bounded ``repr(value)`` (:mod:`reprlib`): no value, however nested, floods the log."""
    if value is None:
        return "an empty value"
    text = _REPR.repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _str(value: object, expected: str) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected {expected}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes in an env value (PEP 383)
        raise ValueError("expected UTF-8 text") from None
    return value


def text(value: object) -> str:
    """A non-empty single-line string of at most 256 characters."""
    value = _str(value, "a string (in YAML, quote values such as '1.10' or '0123')")
    if not value.strip() or len(value) > 256 or any(c in value for c in "\r\n\0"):
        raise ValueError("expected a non-empty single-line string of at most 256 characters")
    return value


def name(value: object) -> str:
    """A name of letters, digits, ``_``, ``.`` and ``-`` (as in a hostname or label)."""
    if not _NAME.fullmatch(_str(value, "a name")):
        raise ValueError("expected a name of 1-63 letters, digits, '_', '.' or '-'")
    return str(value)


def host(value: object) -> str:
    """An address to bind, e.g. ``127.0.0.1`` or ``0.0.0.0`` (not checked further)."""
    if not re.fullmatch(r"[A-Za-z0-9.:_-]{1,253}", _str(value, "a host or IP address")):
        raise ValueError("expected a host name or IP address")
    return str(value)


def integer(value: object, low: int, high: int) -> int:
    """An integer in ``low..high``; strings like ``"42"`` are parsed, booleans refused."""
    expected = f"an integer in {low}..{high}"
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"expected {expected}")
    if isinstance(value, str) and not re.fullmatch(r"\s*-?[0-9]{1,40}\s*", value):
        raise ValueError(f"expected {expected}")  # int() would take "8_0" and other digits
    number = int(value) if isinstance(value, str) else value
    if not low <= number <= high:
        raise ValueError(f"expected {expected}")
    return number


def port(value: object) -> int:
    """A TCP port number, 1..65535."""
    return integer(value, 1, 65535)


def positive_seconds(value: object, *, zero: bool = False) -> float:
    """A finite number of seconds, greater than 0 (or 0 if ``zero``) and at most one week."""
    expected = f"a number of seconds > 0 and <= {MAX_SECONDS:g}"
    if zero:
        expected = f"0 (off) or {expected}"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected {expected}")
    try:
        number = float(value)
    except (ValueError, OverflowError):  # OverflowError: a YAML int too large for a float
        raise ValueError(f"expected {expected}") from None
    if not (
        math.isfinite(number) and (number > 0 or (zero and number == 0)) and number <= MAX_SECONDS
    ):
        raise ValueError(f"expected {expected}")
    return number


def seconds_or_off(value: object) -> float:
    """0 (off) or a number of seconds > 0 and at most one week."""
    return positive_seconds(value, zero=True)


def boolean(value: object) -> bool:
    """true/false, yes/no, on/off or 1/0 in any case (YAML booleans pass through)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in TRUE_WORDS:
            return True
        if lowered in FALSE_WORDS:
            return False
    raise ValueError("expected a boolean: true/false, yes/no, on/off or 1/0")


def log_level(value: object) -> str:
    """One of DEBUG, INFO, WARNING, ERROR, CRITICAL, in any case."""
    if isinstance(value, str) and value.strip().upper() in LOG_LEVELS:
        return value.strip().upper()
    raise ValueError("expected one of " + ", ".join(LOG_LEVELS))


def program_list(value: object) -> tuple[str, ...]:
    """Supervisord program names, as a YAML list or a comma-separated string."""
    expected = "a non-empty list of supervisord program names (letters, digits, '_', '-')"
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ValueError(f"expected {expected}")
    names = tuple(item.strip() if isinstance(item, str) else item for item in items)
    if not all(isinstance(n, str) and _PROGRAM.fullmatch(n) for n in names):
        raise ValueError(f"expected {expected}")
    if len(set(names)) != len(names):
        raise ValueError(f"expected {expected} without duplicates")
    return names


def number(value: object, low: float, high: float) -> float:
    """A finite number in ``low..high``; strings like ``"0.5"`` are parsed, booleans refused."""
    expected = f"a number in {low:g}..{high:g}"
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected {expected}")
    try:
        result = float(value)
    except (ValueError, OverflowError):
        raise ValueError(f"expected {expected}") from None
    if not (math.isfinite(result) and low <= result <= high):
        raise ValueError(f"expected {expected}")
    return result


def any_text(value: object) -> str:
    """Any single-line string, possibly empty (at most 4096 characters)."""
    value = _str(value, "a string (in YAML, quote values such as '1.10' or '0123')")
    if len(value) > 4096 or any(c in value for c in "\r\n\0"):
        raise ValueError("expected a single-line string of at most 4096 characters")
    return value


def string_list(value: object) -> tuple[str, ...]:
    """A YAML list of strings, or a comma-separated string (``"a,b"``); items are stripped."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not all(isinstance(i, str) for i in items):
        raise ValueError("expected a list of strings (in the environment: comma-separated)")
    stripped = tuple(item.strip() for item in items)
    return () if stripped == ("",) else stripped


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s/?#]+[^\s]*")


def url(value: object) -> str:
    """An absolute URL with a scheme and a host, e.g. ``https://api.example.com/v1``."""
    text_value = _str(value, "a URL")
    if not _URL.fullmatch(text_value) or len(text_value) > 2048:
        raise ValueError("expected an absolute URL such as 'https://host/path'")
    from urllib.parse import urlsplit  # loaded already: prometheus_client imports it

    try:
        parts = urlsplit(text_value)
        parts.port  # noqa: B018 - raises ValueError when out of 0..65535
    except ValueError:
        raise ValueError("expected an absolute URL with a port in 1..65535") from None
    if not parts.hostname or parts.port == 0:
        raise ValueError("expected an absolute URL with a host (and a port in 1..65535)")
    return text_value


def path(value: object) -> str:
    """A non-empty file system path (not checked for existence)."""
    text_value = _str(value, "a path")
    if not text_value.strip() or "\0" in text_value or len(text_value) > 4096:
        raise ValueError("expected a non-empty path")
    return text_value


def directory(value: object) -> Path:
    """A directory path (a non-empty single-line string), made absolute."""
    return Path(text(value)).absolute()


def command_list(value: object) -> tuple[str, ...]:
    """Command lines: a YAML list of strings, or one per line in the environment.

    Each is split into words by :func:`shlex.split` with ``comments=True``
    (POSIX quoting and backslashes, ``#`` starts a comment; no variables, no
    globbing), and no shell runs it: write ``sh -c '...'`` for pipes or
    variables. Blank and comment-only lines of an environment value are
    skipped; a list item with no word is an error.
    """
    import shlex

    expected = "a list of command lines (in the environment: one per line)"
    if isinstance(value, str):
        items: object = value.splitlines()
    else:
        items = value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ValueError(f"expected {expected}")
    commands = []
    unit = "line" if isinstance(value, str) else "command"
    for number, item in enumerate(items, 1):
        try:
            words = shlex.split(item, comments=True)
        except ValueError as exc:
            raise ValueError(f"{unit} {number} does not split into words ({exc})") from None
        if words:
            commands.append(item.strip())
        elif not isinstance(value, str):
            raise ValueError(f"command {number} has no word to run")
    return tuple(commands)
