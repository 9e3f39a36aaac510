"""The Kubernetes manifests: valid offline, and consistent with the image and the app.

kubernetes-validate checks the built-in kinds against the API's own schemas
(shipped in the package, no cluster or network); the PodMonitor is checked with
check-jsonschema against the schema converted from the prometheus-operator CRD
in ``deploy/kubernetes/schemas``. The remaining tests tie the manifests to the
Dockerfile, supervisord.conf and the real settings loader, so a change on one
side that the other does not follow fails here.
"""

from __future__ import annotations

import configparser
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.config import load_settings, unknown_env_names
from entrypoint.__main__ import check_workers
from tests.conftest import ROOT

KUBE = ROOT / "deploy" / "kubernetes"
BIN = Path(sys.executable).parent
PODMONITOR = "podmonitor.yaml"
PODMONITOR_SCHEMA = KUBE / "schemas" / "podmonitor_v1.json"
# The oldest of the three newest minors that kubernetes-validate 1.37 ships
# (Kubernetes supports three at a time): no field newer than a supported cluster.
KUBERNETES_VERSION = "1.35.0"
PORT_NAME = "metrics"


def kustomization() -> dict[str, Any]:
    """deploy/kubernetes/kustomization.yaml as a mapping."""
    data: dict[str, Any] = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    return data


RESOURCES: list[str] = kustomization()["resources"]


def docs(name: str) -> list[dict[str, Any]]:
    """Every YAML document in ``deploy/kubernetes/<name>``."""
    return [d for d in yaml.safe_load_all((KUBE / name).read_text()) if d is not None]


