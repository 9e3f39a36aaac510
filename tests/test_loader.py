"""Programs' own sections, per-program built-ins and _FILE secrets, read like every setting."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import pytest

from common.config import ConfigError, Settings, effective_settings, load_settings
from common.settings import URL, Secret, between


@dataclass(frozen=True)
class Fetcher:
    """A worker's own settings, as a user declares them."""

    url: URL = URL("http://localhost:8080/")
    retries: Annotated[int, between(0, 5)] = 2
    password_hint: str = "none"
    api_token: Secret = Secret("")


@dataclass(frozen=True)
class Checked:
    """Settings with a check of their own in __post_init__."""

    low: int = 1
    high: int = 2

    def __post_init__(self) -> None:
        """low must stay below high."""
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")


DECLARED: dict[str, type | None] = {"fetcher": Fetcher, "plain": None, "checked": Checked}


def load(
    tmp_path: Path,
    yaml_text: str = "",
    declared: dict[str, type | None] = DECLARED,
    **env: str,
) -> Settings:
    """Load ``declared`` (the three programs above), a config file of ``yaml_text``, ``env``."""
    path = tmp_path / "config.yml"
    path.write_text(yaml_text)
    return load_settings({"APP_CONFIG_PATH": str(path)} | env, declared)


def problems(
    tmp_path: Path,
    yaml_text: str = "",
    declared: dict[str, type | None] = DECLARED,
    **env: str,
) -> list[str]:
    """The problem strings of the ConfigError that loading must raise."""
    with pytest.raises(ConfigError) as info:
        load(tmp_path, yaml_text, declared, **env)
    return [str(p) for p in info.value.problems]


def test_own_settings_come_from_env_then_file_then_default(tmp_path: Path) -> None:
    """APP_<PROGRAM>__<KEY> beats programs.<program>.<key>, which beats the declared default."""
    text = "programs:\n  fetcher:\n    url: https://file.example/\n    retries: 4\n"
    settings = load(tmp_path, text, APP_FETCHER__RETRIES="5")
    own = settings.program("fetcher").own
    assert own == Fetcher(url=URL("https://file.example/"), retries=5)
    sources = settings.program("fetcher").sources
    assert sources["retries"] == "env APP_FETCHER__RETRIES"
    assert sources["url"].endswith("config.yml line 3")
    assert sources["api_token"] == "default"


def test_loop_and_max_age_per_program_with_the_top_level_as_default(tmp_path: Path) -> None:
    """A program's own loop_sleep_seconds wins; the others take the top-level value."""
    text = "loop_sleep_seconds: 2\nprograms:\n  plain:\n    loop_sleep_seconds: 60\n"
    settings = load(tmp_path, text, APP_FETCHER__LOOP_SLEEP_SECONDS="0.5")
    assert settings.program("plain").loop_sleep_seconds == 60
    assert settings.program("plain").health_max_age_seconds == 180  # 3 x its own loop
    assert settings.program("fetcher").loop_sleep_seconds == 0.5
    assert settings.program("checked").loop_sleep_seconds == 2
    assert settings.program("checked").health_max_age_seconds == 30


def test_max_age_must_exceed_each_programs_interval(tmp_path: Path) -> None:
    """A top-level max age below one program's interval is an error naming that program."""
    [problem] = problems(
        tmp_path, "health_max_age_seconds: 40\n", APP_PLAIN__LOOP_SLEEP_SECONDS="50"
    )
    assert problem == (
        "programs.plain.health_max_age_seconds (top-level health_max_age_seconds): must be"
        " greater than loop_sleep_seconds (50), or workers are always stale"
    )


def test_unknown_key_or_program_suggests_the_closest(tmp_path: Path) -> None:
    """A typo in a section's key or in a program's name, in the file or the environment."""
    text = "programs:\n  fetcher:\n    retires: 1\n  fetchr: {}\n"
    found = problems(tmp_path, text, APP_FETCHER__URLL="x", APP_PLAN__LOOP_SLEEP_SECONDS="1")
    config = f"{tmp_path}/config.yml"
    assert sorted(found) == [
        f"programs.fetcher.retires ({config} line 3): unknown key; did you mean 'retries'?",
        "programs.fetcher.urll (env APP_FETCHER__URLL): unknown key;"
        " did you mean 'APP_FETCHER__URL'?",
        f"programs.fetchr ({config} line 4): no worker program of that name;"
        " did you mean 'fetcher'?",
        "programs.plan (env APP_PLAN__LOOP_SLEEP_SECONDS): no worker program of that name;"
        " did you mean 'APP_PLAIN__LOOP_SLEEP_SECONDS'?",
    ]


