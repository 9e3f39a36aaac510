"""Fixtures that start the real entrypoint + supervisord in a temp runtime dir.

Every process a test starts is stopped by the pid it started (and the pids of
that process's descendants, found through /proc), never by name, even when the
test fails.
"""

from __future__ import annotations

import configparser
import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from common.procfs import alive, children_by_parent
from common.supervisord_conf import read_conf

ROOT = Path(__file__).resolve().parent.parent
# The process_* families the exporter reads from /proc (services/metrics_exporter/resources.py).
PROCESS_FAMILIES = (
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_pss_bytes",
    "process_open_fds",
    "process_threads",
    "process_start_time_seconds",
)
BIN = Path(sys.executable).parent
EXPORTER = "metrics_exporter"


def supervisord_programs() -> tuple[str, ...]:
    """The ``[program:x]`` names in supervisord.conf, in file order."""
    parser = configparser.RawConfigParser()
    parser.read(ROOT / "supervisord.conf")
    return tuple(s.partition(":")[2] for s in parser.sections() if s.startswith("program:"))


TEST_WORKERS = ("sync_worker", "async_worker")  # tests/fixtures/<name>: periodic, long-running
_SECTION = re.compile(r"^\[([^\]]+)\]\s*$", re.MULTILINE)
_WORKER_COMMAND = re.compile(r"^command=python -m services\.\w+\s*$", re.MULTILINE)


def fixture_conf(text: str | None = None) -> str:
    """supervisord.conf (or ``text``) with the test workers in place of every worker program.

    The runtime's stack tests never run your workers: each ``[program:x]``
    whose command is ``python -m services.<name>`` is dropped, and
    :data:`TEST_WORKERS` are added, each a copy of the first worker block
    (your options: startsecs, stopwaitsecs...) running ``tests.fixtures.<name>``.
    """
    text = (ROOT / "supervisord.conf").read_text() if text is None else text
    starts = [m.start() for m in _SECTION.finditer(text)] + [len(text)]
    blocks = [text[a:b] for a, b in itertools.pairwise(starts)]
    head = text[: starts[0]]
    workers = [b for b in blocks if b.startswith("[program:") and _WORKER_COMMAND.search(b)]
    assert workers, "supervisord.conf runs no worker with command=python -m services.<name>"
    template = workers[0]
    dropped = {_SECTION.match(b)[1].partition(":")[2] for b in workers}  # type: ignore[index]
    kept = [b for b in blocks if b not in workers]
    for name in TEST_WORKERS:
        block = _SECTION.sub(f"[program:{name}]", template, count=1)
        kept.append(_WORKER_COMMAND.sub(f"command=python -m tests.fixtures.{name}", block))
    result = head + "".join(kept)
    group = re.search(r"^programs=(.*)$", result, re.MULTILINE)
    assert group, "supervisord.conf has no [group:app] programs= line"
    others = [p.strip() for p in group[1].split(",") if p.strip() not in dropped]
    programs = ",".join([*TEST_WORKERS, *others])
    return result[: group.start(1)] + programs + result[group.end(1) :]


def fixture_dir(parent: Path) -> Path:
    """``parent/app`` holding :func:`fixture_conf` as ``supervisord.conf``: a test stack's cwd."""
    workdir = parent / "app"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "supervisord.conf").write_text(fixture_conf())
    return workdir


def image_healthcheck() -> list[str]:
    """The command of the Dockerfile's HEALTHCHECK (its JSON ``CMD [...]`` form)."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    [line] = [line for line in text.splitlines() if line.startswith("HEALTHCHECK ")]
    command: list[str] = json.loads(line.partition(" CMD ")[2])
    return command


def dockerfile_env() -> dict[str, str]:
    """The ``KEY=value`` pairs of the Dockerfile's ENV instructions."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    pairs: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            pairs.update(re.findall(r"(\w+)=(\S+)", line))
    return pairs


def supervisord_listeners() -> tuple[str, ...]:
    """The ``[eventlistener:x]`` names in supervisord.conf (one process each)."""
    parser = configparser.RawConfigParser()
    parser.read(ROOT / "supervisord.conf")
    return tuple(s.partition(":")[2] for s in parser.sections() if s.startswith("eventlistener:"))