def one(kind: str) -> dict[str, Any]:
    """The single object of ``kind`` among the kustomization's resources."""
    found = [d for name in RESOURCES for d in docs(name) if d.get("kind") == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_spec() -> dict[str, Any]:
    """The Deployment's pod template spec."""
    spec: dict[str, Any] = one("Deployment")["spec"]["template"]["spec"]
    return spec


def container() -> dict[str, Any]:
    """The Deployment's only container (the whole image: supervisord and its programs)."""
    containers: list[dict[str, Any]] = pod_spec()["containers"]
    assert len(containers) == 1
    return containers[0]


def container_env() -> dict[str, str]:
    """The container's literal ``env`` values by name."""
    return {e["name"]: e["value"] for e in container().get("env", []) if "value" in e}


def dockerfile_env() -> dict[str, str]:
    """The ``KEY=value`` pairs of the Dockerfile's ENV instructions."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    pairs: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            pairs.update(re.findall(r"(\w+)=(\S+)", line))
    return pairs


def dockerfile_user() -> tuple[int, int]:
    """``(uid, gid)`` from the Dockerfile's ``USER uid:gid`` line."""
    match = re.search(r"^USER (\d+):(\d+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert match, "Dockerfile has no numeric USER uid:gid line"
    return int(match[1]), int(match[2])


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run a CLI from the venv's bin dir; never raises on a non-zero exit."""
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, check=False, timeout=120
    )


def test_kustomization_lists_every_manifest() -> None:
    """kustomization.yaml's resources are exactly the YAML manifests in its folder."""
    on_disk = {p.name for p in KUBE.glob("*.y*ml")} - {"kustomization.yaml"}
    assert sorted(RESOURCES) == sorted(on_disk)
    assert len(RESOURCES) == len(set(RESOURCES))


@pytest.mark.parametrize("name", [r for r in RESOURCES if r != PODMONITOR])
def test_manifest_passes_kubernetes_validate_strict(name: str) -> None:
    """Each built-in manifest matches the Kubernetes API schema with no unknown field."""
    result = run(BIN / "kubernetes-validate", "--strict", "-k", KUBERNETES_VERSION, KUBE / name)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # An unknown kind only warns (exit 0): require that every object was checked.
    assert output.count("passed for resource") == len(docs(name)), output


def test_podmonitor_matches_checked_in_schema() -> None:
    """podmonitor.yaml validates against the schema converted from the operator's CRD."""
    result = run(BIN / "check-jsonschema", "--schemafile", PODMONITOR_SCHEMA, KUBE / PODMONITOR)
    assert result.returncode == 0, result.stdout + result.stderr


def test_podmonitor_schema_rejects_unknown_endpoint_field(tmp_path: Path) -> None:
    """A misspelt field in a scrape endpoint fails validation: the schema is strict."""
    broken = one("PodMonitor")
    broken["spec"]["podMetricsEndpoints"][0]["portt"] = PORT_NAME
    path = tmp_path / PODMONITOR
    path.write_text(yaml.safe_dump(broken))
    result = run(BIN / "check-jsonschema", "--schemafile", PODMONITOR_SCHEMA, path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "'portt' was unexpected" in result.stdout


def test_probes_hit_health_routes_on_the_metrics_port() -> None:
    """Startup and liveness probe /healthz, readiness /readyz, on the port named metrics."""
    ports = {p["name"]: p["containerPort"] for p in container()["ports"]}
    assert ports[PORT_NAME] == int(dockerfile_env()["APP_METRICS_PORT"]) == 8000
    expected = {
        "startupProbe": "/healthz",
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
    }
    for probe, path in expected.items():
        assert container()[probe]["httpGet"] == {"path": path, "port": PORT_NAME}, probe


def test_service_and_podmonitor_use_the_metrics_port() -> None:
    """The Service and the PodMonitor reach the pods through the port named metrics."""
    pod_labels = one("Deployment")["spec"]["template"]["metadata"]["labels"]
    service = one("Service")["spec"]
    assert service["ports"] == [
        {"name": PORT_NAME, "port": 8000, "targetPort": PORT_NAME, "protocol": "TCP"}
    ]
    assert service["selector"].items() <= pod_labels.items()
    monitor = one("PodMonitor")["spec"]
    assert monitor["selector"]["matchLabels"].items() <= pod_labels.items()
    assert [(e["port"], e["path"]) for e in monitor["podMetricsEndpoints"]] == [
        (PORT_NAME, "/metrics")
    ]


def test_grace_period_outlasts_supervisord_stopwaitsecs() -> None:
    """The pod's grace period exceeds every program's stopwaitsecs, so no SIGKILL cuts it."""
    parser = configparser.RawConfigParser()
    parser.read(ROOT / "supervisord.conf")
    programs = [s for s in parser.sections() if s.startswith("program:")]
    # 10 s is supervisord's own default for stopwaitsecs.
    waits = [parser.getint(s, "stopwaitsecs", fallback=10) for s in programs]
    assert waits
    assert pod_spec()["terminationGracePeriodSeconds"] > max(waits) >= 10


def test_security_context_matches_the_image_user() -> None:
    """The pod runs as the Dockerfile's USER, non-root, read-only, without privileges."""
    uid, gid = dockerfile_user()
    pod, ctr = pod_spec()["securityContext"], container()["securityContext"]
    assert (pod["runAsUser"], pod["runAsGroup"], pod["fsGroup"]) == (uid, gid, gid) == (10001,) * 3
    assert pod["runAsNonRoot"] is True
    assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
    assert ctr["readOnlyRootFilesystem"] is True
    assert ctr["allowPrivilegeEscalation"] is False
    assert ctr["capabilities"] == {"drop": ["ALL"]}


def test_runtime_dir_is_a_writable_emptydir() -> None:
    """An emptyDir is mounted read-write at the image's APP_RUNTIME_DIR (/run/app)."""
    runtime_dir = dockerfile_env()["APP_RUNTIME_DIR"]
    assert runtime_dir == "/run/app"
    assert "APP_RUNTIME_DIR" not in container_env()
    mounts = {m["mountPath"]: m for m in container()["volumeMounts"]}
    mount = mounts[runtime_dir]
    assert not mount.get("readOnly", False)
    volumes = {v["name"]: v for v in pod_spec()["volumes"]}
    assert "emptyDir" in volumes[mount["name"]]


def test_service_links_cannot_inject_app_variables() -> None:
    """Service links are off and no Service name would produce APP_* variables anyway."""
    assert pod_spec()["enableServiceLinks"] is False
    name = one("Service")["metadata"]["name"]
    assert not name.lower().startswith("app"), name


def test_image_is_the_one_kustomize_sets() -> None:
    """The container's image name is the one kustomization.yaml's images entry replaces."""
    names = [i["name"] for i in kustomization()["images"]]
    assert container()["image"].partition(":")[0] in names


def test_configmap_loads_through_the_settings_loader(tmp_path: Path) -> None:
    """The mounted config.yml passes load_settings and names only supervisord programs."""
    env = container_env()
    assert set(env) == {"APP_CONFIG_PATH"}
    assert unknown_env_names(env) == []
    config_path = Path(env["APP_CONFIG_PATH"])
    configmap = one("ConfigMap")
    mounts = {m["name"]: m for m in container()["volumeMounts"]}
    volume = next(v for v in pod_spec()["volumes"] if "configMap" in v)
    assert volume["configMap"]["name"] == configmap["metadata"]["name"]
    mount = mounts[volume["name"]]
    assert mount["readOnly"] is True
    assert Path(mount["mountPath"]) / "config.yml" == config_path
    path = tmp_path / config_path.name
    path.write_text(configmap["data"]["config.yml"])
    settings = load_settings({"APP_CONFIG_PATH": str(path)})
    assert settings.sources["workers"].startswith(str(path))
    check_workers(settings, ROOT / "supervisord.conf")
