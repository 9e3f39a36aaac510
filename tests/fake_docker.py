"""A stand-in for the ``docker`` CLI, backed by the real processes (no Docker engine here).

Implements just what ``tools/smoke-test.sh`` calls: ``run``, ``inspect --format``
(health, running, exit code), ``exec``, ``stop``, ``logs`` and ``rm``. A "container"
is ``app-entrypoint`` run by a small monitor process that records its exit code,
in ``$FAKE_DOCKER_STATE/<name>/app`` with the test workers' supervisord.conf
(``tests.conftest.fixture_conf``: the template's tests never run your workers);
its state lives in ``$FAKE_DOCKER_STATE/<name>/``.
Health is the exit code of the Dockerfile's HEALTHCHECK command, as Docker judges it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT))

from tests.conftest import (  # noqa: E402 - needs ROOT on sys.path
    TEST_WORKERS,
    fixture_dir,
    image_healthcheck,
)


def state(name: str) -> Path:
    """The state directory of container ``name``."""
    return Path(os.environ["FAKE_DOCKER_STATE"]) / name


def container_env(name: str, port: str) -> dict[str, str]:
    """The environment the image gives its processes, with a runtime dir per container."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("APP_")}
    env.update(
        APP_RUNTIME_DIR=str(state(name) / "run"),
        APP_METRICS_PORT=port,
        APP_CONFIG_PATH=str(state(name) / "config.yml"),
        APP_WORKERS=",".join(TEST_WORKERS),
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    return env


def run(args: list[str]) -> int:
    """``docker run --detach --name N ... --publish 127.0.0.1:PORT:8000 IMAGE``."""
    name = args[args.index("--name") + 1]
    port = args[args.index("--publish") + 1].split(":")[1]
    directory = state(name)
    directory.mkdir(parents=True)
    (directory / "config.yml").write_text("")
    (directory / "port").write_text(port)
    subprocess.Popen(
        [sys.executable, __file__, "_monitor", name, port],
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while not (directory / "pid").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    print(name)
    return 0


def monitor(name: str, port: str) -> int:
    """Run the container's main process to its end and record its exit code."""
    directory = state(name)
    with (directory / "log").open("wb") as log:
        proc = subprocess.Popen(
            [str(BIN / "app-entrypoint")],
            cwd=fixture_dir(directory),
            env=container_env(name, port),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        (directory / "pid").write_text(str(proc.pid))
        code = proc.wait()
    (directory / "exit_code").write_text(str(code))
    return 0


def inspect(args: list[str]) -> int:
    """``docker inspect --format TEMPLATE N`` for the three templates the script uses."""
    template, name = args[args.index("--format") + 1], args[-1]
    directory = state(name)
    running = not (directory / "exit_code").exists()
    if template == "{{.State.Running}}":
        print("true" if running else "false")
    elif template == "{{.State.ExitCode}}":
        print((directory / "exit_code").read_text() if not running else "0")
    elif template == "{{.State.Health.Status}}":
        port = (directory / "port").read_text()
        health = subprocess.run(
            image_healthcheck(),
            cwd=ROOT,
            env=container_env(name, port),
            capture_output=True,
            check=False,
        )
        print("healthy" if health.returncode == 0 else "starting")
    else:
        print(f"fake docker: unsupported template {template}", file=sys.stderr)
        return 2
    return 0


def exec_(args: list[str]) -> int:
    """``docker exec N COMMAND...`` from the image's WORKDIR with its environment."""
    name, command = args[0], args[1:]
    port = (state(name) / "port").read_text()
    env = container_env(name, port)
    return subprocess.run(command, cwd=ROOT, env=env, check=False).returncode


def stop(args: list[str]) -> int:
    """``docker stop N``: SIGTERM to the main process, wait (SIGKILL after 10 s)."""
    name = args[-1]
    directory = state(name)
    pid = int((directory / "pid").read_text())
    if not (directory / "exit_code").exists():
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    while not (directory / "exit_code").exists():
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    print(name)
    return 0


def logs(args: list[str]) -> int:
    """``docker logs N``."""
    sys.stdout.write((state(args[-1]) / "log").read_text())
    return 0


def rm(args: list[str]) -> int:
    """``docker rm --force N``: stop it if it still runs."""
    if not (state(args[-1]) / "exit_code").exists():
        stop(args)
    return 0


COMMANDS = {"run": run, "inspect": inspect, "exec": exec_, "stop": stop, "logs": logs, "rm": rm}

if __name__ == "__main__":
    if sys.argv[1] == "_monitor":
        sys.exit(monitor(sys.argv[2], sys.argv[3]))
    sys.exit(COMMANDS[sys.argv[1]](sys.argv[2:]))
