"""Declared settings: each field type picks a converter; secrets never show."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import pytest

from common.settings import URL, Seconds, Secret, between, declared_fields, shown


@dataclass(frozen=True)
class Every:
    """One field of each supported type."""

    text: str = ""
    count: int = 0
    ratio: float = 0.5
    flag: bool = False
    wait: Seconds = 1.0
    names: tuple[str, ...] = ()
    endpoint: URL = URL("http://localhost/")
    where: Path = Path("/tmp")
    token: Secret = Secret("")
    mode: Literal["fast", "slow"] = "fast"
    retries: Annotated[int, between(0, 10)] = 3
    share: Annotated[float, between(0.0, 1.0)] = 0.5
    required: str = "x"


def convert(key: str, value: object) -> object:
    """The value as the loader converts it for ``Every.<key>``."""
    [field] = [f for f in declared_fields(Every) if f.key == key]
    return field.convert(value)


@pytest.mark.parametrize(
    ("key", "raw", "expected"),
    [
        ("text", "hello world", "hello world"),
        ("count", "-42", -42),
        ("ratio", "0.25", 0.25),
        ("flag", "yes", True),
        ("wait", "2.5", 2.5),
        ("names", "a, b,c", ("a", "b", "c")),
        ("names", ["x", "y"], ("x", "y")),
        ("names", "", ()),
        ("endpoint", "https://api.example.com/v1?q=1", "https://api.example.com/v1?q=1"),
        ("where", "data/file.db", Path("data/file.db")),
        ("mode", "slow", "slow"),
        ("retries", "10", 10),
        ("share", 1, 1.0),
    ],
)
def test_each_type_converts_its_raw_values(key: str, raw: object, expected: object) -> None:
    """An env string or a YAML value becomes the field's type."""
    assert convert(key, raw) == expected


@pytest.mark.parametrize(
    ("key", "raw", "message"),
    [
        ("count", "1.5", "expected an integer"),
        ("count", True, "expected an integer"),
        ("ratio", "nan", "expected a number"),
        ("flag", "maybe", "expected a boolean"),
        ("wait", "0", "expected a number of seconds > 0"),
        ("names", [1, 2], "expected a list of strings"),
        ("endpoint", "api.example.com", "expected an absolute URL"),
        ("endpoint", "http://127.0.0.1:99999/", "with a port in 1..65535"),
        ("endpoint", "http://:80/", "with a host"),
        ("where", "", "expected a non-empty path"),
        ("mode", "medium", "expected one of 'fast', 'slow'"),
        ("retries", "11", "expected an integer in 0..10"),
        ("share", "1.5", "expected a number in 0..1"),
        ("text", "two\nlines", "expected a single-line string"),
    ],
)
def test_each_type_refuses_what_it_cannot_hold(key: str, raw: object, message: str) -> None:
    """A wrong value raises ValueError saying what was expected."""
    with pytest.raises(ValueError, match=message):
        convert(key, raw)


def test_secret_never_shows_its_value() -> None:
    """repr, str and the config_loaded form of a Secret are redacted; reveal() gives it."""
    secret = convert("token", "hunter2")
    assert isinstance(secret, Secret)
    assert secret.reveal() == "hunter2"
    assert "hunter2" not in repr(secret) + str(secret) + str(shown(secret, False))
    assert [f.key for f in declared_fields(Every) if f.secret] == ["token"]


def test_unsupported_type_is_refused_with_the_field_name() -> None:
    """A field type the loader cannot read names the class and the field."""

    @dataclass(frozen=True)
    class Bad:
        """A dict field."""

        mapping: dict[str, str]

    with pytest.raises(TypeError, match=r"Bad\.mapping: unsupported setting type"):
        declared_fields(Bad)


def test_a_field_without_default_is_required() -> None:
    """No default: the loader must be given a value."""

    @dataclass(frozen=True)
    class Needs:
        """One required field."""

        api_token: Secret

    [field] = declared_fields(Needs)
    assert field.required
    assert field.secret


def test_a_literal_of_non_strings_is_refused() -> None:
    """Regression: Literal[1, 2] took '2' from the environment as a string."""

    @dataclass(frozen=True)
    class Numbers:
        """An int Literal."""

        mode: Literal[1, 2] = 1

    with pytest.raises(TypeError, match="a Literal setting takes strings only"):
        declared_fields(Numbers)
