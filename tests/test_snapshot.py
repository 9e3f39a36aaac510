"""The resolved settings app-entrypoint writes and every program reads back."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Annotated

import pytest

from common.config import ConfigError, load_settings
from common.snapshot import read_snapshot, write_snapshot
from tests.test_loader import DECLARED, Fetcher, load


def test_what_is_written_reads_back_equal(tmp_path: Path) -> None:
    """Shared values, sources and each program's own settings survive the round trip."""
    settings = load(
        tmp_path,
        "env: staging\nprograms:\n  fetcher:\n    retries: 4\n",
        APP_FETCHER__API_TOKEN="s3cr3t",
        APP_PLAIN__LOOP_SLEEP_SECONDS="0.5",
    )
    path = tmp_path / "settings.json"
    write_snapshot(settings, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds the secrets
    again = read_snapshot(path, DECLARED)
    assert again == settings
    assert again.program("fetcher").own.api_token.reveal() == "s3cr3t"
    assert isinstance(again.program("fetcher").own, Fetcher)


def test_programs_read_the_snapshot_not_the_sources(tmp_path: Path) -> None:
    """With APP_RESOLVED_SETTINGS set, the environment and the file are not read at all."""
    path = tmp_path / "settings.json"
    write_snapshot(load(tmp_path, "env: first\n"), path)
    environ = {"APP_RESOLVED_SETTINGS": str(path), "APP_ENV": "second", "APP_METRICS_PORT": "x"}
    settings = load_settings(environ, {})
    assert settings.env == "first"
    assert settings.program("fetcher").own is None  # its declaration was not asked for
    assert settings.program("fetcher").loop_sleep_seconds == 5.0


def test_a_missing_or_damaged_snapshot_is_a_config_error(tmp_path: Path) -> None:
    """Exit 78 material: the error names the variable and the file."""
    path = tmp_path / "settings.json"
    with pytest.raises(ConfigError, match="APP_RESOLVED_SETTINGS"):
        load_settings({"APP_RESOLVED_SETTINGS": str(path)})
    path.write_text('{"shared": {}}')
    with pytest.raises(ConfigError, match="cannot read the resolved settings: KeyError"):
        load_settings({"APP_RESOLVED_SETTINGS": str(path)})
    os.unlink(path)


def test_a_custom_converters_value_comes_back_as_its_type(tmp_path: Path) -> None:
    """Regression: an IPv4Address setting made write_snapshot raise (not JSON serializable)."""

    @dataclass(frozen=True)
    class Net:
        """One field with a converter of its own."""

        bind: Annotated[IPv4Address, IPv4Address] = IPv4Address("127.0.0.1")  # noqa: RUF009

    path = tmp_path / "config.yml"
    path.write_text("")
    settings = load_settings(
        {"APP_CONFIG_PATH": str(path), "APP_NET__BIND": "10.0.0.7"}, {"net": Net}
    )
    write_snapshot(settings, tmp_path / "settings.json")
    again = read_snapshot(tmp_path / "settings.json", {"net": Net})
    assert again.program("net").own == Net(IPv4Address("10.0.0.7"))


def test_a_program_missing_from_the_snapshot_is_a_config_error(tmp_path: Path) -> None:
    """A worker added after the container started: say so, do not run without its settings."""
    write_snapshot(load(tmp_path), tmp_path / "settings.json")
    with pytest.raises(ConfigError, match=r"no section for \['newcomer'\]"):
        read_snapshot(tmp_path / "settings.json", DECLARED | {"newcomer": Fetcher})
