"""Settings: precedence, validation, and errors that name key, source and expectation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from common import converters as conv
from common.config import (
    KEYS,
    ConfigError,
    Settings,
    effective_settings,
    is_secret,
    load_settings,
    unknown_env_names,
)
from entrypoint.__main__ import declarations
from tests.conftest import ROOT, WORKERS


def load(tmp_path: Path, yaml_text: str = "", **env: str) -> Settings:
    """Load settings from ``env`` and a config file holding ``yaml_text``."""
    path = tmp_path / "config.yml"
    path.write_text(yaml_text)
    return load_settings({"APP_CONFIG_PATH": str(path)} | env)


def problems(tmp_path: Path, yaml_text: str = "", **env: str) -> list[str]:
    """The problem strings of the ConfigError that loading must raise."""
    with pytest.raises(ConfigError) as info:
        load(tmp_path, yaml_text, **env)
    return [str(p) for p in info.value.problems]


def test_defaults_apply_when_nothing_is_set(tmp_path: Path) -> None:
    """With no env and an empty file every key has its documented default."""
    settings = load(tmp_path)
    assert settings.metrics_port == 8000
    assert settings.loop_sleep_seconds == 5.0
    assert settings.health_max_age_seconds == 30.0
    assert settings.metrics_enabled is True
    assert settings.log_level == "INFO"
    assert settings.runtime_dir == Path(".run").absolute()
    assert settings.sources["metrics_port"] == "default"


def test_environment_beats_file_beats_default(tmp_path: Path) -> None:
    """An env var overrides the YAML value, which overrides the default; sources say so."""
    settings = load(
        tmp_path,
        "metrics_port: 9100\nenv: staging\n",
        APP_METRICS_PORT="9200",
    )
    assert settings.metrics_port == 9200
    assert settings.env == "staging"
    assert settings.sources["metrics_port"] == "env APP_METRICS_PORT"
    assert settings.sources["env"].endswith("config.yml line 2")
    assert settings.sources["service_name"] == "default"


def test_health_max_age_defaults_to_three_loops_at_least_30s(tmp_path: Path) -> None:
    """health_max_age_seconds defaults to max(30, 3 x loop_sleep_seconds)."""
    assert load(tmp_path, APP_LOOP_SLEEP_SECONDS="20").health_max_age_seconds == 60.0
    assert load(tmp_path, APP_LOOP_SLEEP_SECONDS="2").health_max_age_seconds == 30.0
    explicit = load(tmp_path, APP_LOOP_SLEEP_SECONDS="20", APP_HEALTH_MAX_AGE_SECONDS="45")
    assert explicit.health_max_age_seconds == 45.0


def test_health_max_age_must_exceed_the_loop_interval(tmp_path: Path) -> None:
    """A max age not above loop_sleep_seconds would make every worker stale: refused."""
    [problem] = problems(tmp_path, "loop_sleep_seconds: 10\nhealth_max_age_seconds: 1\n")
    assert problem.endswith(
        "config.yml line 2): must be greater than loop_sleep_seconds (10), "
        "or workers are always stale"
    )


@pytest.mark.parametrize("value", ["0", "70000", "-1", "abc", "", "80.5"])
def test_bad_port_names_key_source_and_expectation(tmp_path: Path, value: str) -> None:
    """A port outside 1..65535 or not an integer is refused with a precise message."""
    [problem] = problems(tmp_path, APP_METRICS_PORT=value)
    assert problem.startswith(
        f"metrics_port (env APP_METRICS_PORT): expected an integer in 1..65535, got {value!r}"
    )


def test_empty_env_var_is_a_value_with_a_hint(tmp_path: Path) -> None:
    """APP_X= is not "unset": it is validated, and the message says how to unset it."""
    [problem] = problems(tmp_path, APP_ENV="")
    assert problem.endswith("got ''; unset the variable to use the file's value or the default")


@pytest.mark.parametrize(
    "key", ["metrics_port", "env", "workers", "health_max_age_seconds", "instance"]
)
def test_yaml_key_without_value_is_an_error(tmp_path: Path, key: str) -> None:
    """`key:` with nothing after it is an invalid value, never "use the default"."""
    [problem] = problems(tmp_path, f"{key}:\n")
    assert problem.startswith(f"{key} (")
    assert problem.endswith("got an empty value")


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "-inf", "soon", "1e9"])
def test_bad_loop_sleep_is_refused(tmp_path: Path, value: str) -> None:
    """loop_sleep_seconds must be a finite number > 0 (and at most a week)."""
    [problem] = problems(tmp_path, APP_LOOP_SLEEP_SECONDS=value)
    assert problem.startswith("loop_sleep_seconds (env APP_LOOP_SLEEP_SECONDS): expected")


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    """Several bad values give one error listing all of them."""
    found = problems(
        tmp_path,
        "metrics_port: high\n",
        APP_LOG_LEVEL="LOUD",
        APP_METRICS_ENABLED="maybe",
    )
    assert len(found) == 3
    assert any(p.startswith("metrics_port (") and "config.yml line 1" in p for p in found)
    assert any(p.startswith("log_level (env APP_LOG_LEVEL): expected one of DEBUG") for p in found)
    assert any(p.startswith("metrics_enabled (env APP_METRICS_ENABLED)") for p in found)


def test_unknown_yaml_key_suggests_the_closest(tmp_path: Path) -> None:
    """A typo in a YAML key is an error that suggests the known key."""
    [problem] = problems(tmp_path, "metrics_prot: 9000\n")
    assert problem.endswith("config.yml line 1): unknown key; did you mean 'metrics_port'?")


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [("yes", True), ("NO", False), ("On", True), ("off", False), ("1", True), ("0", False)],
)
def test_boolean_spellings(tmp_path: Path, spelling: str, expected: bool) -> None:
    """yes/no/on/off/1/0/true/false in any case are booleans."""
    assert load(tmp_path, APP_METRICS_ENABLED=spelling).metrics_enabled is expected


def test_yaml_booleans_and_numbers_keep_their_types(tmp_path: Path) -> None:
    """YAML's own types are accepted where they fit, refused where they do not."""
    settings = load(tmp_path, "metrics_enabled: false\nloop_sleep_seconds: 0.5\n")
    assert settings.metrics_enabled is False
    assert settings.loop_sleep_seconds == 0.5
    [problem] = problems(tmp_path, "metrics_port: true\n")
    assert "expected an integer" in problem


