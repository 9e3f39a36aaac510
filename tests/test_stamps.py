"""The watchdog's stamp reader: prometheus-client's own file reader, without its package import."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import ROOT

WRITE = """
import os, sys
from common.metrics import WorkerMetrics
metrics = WorkerMetrics("bot", heartbeats=True)
metrics.started()
metrics.iteration_finished(0.1, failed=False)
metrics.heartbeat()
from prometheus_client.mmap_dict import MmapedDict
path = os.path.join(os.environ["PROMETHEUS_MULTIPROC_DIR"], f"gauge_mostrecent_{os.getpid()}.db")
newest = max(v for k, v, _t, _p in MmapedDict.read_all_values_from_file(path) if "_timestamp_" in k)
print(os.getpid(), repr(newest))
"""
READ = """
import sys
from pathlib import Path
from common.stamps import stamp
print(repr(stamp(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3])))
print("prometheus_client" in sys.modules)
"""


def run(code: str, *args: str, env: dict[str, str] | None = None) -> list[str]:
    """Run ``code`` in a fresh interpreter from the project root; return its stdout lines."""
    result = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=30, check=True,
    )  # fmt: skip
    return result.stdout.split()


def test_stamp_reads_what_prometheus_client_wrote_without_importing_it(tmp_path: Path) -> None:
    """stamp() equals the newest stamp MmapedDict reads, and leaves prometheus_client unimported."""
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    pid, newest = run(WRITE, env=env)
    value, imported = run(READ, str(tmp_path), pid, "bot")
    assert float(value) == float(newest) > 0
    assert imported == "False"
    assert run(READ, str(tmp_path), pid, "other")[0] == "0.0"  # another program's: none
    assert run(READ, str(tmp_path), "1", "bot")[0] == "0.0"  # no such file


def test_a_damaged_file_reads_as_no_stamp(tmp_path: Path) -> None:
    """A truncated or garbled metric file is no stamp (0), never an exception in PID 1."""
    (tmp_path / "gauge_mostrecent_7.db").write_bytes(b"\xff\xff\x00\x00garbage")
    (tmp_path / "gauge_mostrecent_8.db").write_bytes(b"")
    assert run(READ, str(tmp_path), "7", "bot")[0] == "0.0"
    assert run(READ, str(tmp_path), "8", "bot")[0] == "0.0"
