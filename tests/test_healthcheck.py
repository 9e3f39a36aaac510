"""app-health's pieces: reading supervisorctl's settings, reaching the exporter."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.supervisor_rpc import supervisorctl_settings
from healthcheck.check import check_readyz
from tests.conftest import ROOT, free_port


def test_reads_serverurl_like_supervisorctl(monkeypatch: pytest.MonkeyPatch) -> None:
    """The socket URL comes from supervisord.conf, expanded with APP_RUNTIME_DIR."""
    monkeypatch.setenv("APP_RUNTIME_DIR", "/srv/rt")
    ctl = supervisorctl_settings(ROOT / "supervisord.conf", Path("/unused"))
    assert ctl["serverurl"] == "unix:///srv/rt/supervisor.sock"
    assert ctl["username"]


def test_runtime_dir_defaults_to_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without APP_RUNTIME_DIR in the environment the settings' runtime dir is used."""
    monkeypatch.delenv("APP_RUNTIME_DIR", raising=False)
    ctl = supervisorctl_settings(ROOT / "supervisord.conf", Path("/x/.run"))
    assert ctl["serverurl"] == "unix:///x/.run/supervisor.sock"


def test_unreachable_exporter_is_not_ready() -> None:
    """A closed port gives (False, a message naming host and port)."""
    port = free_port()
    ready, detail = check_readyz("0.0.0.0", port)  # noqa: S104 - wildcard maps to loopback
    assert ready is False
    assert f"exporter unreachable at 0.0.0.0:{port}" in detail
