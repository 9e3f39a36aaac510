"""What settings cost each program: this project's loader and snapshot versus pydantic-settings.

For each option, in a fresh interpreter, RUNS times (median): the wall time
and the PSS added over a bare ``python -c pass`` of the same interpreter, to
import the settings code and load the shared settings plus two programs'
sections (six fields each):

- *snapshot read*: what every program does under supervisord here
  (``APP_RESOLVED_SETTINGS``; JSON, no PyYAML, no loader);
- *full load*: what ``app-entrypoint`` does once (environment + YAML file +
  declarations, every value converted and checked);
- *pydantic-settings*: a ``BaseSettings`` with the same fields and one nested
  model per program, from the same environment and YAML file. It is installed
  with pip into a temporary virtual environment (needs the package index).

Then the error each gives for one bad environment value, to show whether it
names the source. Run: ``.venv/bin/python bench/settings_options.py [RUNS]``.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PSS = "int([l for l in open('/proc/self/smaps_rollup') if l.startswith('Pss:')][0].split()[1])"
CONFIG = "env: bench\nprograms:\n  fetcher:\n    retries: 3\n  poller:\n    batch: 10\n"
OURS_DECLARATIONS = """
from dataclasses import dataclass
from typing import Annotated
from common.settings import URL, Secret, Seconds, between
@dataclass(frozen=True)
class Fetcher:
    url: URL = URL("http://localhost/")
    retries: Annotated[int, between(0, 10)] = 2
    timeout: Seconds = 5.0
    token: Secret = Secret("")
    tags: tuple[str, ...] = ()
    verbose: bool = False
@dataclass(frozen=True)
class Poller:
    url: URL = URL("http://localhost/")
    batch: Annotated[int, between(1, 1000)] = 100
    timeout: Seconds = 5.0
    token: Secret = Secret("")
    tags: tuple[str, ...] = ()
    verbose: bool = False
DECLARED = {"fetcher": Fetcher, "poller": Poller}
"""
OURS_FULL = (
    OURS_DECLARATIONS
    + """
from common.config import load_settings
settings = load_settings(declarations=DECLARED)
"""
)
OURS_SNAPSHOT = """
from common.config import load_settings
settings = load_settings()
"""
PYDANTIC = """
from pydantic import AnyHttpUrl, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict, YamlConfigSettingsSource
class Fetcher(BaseModel):
    url: AnyHttpUrl = "http://localhost/"
    retries: int = Field(2, ge=0, le=10)
    timeout: float = Field(5.0, gt=0)
    token: SecretStr = SecretStr("")
    tags: list[str] = []
    verbose: bool = False
class Poller(BaseModel):
    url: AnyHttpUrl = "http://localhost/"
    batch: int = Field(100, ge=1, le=1000)
    timeout: float = Field(5.0, gt=0)
    token: SecretStr = SecretStr("")
    tags: list[str] = []
    verbose: bool = False
class Programs(BaseModel):
    fetcher: Fetcher = Fetcher()
    poller: Poller = Poller()
class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="APP_", env_nested_delimiter="__",
                                      yaml_file="config.yml", extra="forbid")
    service_name: str = "app"
    env: str = "local"
    log_level: str = "INFO"
    metrics_port: int = Field(8000, ge=1, le=65535)
    loop_sleep_seconds: float = Field(5.0, gt=0)
    programs: Programs = Programs()
    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                   dotenv_settings, file_secret_settings):
        return (env_settings, YamlConfigSettingsSource(settings_cls))
settings = Settings()
"""


def run(python: str, code: str, env: dict[str, str], cwd: Path) -> tuple[float, int]:
    """``(seconds, PSS kB at the end)`` of ``python -c code``; raises if it fails."""
    started = time.perf_counter()
    done = subprocess.run(
        [python, "-c", code + f"\nprint({PSS})"],
        env=env, cwd=cwd, capture_output=True, text=True, check=False,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{python} failed:\n{done.stderr[-2000:]}")
    return elapsed, int(done.stdout.split()[-1])


def measure(
    python: str, code: str, env: dict[str, str], cwd: Path, runs: int
) -> tuple[float, float]:
    """Median ``(ms, MB PSS)`` added by ``code`` over ``python -c pass``, in turns."""
    added_time, added_pss = [], []
    for _ in range(runs + 1):
        base = run(python, "pass", env, cwd)
        with_code = run(python, code, env, cwd)
        added_time.append((with_code[0] - base[0]) * 1000)
        added_pss.append((with_code[1] - base[1]) / 1024)
    return statistics.median(added_time[1:]), statistics.median(added_pss[1:])


def error_text(python: str, code: str, env: dict[str, str], cwd: Path) -> str:
    """The last line of output (the error) of ``code`` with APP_METRICS_PORT=80a."""
    done = subprocess.run(
        [python, "-c", code], env=env | {"APP_METRICS_PORT": "80a"}, cwd=cwd,
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    return " | ".join(lines[-3:])[:300]


def main() -> None:
    """Print one line per option, then each option's error for one bad value."""
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "config.yml").write_text(CONFIG)
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("APP_")}
        ours_env = base_env | {"PYTHONPATH": str(ROOT), "APP_CONFIG_PATH": str(tmp / "config.yml")}
        code = OURS_DECLARATIONS + (
            "from common.config import load_settings\nfrom common.snapshot import write_snapshot\n"
            "from pathlib import Path\n"
            f"write_snapshot(load_settings(declarations=DECLARED), Path({str(tmp)!r}) / 's.json')\n"
        )
        subprocess.run([sys.executable, "-c", code], env=ours_env, cwd=tmp, check=True)
        snapshot_env = ours_env | {"APP_RESOLVED_SETTINGS": str(tmp / "s.json")}
        print("installing pydantic-settings[yaml] into a temporary venv...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], check=True)
        venv_python = str(tmp / "venv" / "bin" / "python")
        subprocess.run(
            [venv_python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "pydantic-settings[yaml]"], check=True,
        )  # fmt: skip
        version = subprocess.run(
            [venv_python, "-c", "import pydantic, pydantic_settings as s;"
             "print(pydantic.VERSION, s.__version__)"],
            capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        options = [
            ("snapshot read (each program here)", sys.executable, OURS_SNAPSHOT, snapshot_env),
            ("full load (app-entrypoint, once)", sys.executable, OURS_FULL, ours_env),
            (f"pydantic-settings {version[1]} (pydantic {version[0]})", venv_python, PYDANTIC,
             base_env),
        ]  # fmt: skip
        print(f"# {platform.python_version()}, {os.cpu_count()} cores, median of {runs} runs")
        print(f"{'option':<44} {'added ms':>9} {'added PSS MB':>13}")
        for label, python, source, env in options:
            ms, mb = measure(python, source, env, tmp, runs)
            print(f"{label:<44} {ms:>9.1f} {mb:>13.1f}")
        print("\n# the error for APP_METRICS_PORT=80a")
        print("ours:    ", error_text(sys.executable, OURS_FULL, ours_env, tmp))
        print("pydantic:", error_text(venv_python, PYDANTIC, base_env, tmp))


if __name__ == "__main__":
    main()
