"""make init: a fresh copy of the template becomes the user's own project in one command.

`.ci/run` also runs the renamed copy's whole `make test` and its `make run`; here, a
copy is renamed, its stack logs the new service name and its own checks pass.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import BIN, ROOT, Stack, repository_copy

pytestmark = pytest.mark.stack  # make test-quick leaves these out

NAME = "price-feed"
OPTIONS = ["NAME=price-feed", "DESCRIPTION=Prices from the feed", "AUTHOR=Ada Lovelace",
           "PORT=9123"]  # fmt: skip


def template_copy(target: Path) -> Path:
    """A copy of the repository's files in a new git repository, as a user's clone is."""
    repo = repository_copy(target)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    return repo


def make_init(repo: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """``make init`` in ``repo`` with ``options`` (``KEY=value``), as a user runs it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}  # not our make's
    return subprocess.run(
        ["make", "--no-print-directory", "init", *options],
        cwd=repo, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def snapshot(repo: Path) -> dict[str, bytes]:
    """Every file of ``repo`` (relative path: content)."""
    return {
        str(p.relative_to(repo)): p.read_bytes()
        for p in repo.rglob("*")
        if p.is_file() and ".git" not in p.relative_to(repo).parts
    }


def grep(repo: Path, *words: str) -> list[str]:
    """``git grep``-like: the files of ``repo`` that contain any of ``words``."""
    return sorted(
        path for path, data in snapshot(repo).items() if any(w.encode() in data for w in words)
    )


def test_a_renamed_copy_has_its_names_logs_them_and_passes_its_checks(tmp_path: Path) -> None:
    """Every template name and the port are replaced; the copy's stack says `service: NAME`."""
    repo = template_copy(tmp_path / "template-copy")
    done = make_init(repo, *OPTIONS)
    assert done.returncode == 0, done.stderr
    assert "files changed" in done.stdout
    assert grep(repo, "supervised-service", "supervised_service") == []
    assert [p for p in grep(repo, "8000") if not p.endswith(".lock")] == []
    for fixer in ("end-of-file-fixer", "trailing-whitespace-fixer"):  # as make lint's hooks
        files = [str(p) for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts]
        hook = subprocess.run(
            [str(BIN / fixer), *files], capture_output=True, text=True, check=False
        )
        assert hook.returncode == 0, hook.stdout
    assert not (repo / "tools" / "init.py").exists()  # the bootstrap is gone with its test
    mypy_files = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["mypy"]["files"]
    assert all(list((repo / f).rglob("*.py")) for f in mypy_files), mypy_files  # mypy: no empty
    assert not (repo / "tests" / "test_init.py").exists()
    assert "make init" not in (repo / "Makefile").read_text()
    assert "make init" not in (repo / ".ci" / "run").read_text()
    assert "## Start your own project from it" not in (repo / "README.md").read_text()
    assert "## Starting a project (make init)" not in (repo / "docs" / "operations.md").read_text()
    pyproject = (repo / "pyproject.toml").read_text()
    assert f'name = "{NAME}"' in pyproject
    assert 'description = "Prices from the feed"' in pyproject
    assert 'authors = [{ name = "Ada Lovelace" }]' in pyproject
    assert "Ada Lovelace" in (repo / "LICENSE").read_text()
    assert 'image.description="Prices from the feed"' in (repo / "Dockerfile").read_text()
    assert "APP_METRICS_PORT=9123" in (repo / "Dockerfile").read_text()

    env = {"PYTHONPATH": str(repo)}  # the copy's packages before the installed project
    stack = Stack(tmp_path / "stack", {"loop_sleep_seconds": "0.2"}, cwd=repo, extra_env=env)
    try:
        stack.wait_ready(30)
        stack.stop()
    finally:
        stack.kill()
    assert stack.proc.returncode == 0
    services = {r.get("service") for r in stack.records()}
    assert services == {NAME}, services

    clean = {k: v for k, v in os.environ.items() if not k.startswith("APP_")}
    checks = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "tests/test_config.py", "tests/test_kubernetes.py", "tests/test_deploy_prometheus.py",
         "tests/test_layout.py", "tests/test_renovate.py", "tests/test_docs.py"],
        cwd=repo, env=clean | env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert checks.returncode == 0, checks.stdout[-3000:]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ([], "NAME='': expected lowercase letters"),
        (["NAME=Price_Feed"], "NAME='Price_Feed': expected lowercase letters"),
        (["NAME=" + "a" * 41], "at most 40 characters"),
        (["NAME=supervised-service"], "holds the template's own name"),
        (["NAME=my-supervised-service-demo"], "holds the template's own name"),
        (["NAME=app"], "not app or app-..."),
        (["NAME=app-feed"], "not app or app-..."),
        (["NAME=ok", "PORT=80"], "PORT='80': expected a port in 1024..65535"),
        (["NAME=ok", "PORT=http"], "PORT='http'"),
        (["NAME=ok", "PORT=09100"], "PORT='09100'"),  # Python and YAML would misread it
        (["NAME=ok", "PORT=\uff19\uff11\uff10\uff10"], "expected a port"),  # full-width digits
        (["NAME=ok", "PORT=8000"], "other than 8000"),
        (["NAME=ok", "PORT=9090"], "docker-compose.yml publishes them"),  # Prometheus'
        (["NAME=ok", 'AUTHOR=A "quoted" one'], "AUTHOR="),
        (["NAME=ok", "DESCRIPTION=costs $5 and $(HOME)"], "DESCRIPTION="),  # not make's to expand
        (["NAME=ok", "AUTHOR=Ada\x7f"], "printable"),
    ],
)
def test_bad_input_is_named_and_changes_nothing(
    tmp_path: Path, options: list[str], message: str
) -> None:
    """A bad value: exit 2, one line naming it, not one byte of the copy changed."""
    repo = template_copy(tmp_path / "template-copy")
    before = snapshot(repo)
    done = make_init(repo, *options)
    assert done.returncode == 2
    assert message in done.stderr
    [line] = [ln for ln in done.stderr.splitlines() if not ln.startswith("make: ***")]
    assert line.startswith("make init: "), done.stderr
    assert "Traceback" not in done.stderr
    assert snapshot(repo) == before


