"""The supervisord XML-RPC client: where it connects, and what it does when it cannot."""

from __future__ import annotations

import xmlrpc.client
from pathlib import Path

import pytest

from common.supervisor_rpc import RPC_ERRORS, SupervisorClient, describe, supervisorctl_settings
from tests.conftest import ROOT


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


def test_missing_socket_is_an_rpc_error_and_a_later_call_retries(tmp_path: Path) -> None:
    """No supervisord: an error from RPC_ERRORS each time, never a hang or another exception."""
    client = SupervisorClient(tmp_path, 1.0, ROOT / "supervisord.conf")
    for _ in range(2):
        with pytest.raises(RPC_ERRORS):
            client.process_infos()


def test_unreadable_conf_is_an_rpc_error(tmp_path: Path) -> None:
    """A missing supervisord.conf is reported like an unreachable supervisord (OSError)."""
    with pytest.raises(OSError, match="cannot read"):
        SupervisorClient(tmp_path, 1.0, tmp_path / "nope.conf").process_infos()


def test_inline_comments_are_read_as_supervisorctl_reads_them(tmp_path: Path) -> None:
    """``password = x ; note`` means password ``x``, as in supervisor's own parser."""
    conf = tmp_path / "supervisord.conf"
    conf.write_text(
        "[supervisorctl]\nserverurl = unix:///s.sock ; the socket\n"
        "username = u\npassword = secret ; not part of it\n"
    )
    ctl = supervisorctl_settings(conf, tmp_path)
    assert (ctl["serverurl"], ctl["password"]) == ("unix:///s.sock", "secret")


def test_an_http_error_is_described_without_the_credentials() -> None:
    """A 401 names the status, not the URL that carries user:password."""
    error = xmlrpc.client.ProtocolError("supervisor:secret@localhost/RPC2", 401, "Unauthorized", {})
    assert describe(error) == "HTTP 401 Unauthorized"
    assert "secret" not in describe(error)