def test_yaml_that_is_not_a_mapping_is_refused(tmp_path: Path) -> None:
    """A list at the top of the file is an error naming the file and line."""
    [problem] = problems(tmp_path, "- metrics_port\n- 9000\n")
    assert "config.yml line 1): expected a mapping" in problem


def test_empty_yaml_file_means_no_settings(tmp_path: Path) -> None:
    """A file holding only comments is valid and sets nothing."""
    assert load(tmp_path, "# all commented out\n").metrics_port == 8000


def test_yaml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    """A syntax error names line and column."""
    [problem] = problems(tmp_path, "env: prod\nmetrics_port: [1, 2\n")
    assert problem.startswith("config file (")
    assert problem.endswith(
        "config.yml line 3 column 1): invalid YAML: expected ',' or ']', but got '<stream end>'"
    )


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    """A key given twice is refused rather than last-one-wins."""
    [problem] = problems(tmp_path, "env: a\nenv: b\n")
    assert problem.endswith("line 2): duplicate key (first on line 1)")


def test_python_tags_are_refused(tmp_path: Path) -> None:
    """Only safe YAML is loaded: a python/object tag is an error."""
    [problem] = problems(tmp_path, "env: !!python/object/apply:os.getcwd []\n")
    assert problem.startswith("env (")
    assert "line 1 column 6): invalid YAML value: could not determine a constructor" in problem


def test_explicit_config_path_must_exist(tmp_path: Path) -> None:
    """APP_CONFIG_PATH naming a missing file is an error; the default path may be absent."""
    with pytest.raises(ConfigError) as info:
        load_settings({"APP_CONFIG_PATH": str(tmp_path / "nope.yml")})
    assert str(info.value) == (
        f"APP_CONFIG_PATH (env APP_CONFIG_PATH): file {tmp_path / 'nope.yml'} does not exist"
    )
    with pytest.raises(ConfigError, match="expected a file path, got ''"):
        load_settings({"APP_CONFIG_PATH": ""})


def test_unknown_app_env_vars_are_listed_with_suggestions() -> None:
    """APP_* names that are no setting are reported (as warnings) with a close match."""
    names = unknown_env_names({"APP_METRIC_PORT": "1", "APP_METRICS_PORT": "2", "HOME": "/"})
    assert names == ["APP_METRIC_PORT; did you mean 'APP_METRICS_PORT'?"]


def test_workers_list_from_env_or_yaml(tmp_path: Path) -> None:
    """Workers is a comma-separated env string or a YAML list of program names."""
    assert load(tmp_path, APP_WORKERS="a, b").workers == ("a", "b")
    assert load(tmp_path, "workers: [x_worker]\n").workers == ("x_worker",)
    [problem] = problems(tmp_path, APP_WORKERS="a,a")
    assert "without duplicates" in problem


def test_converters_show_long_values_shortened() -> None:
    """A huge bad value is cut in the message so it cannot flood the log."""
    assert len(conv.shown("x" * 10_000)) == 80