def test_a_second_run_or_a_changed_template_is_refused_whole(tmp_path: Path) -> None:
    """Initialised already, no git, uncommitted changes, an edit's anchor gone: nothing changes."""
    repo = template_copy(tmp_path / "template-copy")
    assert make_init(repo, "NAME=price-feed").returncode == 0
    before = snapshot(repo)
    again = make_init(repo, "NAME=other-name")
    assert again.returncode == 2
    assert "No rule to make target 'init'" in again.stderr
    script = subprocess.run(  # the template's script, pointed at the initialised copy
        [sys.executable, str(ROOT / "tools" / "init.py"), "--root", str(repo), "--name", "x-y"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert script.returncode == 2
    assert "initialised already" in script.stderr
    assert snapshot(repo) == before

    plain = repository_copy(tmp_path / "no-git")  # a downloaded archive: no .gitignore reader
    refused = make_init(plain, "NAME=price-feed")
    assert refused.returncode == 2
    assert "is not a git checkout" in refused.stderr

    cloned = template_copy(tmp_path / "clone")  # committed, then changed: not init's to mix
    subprocess.run(["git", "add", "-A"], cwd=cloned, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "t"],
                   cwd=cloned, check=True)  # fmt: skip
    (cloned / "NOTES.md").write_text("Load test: 8000 requests per second.\n")
    dirty = make_init(cloned, "NAME=price-feed", "PORT=9123")
    assert dirty.returncode == 2
    assert "uncommitted changes" in dirty.stderr
    assert (cloned / "NOTES.md").read_text() == "Load test: 8000 requests per second.\n"

    fresh = template_copy(tmp_path / "template-copy-2")
    config = fresh / "common" / "config.py"
    config.write_text(config.read_text().replace('= "app"', '= "mine"'))
    before = snapshot(fresh)
    changed = make_init(fresh, "NAME=price-feed")
    assert changed.returncode == 2
    assert "common/config.py" in changed.stderr
    assert "not found" in changed.stderr
    assert snapshot(fresh) == before