PROGRAMS = supervisord_programs()
WORKERS = tuple(p for p in PROGRAMS if p != EXPORTER)  # supervisord.conf's: yours
PROCESSES = PROGRAMS + supervisord_listeners()
# What a test stack (fixture_conf) runs: the test workers, the other programs, the listeners.
TEST_PROCESSES = (
    *TEST_WORKERS,
    *(p for p in PROGRAMS if p not in WORKERS),
    *supervisord_listeners(),
)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def descendants(pid: int) -> set[int]:
    """Pids of every descendant of ``pid`` (read from /proc)."""
    children = children_by_parent()
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def stop_process(proc: subprocess.Popen[Any], grace: float) -> None:
    """SIGTERM ``proc`` if it still runs; SIGKILL it after ``grace`` seconds; reap it."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(grace)


def http_get(url: str, timeout: float = 2.0) -> tuple[int, bytes]:
    """``(status, body)`` of a GET; HTTP errors are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - test URL
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def base_env(runtime_dir: Path, port: int, **settings: str) -> dict[str, str]:
    """A clean environment for the programs: no APP_* from outside, an empty config file.

    Nor OTEL_* or SENTRY_* (the optional integrations): a shell's own must not
    turn them on in the tests.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(("APP_", "OTEL_", "SENTRY_"))}
    empty = runtime_dir.parent / "empty-config.yml"
    empty.write_text("")
    env.update(
        APP_RUNTIME_DIR=str(runtime_dir),
        APP_METRICS_PORT=str(port),
        APP_CONFIG_PATH=str(empty),
        PATH=str(BIN) + os.pathsep + env.get("PATH", ""),
    )
    env.update({"APP_" + key.upper(): value for key, value in settings.items()})
    return env


class Stack:
    """``app-entrypoint`` (then supervisord, same pid) running in the background.

    It runs in ``cwd``, whose ``supervisord.conf`` it uses; by default a new
    directory holding :func:`fixture_conf`, so that the test workers run.
    ``prefix`` runs it under another command, e.g. ``unshare --pid --fork``;
    ``config_file`` False sets no ``APP_CONFIG_PATH``, as the image runs (then
    ``cwd`` must hold no ``config.yml``).
    """

    def __init__(
        self,
        tmp: Path,
        settings: Mapping[str, str],
        cwd: Path | None = None,
        *,
        prefix: tuple[str, ...] = (),
        extra_env: Mapping[str, str] | None = None,
        config_file: bool = True,
    ) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        cwd = fixture_dir(tmp) if cwd is None else cwd
        conf = read_conf(cwd / "supervisord.conf")
        self.processes = tuple(
            s.partition(":")[2] for s in conf.sections()
            if s.startswith(("program:", "eventlistener:"))
        )  # fmt: skip
        # A worker's block says autostart=false: it runs if the workers setting names it.
        workers = {
            s.partition(":")[2] for s in conf.sections()
            if conf.get(s, "autostart", fallback="true") == "false"
        }  # fmt: skip
        chosen = set(settings["workers"].split(",")) if "workers" in settings else workers
        self.running = tuple(p for p in self.processes if p not in workers or p in chosen)
        self.runtime_dir = tmp / "run"
        self.port = free_port()
        self.env = base_env(self.runtime_dir, self.port, **settings) | dict(extra_env or {})
        if not config_file:
            del self.env["APP_CONFIG_PATH"]
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [*prefix, str(BIN / "app-entrypoint")],
            cwd=cwd,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._known: set[int] = set()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def url(self, path: str) -> str:
        """``http://127.0.0.1:<port><path>``."""
        return f"http://127.0.0.1:{self.port}{path}"

    def records(self) -> list[dict[str, Any]]:
        """Every stdout line so far, parsed as JSON (fails on a non-JSON line)."""
        return [json.loads(line) for line in list(self.lines)]

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``supervisorctl -c supervisord.conf ARGS`` from the project root."""
        return run_command([str(BIN / "supervisorctl"), "-c", "supervisord.conf", *args], self.env)

    def health(self) -> subprocess.CompletedProcess[str]:
        """Run the image's healthcheck command (app-health's code) with the stack's environment."""
        return run_command(image_healthcheck(), self.env)

    def pid_of(self, program: str) -> int:
        """The pid supervisord reports for ``app:<program>`` (0 if not running)."""
        return int(self.ctl("pid", f"app:{program}").stdout.strip() or 0)

    def wait_until(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``check`` every 50 ms; fail the test with ``what`` after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._known |= descendants(self.proc.pid)
            if check():
                return
            if self.proc.poll() is not None:
                pytest.fail(f"entrypoint exited ({self.proc.returncode}) waiting for {what}")
            time.sleep(0.05)
        pytest.fail(f"timed out after {timeout} s waiting for {what}; output: {self.lines[-20:]}")

    def wait_ready(self, timeout: float = 15.0) -> None:
        """Wait until /readyz answers 200 and every process that should run is RUNNING."""

        def ready() -> bool:
            try:
                status, _ = http_get(self.url("/readyz"), timeout=1)
            except OSError:
                return False
            running = self.ctl("status").stdout.count("RUNNING")
            return status == 200 and running == len(self.running)

        self.wait_until(ready, timeout, "/readyz 200 and every process RUNNING")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 10.0) -> float:
        """Signal supervisord and wait for it to exit; return the seconds it took."""
        self._known |= descendants(self.proc.pid)
        started = time.monotonic()
        self.proc.send_signal(signum)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log = self.runtime_dir / "supervisord.log"
            alive_now = {pid: Path(f"/proc/{pid}/cmdline").read_bytes()[:80] for pid in
                         descendants(self.proc.pid) if alive(pid)}  # fmt: skip
            pytest.fail(
                f"supervisord still runs {timeout} s after signal {signum}; alive: {alive_now};"
                f" log: {log.read_text()[-1500:] if log.exists() else None};"
                f" output: {self.lines[-10:]}"
            )
        return time.monotonic() - started

    def leftovers(self) -> list[int]:
        """Pids started under this stack that still live."""
        return sorted(pid for pid in self._known if alive(pid))

    def kill(self) -> None:
        """Clean-up: SIGTERM supervisord (SIGKILL after 5 s), then SIGKILL any leftover."""
        self._known |= descendants(self.proc.pid)
        stop_process(self.proc, 5.0)
        for pid in self._known:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):  # it may end in between
                    os.kill(pid, signal.SIGKILL)
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def start_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Start stacks with ``start_stack(loop_sleep_seconds="1", ...)``; all killed at the end.

    ``extra_env`` adds environment variables that are not settings.
    """
    stacks: list[Stack] = []

    def start(extra_env: Mapping[str, str] | None = None, **settings: str) -> Stack:
        stack = Stack(tmp_path / f"stack{len(stacks)}", settings, extra_env=extra_env)
        stacks.append(stack)
        return stack

    yield start
    for stack in stacks:
        stack.kill()


@pytest.fixture(scope="module")
def running_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One ready stack (0.2 s loop) shared by a module's read-only tests."""
    tmp = tmp_path_factory.mktemp("stack")
    stack = Stack(tmp, {"loop_sleep_seconds": "0.2"})
    try:
        stack.wait_ready()
        yield stack
    finally:
        stack.kill()


