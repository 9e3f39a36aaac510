"""README's "Add a worker", done to a copy of the repository: the copy runs and checks green.

The steps are exactly the README's: copy a worker's folder, copy its block in
supervisord.conf (and name it in the group's ``programs=`` line). Nothing
else is edited: the default ``workers``, the alert rules and their tests, the
dashboard and the Kubernetes manifests all derive the worker list.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from common.supervisord_conf import module_programs, read_conf
from tests.conftest import Stack, http_get, repository_copy

pytestmark = pytest.mark.stack  # make test-quick leaves these out


def add_worker_as_the_readme_says(repo: Path) -> tuple[str, tuple[str, ...]]:
    """Step 1: copy a worker's folder; step 2: copy its block, list it in [group:app].

    The README copies ``sync_worker``; here the first worker of the copy's
    supervisord.conf is copied (the same, unless you replaced it), under a name
    no program or folder has yet. Returns the new name and the workers before it.
    """
    conf = repo / "supervisord.conf"
    modules = module_programs(read_conf(conf))
    workers = tuple(
        p for p, m in modules.items() if (repo.joinpath(*m.split(".")) / "worker.py").is_file()
    )
    assert workers, "supervisord.conf has no worker program"
    template, module = workers[0], modules[workers[0]]
    new = next(
        name for name in (f"added_worker{n or ''}" for n in range(100))
        if name not in modules and not (repo / "services" / name).exists()
    )  # fmt: skip
    shutil.copytree(repo.joinpath(*module.split(".")), repo / "services" / new)
    text = conf.read_text()
    block = re.search(rf"^\[program:{template}\]\n(?:[^\[\n].*\n|\n)*", text, re.MULTILINE)
    assert block, f"no [program:{template}] block"
    copied = block[0].replace(f"[program:{template}]", f"[program:{new}]")
    copied = copied.replace(f"-m {module}", f"-m services.{new}")
    text = text.replace(block[0], block[0] + copied)
    text = re.sub(r"^(programs=.*)$", rf"\1,{new}", text, count=1, flags=re.MULTILINE)
    conf.write_text(text)
    return new, workers


def test_a_new_worker_runs_and_every_check_of_the_copy_passes(tmp_path: Path) -> None:
    """After the README's two steps the copy's stack judges it, and its own checks are green."""
    repo = repository_copy(tmp_path / "template-copy")
    new, before = add_worker_as_the_readme_says(repo)
    env = {"PYTHONPATH": str(repo)}  # the copy's packages before the installed project
    stack = Stack(tmp_path / "stack", {"loop_sleep_seconds": "0.2"}, cwd=repo, extra_env=env)
    try:
        stack.wait_ready(30)
        _, body = http_get(stack.url("/readyz"))
        report = json.loads(body)
        _, metrics = http_get(stack.url("/metrics"))
        stack.stop()
    finally:
        stack.kill()
    assert stack.proc.returncode == 0
    assert report["programs"][new]["status"] == "fresh", report
    assert set(report["programs"]) == {*before, new}
    assert f'app_worker_expected{{program="{new}"}} 1.0' in metrics.decode()
    assert stack.leftovers() == []

    clean = {k: v for k, v in os.environ.items() if not k.startswith("APP_")}
    checks = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_deploy_prometheus.py", "tests/test_kubernetes.py",
         "tests/test_config.py", "tests/test_layout.py"],
        cwd=repo, env=clean | env, capture_output=True, text=True, timeout=600,
        check=False,
    )  # fmt: skip
    assert checks.returncode == 0, checks.stdout[-3000:]