def test_every_problem_of_every_program_at_once(tmp_path: Path) -> None:
    """Bad values in two programs and a shared one: all reported in one error."""
    found = problems(
        tmp_path,
        "metrics_port: 0\nprograms:\n  fetcher:\n    url: nope\n",
        APP_FETCHER__RETRIES="9",
        APP_CHECKED__LOW="5",
    )
    assert [p.split(" ")[0] for p in found] == [
        "metrics_port",
        "programs.fetcher.url",
        "programs.fetcher.retries",
        "programs.checked",
    ]
    assert "expected an integer in 0..5, got '9'" in found[2]
    assert found[3] == "programs.checked (checks of Checked): low (5) must be below high (2)"


def test_declared_secret_is_redacted_whatever_its_name(tmp_path: Path) -> None:
    """config_loaded never shows a Secret; a bad secret value is not echoed either."""
    settings = load(tmp_path, APP_FETCHER__API_TOKEN="s3cr3t", APP_FETCHER__PASSWORD_HINT="x")
    report = effective_settings(settings)["programs"]["fetcher"]
    assert report["api_token"] == {"value": "<redacted>", "source": "env APP_FETCHER__API_TOKEN"}
    assert report["password_hint"]["value"] == "<redacted>"  # its name says password
    assert report["retries"] == {"value": 2, "source": "default"}
    assert settings.program("fetcher").own.api_token.reveal() == "s3cr3t"
    [problem] = problems(tmp_path, APP_FETCHER__API_TOKEN="two\nlines")
    assert "two" not in problem
    assert problem.endswith("got <redacted>")


def test_required_setting_left_unset_says_how_to_set_it(tmp_path: Path) -> None:
    """A declared field without default must be given."""

    @dataclass(frozen=True)
    class Needs:
        """One required secret."""

        api_token: Secret

    assert problems(tmp_path, declared={"bot": Needs}) == [
        "programs.bot.api_token (default): required: set APP_BOT__API_TOKEN"
        " (or APP_BOT__API_TOKEN_FILE) or programs.bot.api_token in the file"
    ]


def test_file_variant_reads_the_value_from_a_file(tmp_path: Path) -> None:
    """APP_X_FILE: the file's content is the value, one trailing newline stripped."""
    token = tmp_path / "token"
    token.write_text("from-a-file\n")
    port = tmp_path / "port"
    port.write_text("9101\n\n")  # only one newline is stripped: the value stays invalid
    settings = load(tmp_path, APP_FETCHER__API_TOKEN_FILE=str(token))
    own = settings.program("fetcher").own
    assert own.api_token.reveal() == "from-a-file"
    source = settings.program("fetcher").sources["api_token"]
    assert source == f"file {token} (env APP_FETCHER__API_TOKEN_FILE)"
    port.write_text("9101\n")
    assert load(tmp_path, APP_METRICS_PORT_FILE=str(port)).metrics_port == 9101


def test_file_variant_errors_name_the_variable_and_the_path(tmp_path: Path) -> None:
    """Both forms set, or a missing file: each an error naming what to fix."""
    missing = tmp_path / "nope"
    found = problems(
        tmp_path,
        APP_ENV="x",
        APP_ENV_FILE=str(missing),
        APP_FETCHER__API_TOKEN_FILE=str(missing),
    )
    assert found == [  # and no "required" problem on top
        "env (env APP_ENV and env APP_ENV_FILE): both are set: unset one",
        f"programs.fetcher.api_token (env APP_FETCHER__API_TOKEN_FILE): cannot read the file"
        f" '{missing}': No such file or directory",
    ]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_variant_is_an_error(tmp_path: Path) -> None:
    """A _FILE path without read permission names the variable."""
    secret = tmp_path / "secret"
    secret.write_text("x")
    secret.chmod(0)
    [problem] = problems(tmp_path, APP_COMMIT_FILE=str(secret))
    assert "Permission denied" in problem


def test_yaml_value_error_names_its_key_path_line_and_column(tmp_path: Path) -> None:
    """An unknown tag or an unparsable scalar inside a section names where it sits."""
    text = "env: ok\nprograms:\n  fetcher:\n    url: !env API_URL\n    retries: !!int abc\n"
    found = problems(tmp_path, text)
    assert found[0].startswith(
        f"programs.fetcher.url ({tmp_path}/config.yml line 4 column 10): invalid YAML value:"
    )
    assert "could not determine a constructor for the tag '!env'" in found[0]
    assert found[1].startswith(
        f"programs.fetcher.retries ({tmp_path}/config.yml line 5 column 14): invalid YAML value"
    )
    assert len(found) == 2