def test_config_example_matches_the_defaults(tmp_path: Path) -> None:
    """config.yml.example with every key uncommented loads and equals the defaults.

    Each program's section too: the example shows the shipped workers' own settings.
    """
    example = (ROOT / "config.yml.example").read_text()
    uncommented = re.sub(r"^# (\w+:)", r"\1", example, flags=re.MULTILINE)
    uncommented = re.sub(r"^#( +)(\w+:)", lambda m: m[1][1:] + m[2], uncommented, flags=re.M)
    # The sections the example shows (a worker you add need not be in it).
    shown = set(re.findall(r"^#   (\w+):$", example, flags=re.MULTILINE))
    declared = {k: v for k, v in declarations(ROOT / "supervisord.conf").items() if k in shown}
    path = tmp_path / "config.yml"
    path.write_text(uncommented)
    settings = load_settings({"APP_CONFIG_PATH": str(path)}, declared)
    path.write_text("")
    defaults = load_settings({"APP_CONFIG_PATH": str(path)}, declared)
    assert settings.sources["metrics_port"].endswith("config.yml line 11")
    for key in KEYS:
        if key not in ("instance", "workers"):  # host-dependent; grows with your programs
            assert getattr(settings, key) == getattr(defaults, key), key
    assert set(settings.programs) == set(declared) == shown
    for name, section in settings.programs.items():
        default = defaults.programs[name]
        assert (section.own, section.loop_sleep_seconds) == (
            default.own,
            default.loop_sleep_seconds,
        )
        assert set(section.sources.values()) - {"default"}, name  # the example sets some keys


def test_unquoted_yaml_number_for_a_string_key_is_explained(tmp_path: Path) -> None:
    """version: 1.10 parses as a float in YAML; the error says to quote it."""
    [problem] = problems(tmp_path, "version: 1.10\n")
    assert "quote values such as '1.10'" in problem


def test_default_workers_are_the_supervisord_worker_programs(tmp_path: Path) -> None:
    """The default workers are every worker program of supervisord.conf, in its order."""
    path = tmp_path / "config.yml"
    path.write_text("")
    settings = load_settings(
        {"APP_CONFIG_PATH": str(path)}, declarations(ROOT / "supervisord.conf")
    )
    assert settings.workers == WORKERS
    assert settings.sources["workers"] == "default"


def test_watchdog_defaults_to_four_health_bounds_per_program(tmp_path: Path) -> None:
    """watchdog_seconds is 4 x each program's health_max_age_seconds unless set; 0 is off."""
    path = tmp_path / "config.yml"
    path.write_text("programs:\n  async_worker:\n    watchdog_seconds: 0\n")
    env = {"APP_CONFIG_PATH": str(path), "APP_SYNC_WORKER__LOOP_SLEEP_SECONDS": "20"}
    settings = load_settings(env, declarations(ROOT / "supervisord.conf"))
    assert settings.watchdog_seconds == 120.0
    assert settings.program("sync_worker").watchdog_seconds == 240.0  # 4 x max(30, 3 x 20)
    assert settings.program("async_worker").watchdog_seconds == 0.0
    top = load_settings(
        env | {"APP_WATCHDOG_SECONDS": "300"}, declarations(ROOT / "supervisord.conf")
    )
    assert top.program("sync_worker").watchdog_seconds == 300.0
    assert top.program("sync_worker").sources["watchdog_seconds"] == "top-level watchdog_seconds"


def test_watchdog_below_the_health_bound_is_refused_once(tmp_path: Path) -> None:
    """A watchdog shorter than readiness' bound would kill a worker that is only slow: refused.

    Reported once, not again for each program that inherits the top-level value.
    """
    path = tmp_path / "config.yml"
    path.write_text("loop_sleep_seconds: 10\nwatchdog_seconds: 20\n")
    with pytest.raises(ConfigError) as info:
        load_settings({"APP_CONFIG_PATH": str(path)}, declarations(ROOT / "supervisord.conf"))
    assert [str(p) for p in info.value.problems] == [
        f"watchdog_seconds ({path} line 2): must be 0 (off) or at least health_max_age_seconds"
        " (30): readiness reports a slow worker before the watchdog restarts it"
    ]


def test_unknown_log_level_is_refused(tmp_path: Path) -> None:
    """log_level must be a standard level name."""
    [problem] = problems(tmp_path, APP_LOG_LEVEL="verbose")
    assert problem == (
        "log_level (env APP_LOG_LEVEL): expected one of DEBUG, INFO, WARNING, ERROR, CRITICAL,"
        " got 'verbose'"
    )


@pytest.mark.parametrize("text", ["just a string\n", "42\n"])
def test_yaml_scalar_is_not_a_mapping(tmp_path: Path, text: str) -> None:
    """A file holding one scalar is refused, naming the file and line."""
    [problem] = problems(tmp_path, text)
    assert problem.startswith("config file (")
    assert problem.endswith("config.yml line 1): expected a mapping of key: value")