def run_command(
    args: list[str],
    env: Mapping[str, str] | None = None,
    timeout: float = 20.0,
    cwd: Path = ROOT,
) -> subprocess.CompletedProcess[str]:
    """Run a command (from the project root) to completion (``env`` None: ours); capture output."""
    return subprocess.run(
        args,
        cwd=cwd,
        env=None if env is None else dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_module(
    module: str, env: Mapping[str, str], timeout: float = 20.0
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m module`` to completion with ``env``; capture its output."""
    return subprocess.run(
        [sys.executable, "-m", module],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_worker(root: Path, name: str, worker: str, settings: str | None = None) -> dict[str, str]:
    """Make the worker package ``root/<name>`` (``worker.py``, optional ``settings.py``).

    Its ``__main__.py`` is the shipped one. Returns the environment addition
    (``PYTHONPATH``) that lets ``python -m <name>`` find it.
    """
    package = root / name
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text(f'"""Test worker {name}."""\n')
    main = (ROOT / "services" / "sync_worker" / "__main__.py").read_text()
    (package / "__main__.py").write_text(main)
    (package / "worker.py").write_text(worker)
    if settings is not None:
        (package / "settings.py").write_text(settings)
    return {"PYTHONPATH": str(root)}


def repository_files() -> list[str]:
    """The repository's files as they are now (tracked or new, not ignored), relative paths."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.split(b"\0")  # fmt: skip
    return [name.decode() for name in listed if name]


def repository_copy(target: Path) -> Path:
    """The repository's files as they are now (:func:`repository_files`), copied to ``target``.

    Your own uncommitted worker comes along, so its block in supervisord.conf finds its folder.
    """
    for name in repository_files():
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target