def test_a_section_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    """programs.<name> must be a mapping of key: value."""
    [problem] = problems(tmp_path, "programs:\n  fetcher: 3\n")
    assert (
        problem
        == f"programs.fetcher ({tmp_path}/config.yml line 2): expected a mapping of key: value"
    )


def test_a_declaration_that_shadows_a_built_in_is_refused(tmp_path: Path) -> None:
    """A worker may not declare loop_sleep_seconds itself: it is a per-program built-in."""

    @dataclass(frozen=True)
    class Shadow:
        """Declares a built-in's name."""

        loop_sleep_seconds: float = 1.0

    [problem] = problems(tmp_path, declared={"w": Shadow})
    assert "declares 'loop_sleep_seconds', a built-in" in problem


@dataclass(frozen=True)
class Typed:
    """A declaration whose field names need care in the environment."""

    apiKey: str = "x"  # noqa: N815 - a camelCase name users may pick
    n: Annotated[int, between(1, 10)] = 5


TYPED: dict[str, type | None] = {"w": Typed}


@pytest.mark.parametrize("tag", ["!!int", "!!bool", "!!float", "!!timestamp"])
def test_yaml_value_pyyaml_cannot_construct_is_a_problem_that_never_quotes_it(
    tmp_path: Path, tag: str
) -> None:
    """Regression: !!bool hunter2 crashed (KeyError 'hunter2'), !!int hunter2 quoted it."""
    text = f"programs:\n  fetcher:\n    api_token: {tag} hunter2\n"
    [problem] = problems(tmp_path, text)
    assert problem.startswith(f"programs.fetcher.api_token ({tmp_path}/config.yml line 3 column")
    assert "invalid YAML value: it cannot be read as" in problem
    assert "hunter2" not in problem


def test_yaml_nested_too_deeply_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    """Regression: 5000 nested lists raised RecursionError."""
    [problem] = problems(tmp_path, "version: " + "[" * 5000 + "]" * 5000 + "\n")
    assert problem.endswith("invalid YAML: nested too deeply")


def test_yaml_integer_too_large_for_seconds_is_refused(tmp_path: Path) -> None:
    """Regression: a 400-digit loop_sleep_seconds raised OverflowError."""
    [problem] = problems(tmp_path, "loop_sleep_seconds: " + "1" * 400 + "\n")
    assert "expected a number of seconds > 0" in problem


def test_an_explicit_key_overrides_a_merged_one(tmp_path: Path) -> None:
    """Regression: `v: {<<: *w, n: 4}` was a duplicate key; YAML says the explicit one wins."""
    text = "programs:\n  fetcher: &f {retries: 2}\n  checked: {<<: {low: 3, high: 9}, low: 4}\n"
    settings = load(tmp_path, text)
    assert settings.program("checked").own == Checked(low=4, high=9)
    assert settings.program("fetcher").own.retries == 2
    [problem] = problems(tmp_path, "programs:\n  fetcher: {retries: 1, retries: 2}\n")
    assert problem.endswith("duplicate key (first on line 2)")


def test_program_variables_are_case_sensitive_as_the_environment_is(tmp_path: Path) -> None:
    """Regression: APP_W__n was accepted and ignored; a camelCase field is APP_W__APIKEY."""
    assert load(tmp_path, "", TYPED, APP_W__APIKEY="zz").program("w").own.apiKey == "zz"
    [problem] = problems(tmp_path, "", TYPED, APP_W__n="0")
    assert problem == "programs.w.n (env APP_W__n): unknown key; did you mean 'APP_W__N'?"


def test_sections_are_checked_even_when_a_top_level_value_is_bad(tmp_path: Path) -> None:
    """Regression: a bad top-level loop_sleep_seconds hid every problem of the sections."""
    found = problems(tmp_path, "", TYPED, APP_LOOP_SLEEP_SECONDS="abc", APP_W__N="0")
    assert [p.split(" ")[0] for p in found] == ["loop_sleep_seconds", "programs.w.n"]


def test_a_wrong_declared_default_is_reported_as_such(tmp_path: Path) -> None:
    """Regression: defaults were never checked (a between(1, 10) field defaulting to 0)."""

    @dataclass(frozen=True)
    class Wrong:
        """A default outside its own range."""

        n: Annotated[int, between(1, 10)] = 0

    assert problems(tmp_path, declared={"w": Wrong}) == [
        "programs.w.n (default): expected an integer in 1..10, got 0; the declared default is wrong"
    ]


def test_a_very_long_integer_says_what_was_expected(tmp_path: Path) -> None:
    """Regression: 5000 digits gave Python's 'Exceeds the limit (4300 digits)' message."""
    [problem] = problems(tmp_path, "", TYPED, APP_W__N="9" * 5000)
    assert "expected an integer in 1..10, got '999" in problem
