"""Declaring settings: a frozen dataclass whose field types say how each value is read.

The built-in settings (:class:`common.config.Settings`) and every worker's own
``Settings`` (``services/<program>/settings.py``) are declared this way and
read by the same loader (:func:`common.config.load_settings`), so every value
gets the same conversion, range checks and error messages. A field's type
picks its converter (:mod:`common.converters`):

=====================================  =============================================
type                                   accepts
=====================================  =============================================
``str``                                any single-line text (may be empty)
``int``, ``float``                     a number (``"8"``, ``8``; booleans refused)
``bool``                               true/false, yes/no, on/off, 1/0
:data:`Seconds`                        a number of seconds > 0 and <= 1 week
``tuple[str, ...]``                    a YAML list, or ``"a,b"`` in the environment
:class:`URL`                           an absolute URL with scheme and host
``pathlib.Path``                       a non-empty path
:class:`Secret`                        text that is never logged (``.reveal()``)
``Literal["a", "b"]``                  one of the listed strings
``Annotated[int, between(0, 10)]``     a number in the range (int or float)
``Annotated[T, converter]``            whatever ``converter(raw)`` returns
=====================================  =============================================

A field without a default is required. A declaration module must import only
the standard library and ``common.settings``: ``app-entrypoint`` (PID 1)
imports it to validate every program before anything starts.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from common import converters as conv

Converter = Callable[[object], Any]
RESOLVED = "resolved"  # field metadata: filled by the loader (sources...), not a setting
Seconds = Annotated[float, conv.positive_seconds]
# What a worker's settings.py uses; Field, declared_fields... are the loader's.
__all__ = ["URL", "Seconds", "Secret", "between"]


class URL(str):
    """An absolute URL (``scheme://host...``), checked by :func:`common.converters.url`."""

    __slots__ = ()


class Secret:
    """A value that is never shown: ``repr``/``str`` and ``config_loaded`` say ``<redacted>``.

    ``reveal()`` returns the text, for the one call that needs it.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret text."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('<redacted>')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


def between(low: float, high: float) -> Converter:
    """A range check: a number in ``low..high``.

    As in ``Annotated[int, between(1, 10)]``: integers when both bounds are
    ints, else floats.
    """
    if isinstance(low, int) and isinstance(high, int):
        return lambda value: conv.integer(value, low, high)
    return lambda value: conv.number(value, low, high)


_BY_TYPE: dict[object, Converter] = {
    str: conv.any_text,
    int: lambda value: conv.integer(value, -(2**63), 2**63 - 1),
    float: lambda value: conv.number(value, -1e308, 1e308),
    bool: conv.boolean,
    URL: lambda value: URL(conv.url(value)),
    Path: lambda value: Path(conv.path(value)),
    Secret: lambda value: Secret(conv.any_text(value)),
}


@dataclasses.dataclass(frozen=True)
class Field:
    """One declared setting: its key, converter, default (``MISSING``: required) and type."""

    key: str
    convert: Converter
    default: Any
    type: Any
    secret: bool

    @property
    def required(self) -> bool:
        """True when the declaration gives no default."""
        return self.default is dataclasses.MISSING


def converter_for(annotation: Any) -> tuple[Converter, bool]:
    """``(converter, is_secret)`` for a field's type; raises :class:`TypeError` if unsupported."""
    if typing.get_origin(annotation) is Annotated:
        base, *metadata = typing.get_args(annotation)
        given = [item for item in metadata if callable(item)]
        if given:
            return given[-1], base is Secret
        annotation = base
    if annotation in _BY_TYPE:
        return _BY_TYPE[annotation], annotation is Secret
    if typing.get_origin(annotation) is Literal:
        choices = typing.get_args(annotation)
        if not all(isinstance(choice, str) for choice in choices):
            raise TypeError("a Literal setting takes strings only (an env value is text)")
        return _choice(choices), False
    if typing.get_origin(annotation) is tuple and typing.get_args(annotation) == (str, ...):
        return conv.string_list, False
    raise TypeError(f"unsupported setting type {annotation!r} (see common/settings.py)")


def _choice(choices: tuple[str, ...]) -> Converter:
    def convert(value: object) -> str:
        if isinstance(value, str) and value in choices:
            return value
        raise ValueError("expected one of " + ", ".join(repr(c) for c in choices))

    return convert


def declared_fields(cls: type) -> tuple[Field, ...]:
    """The settings ``cls`` (a dataclass) declares, in order.

    Fields with ``init=False`` or ``metadata={RESOLVED: ...}`` are not settings.

    Raises :class:`TypeError` naming the class and field for anything the loader
    cannot read (not a dataclass, an unsupported type).
    """
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls.__module__}.{cls.__qualname__} is not a dataclass")
    try:
        hints = typing.get_type_hints(cls, include_extras=True)
    except NameError as exc:  # a type imported under TYPE_CHECKING only, say
        raise TypeError(
            f"{cls.__module__}.{cls.__qualname__}: cannot resolve an annotation ({exc});"
            " import its types at module level"
        ) from None
    result = []
    for item in dataclasses.fields(cls):
        if not item.init or RESOLVED in item.metadata:
            continue
        try:
            convert, secret = converter_for(hints[item.name])
        except TypeError as exc:
            raise TypeError(f"{cls.__module__}.{cls.__qualname__}.{item.name}: {exc}") from None
        default = item.default
        if item.default_factory is not dataclasses.MISSING:
            default = item.default_factory()
        result.append(Field(item.name, convert, default, hints[item.name], secret))
    return tuple(result)


def encode(value: Any) -> Any:
    """``value`` as JSON holds it and its converter reads it again (the snapshot, defaults).

    Secret as its text, tuples as lists, str/int/float/bool/None as they are,
    anything else (a Path, a custom converter's object) as ``str(value)``.
    """
    if isinstance(value, Secret):
        return value.reveal()
    if isinstance(value, tuple | list):
        return [encode(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)


def shown(value: Any, secret: bool) -> Any:
    """``value`` as ``config_loaded`` logs it: secrets ``<redacted>``, paths as text."""
    if secret or isinstance(value, Secret):
        return "<redacted>"
    return encode(value)
