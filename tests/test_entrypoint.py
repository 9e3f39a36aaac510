"""The entrypoint's preparation of the runtime dir and supervisord's environment."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from common.config import ConfigError, load_settings, unknown_env_names
from entrypoint.__main__ import (
    IMAGE_RUNTIME_DIR,
    check_watchdog,
    check_workers,
    mount_hint,
    prepare_runtime_dir,
    supervisord_environ,
)
from tests.conftest import dockerfile_env


def test_runtime_dir_is_private_and_metrics_start_empty(tmp_path: Path) -> None:
    """The runtime dir is created 0700; old metric files are removed."""
    empty = tmp_path / "c.yml"
    empty.write_text("")
    runtime = tmp_path / "rt"
    settings = load_settings({"APP_CONFIG_PATH": str(empty), "APP_RUNTIME_DIR": str(runtime)})
    (runtime / "prometheus").mkdir(parents=True)
    (runtime / "prometheus" / "counter_123.db").write_bytes(b"old")
    (runtime / "tmp").mkdir()
    (runtime / "tmp" / "a-past-run.tmp").write_bytes(b"old")
    prepare_runtime_dir(settings)
    assert runtime.stat().st_mode & 0o777 == 0o700
    assert list((runtime / "prometheus").iterdir()) == []
    assert list((runtime / "tmp").iterdir()) == []
    assert (runtime / "tmp").stat().st_mode & 0o777 == 0o700


def test_tmpdir_is_the_runtime_dirs_unless_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a read-only root only the runtime dir is writable: TMPDIR points there by default."""
    empty = tmp_path / "c.yml"
    empty.write_text("")
    settings = load_settings({"APP_CONFIG_PATH": str(empty), "APP_RUNTIME_DIR": str(tmp_path)})
    monkeypatch.delenv("TMPDIR", raising=False)
    assert supervisord_environ(settings)["TMPDIR"] == str(tmp_path / "tmp")
    monkeypatch.setenv("TMPDIR", "/var/scratch")
    assert supervisord_environ(settings)["TMPDIR"] == "/var/scratch"


def test_supervisord_gets_paths_and_our_bin_dir(tmp_path: Path) -> None:
    """Supervisord's environment names the runtime dir, metrics dir, uid, fail_fast, our bin dir.

    None of the variables it adds is taken for a misspelt setting.
    """
    empty = tmp_path / "c.yml"
    empty.write_text("")
    environ = {"APP_CONFIG_PATH": str(empty), "APP_RUNTIME_DIR": str(tmp_path)}
    settings = load_settings(environ | {"APP_FAIL_FAST": "no"})
    env = supervisord_environ(settings)
    assert env["APP_SUPERVISORD_FAIL_FAST"] == "false"
    added = {key: value for key, value in env.items() if key not in os.environ}
    assert unknown_env_names(added) == []
    assert env["APP_RUNTIME_DIR"] == str(tmp_path)
    assert env["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path / "prometheus")
    assert env["APP_SUPERVISORD_USER"] == str(os.getuid())
    assert env["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)


@pytest.mark.parametrize(
    "broken",
    ["[program:sync_worker]\ncommand\n", "[program:a]\n[program:a]\n", "no section\n"],
)
def test_unparsable_supervisord_conf_is_a_config_error(tmp_path: Path, broken: str) -> None:
    """A supervisord.conf that does not parse: ConfigError naming the file (exit 78), no crash."""
    conf = tmp_path / "supervisord.conf"
    conf.write_text(broken)
    empty = tmp_path / "c.yml"
    empty.write_text("")
    settings = load_settings({"APP_CONFIG_PATH": str(empty), "APP_WORKERS": "sync_worker"})
    with pytest.raises(ConfigError) as caught:
        check_workers(settings, conf)
    assert str(conf) in str(caught.value)


def test_a_worker_block_that_starts_itself_is_refused(tmp_path: Path) -> None:
    """A worker block that starts itself or runs numprocs > 1 is refused; python -u -m is one."""
    conf = tmp_path / "supervisord.conf"
    conf.write_text(
        "[program:a]\ncommand=python -m services.sync_worker\nautostart=false\n"
        "[program:b]\ncommand=python -m services.async_worker\n"
        "[program:c]\ncommand=app-exporter\n"
        "[program:d]\ncommand=python -u -m services.sync_worker\nautostart=false\nnumprocs=2\n"
    )
    empty = tmp_path / "c.yml"
    empty.write_text("")
    settings = load_settings({"APP_CONFIG_PATH": str(empty), "APP_WORKERS": "a,c"})
    with pytest.raises(ConfigError) as caught:
        check_workers(settings, conf)
    assert [str(p) for p in caught.value.problems] == [
        "workers (env APP_WORKERS): not a worker program of"
        f" {conf} (python -m <package> with a worker module): 'c' (not a worker: it always runs)",
        f"[program:d] numprocs ({conf}): must be 1 for a worker (one program name per process):"
        " copy the block instead",
        f"[program:b] autostart ({conf}): must be false in a worker's block:"
        " the workers setting starts the chosen ones",
    ]


def test_a_watchdog_set_while_metrics_are_off_is_refused(tmp_path: Path) -> None:
    """watchdog_seconds reads the metric files: set with metrics_enabled false, it is an error."""
    empty = tmp_path / "c.yml"
    empty.write_text("")
    env = {"APP_CONFIG_PATH": str(empty), "APP_METRICS_ENABLED": "false"}
    workers = {"sync_worker": None}
    check_watchdog(load_settings(env, workers))  # the default: simply off
    off = supervisord_environ(load_settings(env, workers))["APP_SUPERVISORD_PROGRAMS"]
    assert json.loads(off) == {"sync_worker": {"start": True, "watchdog_seconds": 0.0}}
    with pytest.raises(ConfigError) as caught:
        check_watchdog(load_settings(env | {"APP_SYNC_WORKER__WATCHDOG_SECONDS": "60"}, workers))
    [problem] = caught.value.problems
    assert problem.key == "programs.sync_worker.watchdog_seconds"
    assert problem.source == "env APP_SYNC_WORKER__WATCHDOG_SECONDS"


def test_an_unwritable_runtime_dir_says_what_to_mount_per_engine(tmp_path: Path) -> None:
    """The runtime_dir error names the owner and mode, and the mount for Docker, Podman, k8s."""
    mounted = tmp_path / "run-app"
    mounted.mkdir(mode=0o755)
    hint = mount_hint(mounted / "inner", 10001)
    assert f"{mounted} is owned by uid {os.getuid()}, mode 0755" in hint
    assert "this process runs as uid 10001" in hint
    assert f"Podman --tmpfs {mounted / 'inner'}:U" in hint
    assert "Docker --tmpfs" in hint
    assert "emptyDir" in hint
    assert f"the image's default, {IMAGE_RUNTIME_DIR}, is in the container's own /dev/shm" in hint


def test_the_hint_names_the_dockerfile_runtime_dir() -> None:
    """IMAGE_RUNTIME_DIR is the Dockerfile's APP_RUNTIME_DIR, inside /dev/shm."""
    assert dockerfile_env()["APP_RUNTIME_DIR"] == IMAGE_RUNTIME_DIR
    assert IMAGE_RUNTIME_DIR.startswith("/dev/shm/")
