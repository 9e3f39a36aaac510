"""The image, built and run by a real container engine: Podman, here and in ``.ci/run``.

The Dockerfile is built as on GitHub, from the runtime lock alone, on a base made
from Debian's own packages (``tools/base-image.sh``: no image registry is reachable
here), and run by ``tools/smoke-test.sh``, the very script that gates a push in
``build.yml``. What it checks is listed in its header: healthy by the image's own
HEALTHCHECK, /metrics, uid 10001, read-only root, supervisorctl, a stop under 2 s
with exit code 0, JSON logs, exit 78 on a bad setting, exit 1 on a FATAL worker.
The other tests here show that the script fails when it must.

Needs root, ``podman``, ``runc`` and ``debootstrap`` (``.ci/run`` installs them and
sets ``REQUIRE_CONTAINER_ENGINE=1``, so that their absence fails instead of
skipping). The base image is kept between runs under a tag derived from
``tools/base-image.sh`` (about a minute to make); every image built here, build
stages included, is removed at the end (they carry LABEL).
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, repository_copy

pytestmark = pytest.mark.stack  # make test-quick leaves these out

SMOKE = ROOT / "tools" / "smoke-test.sh"
BASE_SCRIPT = ROOT / "tools" / "base-image.sh"
# Every image this module builds carries it (build stages too), and is removed at the end.
# Its value is this process's pid: pytest-xdist may run this module's tests in several
# workers, and one worker's clean-up must not remove what another is building or running.
LABEL = f"io.github.supervised-service-template.test={os.getpid()}"
# The engine's default rlimits (containers.conf: nofile 1048576) are above this
# sandbox's hard limits and runc refuses them ("error setting rlimit type 7").
RUN_OPTIONS = "--ulimit nofile=4096:4096 --ulimit nproc=4096:4096"


@functools.cache
def engine_command() -> tuple[str, ...]:
    """``podman`` (with ``--runtime runc`` where runc is installed), or skip/fail if absent."""
    podman, missing = shutil.which("podman"), []
    if podman is None:
        missing.append("podman")
    if shutil.which("debootstrap") is None:
        missing.append("debootstrap")
    if os.geteuid() != 0:
        missing.append("root (debootstrap and rootful podman)")
    if missing:
        message = f"a real container engine needs {', '.join(missing)} (.ci/run installs them)"
        if os.environ.get("REQUIRE_CONTAINER_ENGINE") == "1":
            pytest.fail(message)
        pytest.skip(message)
    assert podman is not None
    return (podman, "--runtime", "runc") if shutil.which("runc") else (podman,)


def podman(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``podman ARGS`` to completion, output captured."""
    return subprocess.run(
        [*engine_command(), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def build(context: Path, tag: str, base: str, *args: str, ok: bool = True) -> str:
    """``podman build`` of ``context``'s Dockerfile on ``base``; its log.

    Fails the test with the log if the build's success is not ``ok``.
    """
    result = podman(
        "build", "--isolation", "chroot", "--format", "docker", "--network", "host",
        "--build-arg", f"PYTHON_IMAGE={base}", "--label", LABEL, "--tag", tag, *args, str(context),
    )  # fmt: skip
    assert (result.returncode == 0) == ok, (result.stdout + result.stderr)[-4000:]
    return result.stdout + result.stderr


def smoke(image: str) -> subprocess.CompletedProcess[str]:
    """``tools/smoke-test.sh IMAGE PORT`` with Podman, as a new user's engine would run it.

    Its containers are removed here too: the script's own cleanup cannot run
    when a timeout kills it.
    """
    name = f"smoke-test-{os.getpid()}-{free_port()}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("APP_")}
    env.update(
        CONTAINER_ENGINE=" ".join(engine_command()),
        SMOKE_RUN_OPTIONS=RUN_OPTIONS,
        SMOKE_NAME=name,
    )
    try:
        return subprocess.run(
            [str(SMOKE), image, str(free_port())],
            env=env, capture_output=True, text=True, timeout=400, check=False,
        )  # fmt: skip
    finally:
        podman("rm", "--force", "--ignore", name, f"{name}-config", f"{name}-fatal", timeout=120)


@pytest.fixture(scope="module")
def base_image() -> str:
    """The Debian-made Python base, built once per version of tools/base-image.sh."""
    engine_command()
    key = hashlib.sha256(BASE_SCRIPT.read_bytes()).hexdigest()[:12]
    name = f"localhost/supervised-service-base:{key}"
    lock = Path(tempfile.gettempdir()) / f"supervised-service-base-{key}.lock"
    with lock.open("w") as held:  # one build at a time: the other workers then find it
        fcntl.flock(held, fcntl.LOCK_EX)
        result = subprocess.run(
            [str(BASE_SCRIPT), name],
            env={**os.environ, "CONTAINER_ENGINE": " ".join(engine_command())},
            capture_output=True, text=True, timeout=900, check=False,
        )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return name


@pytest.fixture(scope="module", autouse=True)
def _remove_built_images() -> Iterator[None]:
    """At the module's end, every image it built, build stages included (by LABEL)."""
    yield
    if shutil.which("podman") is None:
        return
    built = podman("images", "--quiet", "--filter", f"label={LABEL}", timeout=120).stdout.split()
    if built:
        podman("rmi", "--force", *sorted(set(built)), timeout=300)


@pytest.fixture(scope="module")
def app_image(base_image: str) -> Iterator[str]:
    """The repository's Dockerfile built as GitHub builds it (on the Debian-made base)."""
    tag = f"localhost/supervised-service:test-{os.getpid()}"
    build(ROOT, tag, base_image)
    yield tag
    podman("rmi", "--force", tag, timeout=120)


@pytest.fixture
def image_tag() -> Iterator[str]:
    """A unique tag for an image this test builds; the image is removed afterwards."""
    tag = f"localhost/supervised-service:test-{os.getpid()}-{free_port()}"
    yield tag
    podman("rmi", "--force", tag, timeout=120)


def test_the_image_passes_the_smoke_test_that_gates_a_push(app_image: str) -> None:
    """The repository's Dockerfile, built and run as the README says, passes every check."""
    result = smoke(app_image)
    assert result.returncode == 0, result.stdout + result.stderr
    for check in (
        "healthy (the image's HEALTHCHECK), /readyz 200",
        "/metrics has both workers",
        "PID 1 is uid 10001; the root filesystem is read-only",
        "supervisorctl: all 4 programs RUNNING",
        "exit code 0",
        "all JSON",
        "a bad setting: exit code 78",
        "a FATAL worker: exit code 1 (fail_fast)",
        "smoke test passed",
    ):
        assert check in result.stdout, result.stdout


def test_extras_build_argument_installs_the_named_integrations(
    base_image: str, image_tag: str
) -> None:
    """EXTRAS=otel,sentry adds both from their locks; an unknown name fails the build, named."""
    build(ROOT, image_tag, base_image, "--build-arg", "EXTRAS=otel,sentry")
    code = "import opentelemetry.exporter.otlp.proto.http, opentelemetry.sdk, sentry_sdk"
    result = podman(
        "run", "--rm", *RUN_OPTIONS.split(), "--entrypoint", "python", image_tag, "-c", code
    )
    assert result.returncode == 0, result.stdout + result.stderr
    log = build(ROOT, image_tag, base_image, "--build-arg", "EXTRAS=otel,zipkin", ok=False)
    assert "EXTRAS: no extra named 'zipkin' (there are: otel, sentry)" in log


def test_a_worker_import_only_the_development_lock_has_fails_the_image(
    base_image: str, image_tag: str, tmp_path: Path
) -> None:
    """The image has the runtime lock alone: a worker importing pytest never turns healthy."""
    repo = repository_copy(tmp_path / "template-copy")
    worker = repo / "services" / "sync_worker" / "worker.py"
    source = worker.read_text()
    assert "from __future__ import annotations\n" in source
    worker.write_text(
        source.replace(
            "from __future__ import annotations\n",
            "from __future__ import annotations\n\nimport pytest  # requirements-dev.lock only\n",
            1,
        )
    )
    build(repo, image_tag, base_image)
    result = smoke(image_tag)
    assert result.returncode != 0
    assert "smoke test FAILED: container exited" in result.stderr, result.stdout + result.stderr
    assert "No module named 'pytest'" in result.stderr
    assert '"event": "fail_fast"' in result.stderr


def test_a_plain_text_line_fails_the_smoke_test(
    app_image: str, base_image: str, image_tag: str, tmp_path: Path
) -> None:
    """One line of the container's output that is not JSON fails the script, naming it."""
    (tmp_path / "Dockerfile").write_text(
        f"FROM {app_image}\n"
        'ENTRYPOINT ["sh", "-c", "echo plain text, not JSON; exec app-entrypoint"]\n'
    )
    build(tmp_path, image_tag, base_image)
    result = smoke(image_tag)
    assert result.returncode != 0
    assert "log line 1 is not JSON: plain text, not JSON" in result.stderr, result.stderr


def test_a_second_container_sharing_dev_shm_is_refused(app_image: str) -> None:
    """Two containers with one /dev/shm (one IPC namespace): the second refuses, the first runs.

    Its runtime dir would be the first's: the entrypoint finds a supervisord
    answering on the socket there and exits 1, leaving the first one's files alone.
    """
    first, second = f"shm-first-{os.getpid()}", f"shm-second-{os.getpid()}"
    options = ["--read-only", *RUN_OPTIONS.split()]
    try:
        started = podman("run", "--detach", "--name", first, "--ipc=shareable", *options, app_image)
        assert started.returncode == 0, started.stderr
        deadline = time.monotonic() + 60
        while True:
            status = podman("exec", first, "supervisorctl", "-c", "supervisord.conf", "status")
            if status.returncode == 0 and status.stdout.count(" RUNNING ") == 4:
                break
            assert time.monotonic() < deadline, status.stdout + status.stderr
            time.sleep(0.5)
        refused = podman("run", "--name", second, f"--ipc=container:{first}", *options, app_image)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        [*_, last] = [json.loads(line) for line in refused.stdout.splitlines()]
        assert "a supervisord already answers on /dev/shm/app/supervisor.sock" in last["msg"]
        after = podman("exec", first, "supervisorctl", "-c", "supervisord.conf", "status")
        assert after.returncode == 0, after.stdout
        pids = re.findall(r" RUNNING +pid (\d+),", after.stdout)
        assert pids == re.findall(r" RUNNING +pid (\d+),", status.stdout), after.stdout
        assert len(pids) == 4, after.stdout
    finally:
        for name in (second, first):  # the second needs the first's IPC namespace
            podman("rm", "--force", name, timeout=120)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        (["--shm-size=1m"], "has 1.0 MiB free, at least 4 MiB needed"),
        (["--ipc=none"], "this container has no /dev/shm, where the image keeps its runtime dir"),
    ],
)
def test_a_dev_shm_too_small_or_missing_is_named_before_anything_runs(
    app_image: str, options: list[str], named: str
) -> None:
    """Too small a /dev/shm (SIGBUS later) or none at all: exit 78, one line that says which."""
    result = podman("run", "--rm", "--read-only", *RUN_OPTIONS.split(), *options, app_image)
    assert result.returncode == 78, result.stdout + result.stderr
    [line] = [json.loads(line) for line in result.stdout.splitlines() if '"config_invalid"' in line]
    assert named in line["msg"]
    assert line["problems"][0].startswith("runtime_dir (env APP_RUNTIME_DIR)")


def test_supervisord_crashing_at_start_is_one_json_line(app_image: str) -> None:
    """A TMPDIR nobody can write, under a root as read-only as Docker's: exit 1, JSON only."""
    result = podman(
        "run", "--rm", "--read-only", "--read-only-tmpfs=false", *RUN_OPTIONS.split(),
        "--env", "TMPDIR=/nonexistent", app_image,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]  # all JSON
    [crash] = [r for r in records if r.get("event") == "crashed"]
    assert crash["msg"].startswith("supervisord crashed: FileNotFoundError: [Errno 2] No usable")
    assert "gettempdir" in crash["stack"]
