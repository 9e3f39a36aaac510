"""tools/smoke-test.sh, the gate before an image is pushed, run against a stand-in docker.

No Docker engine runs here, so ``docker`` is ``tests/fake_docker.py``: each
"container" is the real entrypoint, supervisord and programs, health is the real
``app-health``. What is tested is the script's logic: it passes on a good stack
and fails, naming why, on a broken one.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from tests.conftest import ROOT, free_port, run_command

SCRIPT = ROOT / "tools" / "smoke-test.sh"


def fake_docker_env(tmp_path: Path) -> dict[str, str]:
    """PATH with a ``docker`` that runs tests/fake_docker.py; its state in tmp_path."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" "{ROOT / "tests" / "fake_docker.py"}" "$@"\n'
    )
    docker.chmod(docker.stat().st_mode | stat.S_IXUSR)
    (tmp_path / "state").mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("APP_")}
    env.update(FAKE_DOCKER_STATE=str(tmp_path / "state"), PATH=f"{bin_dir}:{env['PATH']}")
    return env


def test_smoke_script_passes_on_the_real_stack(tmp_path: Path) -> None:
    """Healthy, both workers in /metrics, three RUNNING, fast stop, JSON logs: it passes."""
    result = run_command(
        [str(SCRIPT), "supervised-service:smoke", str(free_port())],
        fake_docker_env(tmp_path),
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "smoke test passed" in result.stdout
    assert "docker stop:" in result.stdout


def test_smoke_script_fails_when_a_log_line_is_not_json(tmp_path: Path) -> None:
    """A plain-text line in the container's output fails the smoke test, naming the line."""
    env = fake_docker_env(tmp_path)
    sitecustomize = tmp_path / "sitecustomize"
    sitecustomize.mkdir()
    (sitecustomize / "sitecustomize.py").write_text(
        "import os, sys\n"
        "if os.environ.get('SUPERVISOR_PROCESS_NAME') == 'sync_worker':\n"
        "    sys.stdout.write('plain text, not JSON\\n'); sys.stdout.flush()\n"
    )
    env["PYTHONPATH"] = str(sitecustomize)
    result = run_command(
        [str(SCRIPT), "supervised-service:smoke", str(free_port())], env, timeout=120
    )
    assert result.returncode != 0
    assert "is not JSON: plain text, not JSON" in result.stderr + result.stdout