def test_tab_indentation_is_a_syntax_error_with_position(tmp_path: Path) -> None:
    """A tab where YAML wants spaces: line and column of the tab."""
    [problem] = problems(tmp_path, "env: prod\n\tmetrics_port: 1\n")
    assert problem.endswith(
        "line 2 column 1): invalid YAML: found character '\\t' that cannot start any token"
    )


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    """A UTF-8 BOM (as some editors write) does not break the file."""
    path = tmp_path / "bom.yml"
    path.write_bytes(b"\xef\xbb\xbfenv: bom\n")
    assert load_settings({"APP_CONFIG_PATH": str(path)}).env == "bom"


def test_anchors_and_aliases_are_allowed(tmp_path: Path) -> None:
    """YAML anchors and aliases resolve as usual."""
    settings = load(tmp_path, "service_name: &name billing\ninstance: *name\n")
    assert (settings.service_name, settings.instance) == ("billing", "billing")


def test_non_utf8_file_is_refused_with_the_byte_offset(tmp_path: Path) -> None:
    """A config file that is not UTF-8 names the first bad byte."""
    path = tmp_path / "latin1.yml"
    path.write_bytes(b"env: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"not UTF-8 at byte 8"):
        load_settings({"APP_CONFIG_PATH": str(path)})


def test_non_utf8_env_value_is_refused(tmp_path: Path) -> None:
    """Undecodable bytes in an env value (surrogate-escaped by Python) are an error."""
    [problem] = problems(tmp_path, APP_VERSION="1.0\udce9")
    assert problem.startswith("version (env APP_VERSION): expected UTF-8 text")


def test_huge_file_is_refused(tmp_path: Path) -> None:
    """A config file over 1 MiB is refused before parsing."""
    path = tmp_path / "huge.yml"
    path.write_text("# padding\n" * 120_000)
    with pytest.raises(ConfigError, match=r"file is larger than 1048576 bytes"):
        load_settings({"APP_CONFIG_PATH": str(path)})


def test_unreadable_config_path_is_an_error(tmp_path: Path) -> None:
    """APP_CONFIG_PATH naming a directory (unreadable as a file) is an error."""
    with pytest.raises(ConfigError, match=r"cannot read the file: Is a directory"):
        load_settings({"APP_CONFIG_PATH": str(tmp_path)})


def test_default_config_path_may_be_absent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without APP_CONFIG_PATH and without ./config.yml, defaults apply silently."""
    monkeypatch.chdir(tmp_path)
    assert load_settings({}).sources["env"] == "default"


def test_secret_keys_are_recognised() -> None:
    """Keys naming a password, secret, token, key or DSN count as secrets, others do not."""
    secrets = ("db_password", "API_KEY", "sentry_dsn", "auth_token", "client_secret")
    assert all(is_secret(key) for key in secrets)
    assert not any(is_secret(key) for key in KEYS)


def test_effective_settings_give_every_value_and_its_source(tmp_path: Path) -> None:
    """The config_loaded report lists each key with its value and where it came from."""
    report = effective_settings(load(tmp_path, "env: staging\n", APP_METRICS_PORT="9100"))
    assert set(report) == set(KEYS)
    assert report["metrics_port"] == {"value": 9100, "source": "env APP_METRICS_PORT"}
    assert str(report["env"]["source"]).endswith("config.yml line 1")
    assert report["workers"]["value"] == []  # no declarations given: no worker program


def test_bad_file_value_is_an_error_even_when_env_overrides_it(tmp_path: Path) -> None:
    """A wrong value in the file is reported although APP_* wins: no hidden typo."""
    [problem] = problems(tmp_path, "metrics_port: nope\n", APP_METRICS_PORT="9000")
    assert problem.startswith("metrics_port (")
    assert "config.yml line 1): expected an integer in 1..65535, got 'nope'" in problem


def test_runtime_dir_too_long_for_a_unix_socket_is_refused(tmp_path: Path) -> None:
    """The supervisor socket path must fit sockaddr_un (107 bytes)."""
    [problem] = problems(tmp_path, APP_RUNTIME_DIR="/tmp/" + "d" * 110)
    assert problem.startswith("runtime_dir (env APP_RUNTIME_DIR): too long: the socket path")


def test_yaml_merge_keys_work(tmp_path: Path) -> None:
    """A merge key (<<: *defaults) brings in the anchored mapping's keys."""
    text = "defaults: &d\n  env: x\n"
    [problem] = problems(tmp_path, text)  # "defaults" is no setting: proves the file is read
    assert problem.startswith("defaults (")
    settings = load(tmp_path, "<<: {env: merged, log_level: debug}\nservice_name: s\n")
    assert (settings.env, settings.log_level, settings.service_name) == ("merged", "DEBUG", "s")
