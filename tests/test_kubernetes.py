"""The Kubernetes manifests: valid offline, and consistent with the image and the app.

Both kustomizations, ``deploy/kubernetes`` (the base) and
``deploy/kubernetes/overlays/deployment-per-worker``, are rendered with a real
kustomize: ``kustomize build`` if it is on PATH, else ``kubectl kustomize``
(kubectl has kustomize built in; this project's machine image ships kubectl
with kustomize v5.5.0, and Debian's own kubernetes-client, kubectl 1.20, has a
kustomize v2.0.3 that predates the ``labels`` and ``patches`` fields used here).
No cluster is needed. kubernetes-validate checks the built-in kinds of each
rendering against the API's own schemas (shipped in the package, no network);
the PodMonitor is checked with check-jsonschema against the schema converted
from the prometheus-operator CRD in ``deploy/kubernetes/schemas``. The remaining
tests tie the manifests to the Dockerfile, supervisord.conf and the real
settings loader, so a change on one side that the other does not follow fails here.
"""

from __future__ import annotations

import configparser
import functools
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from common.config import load_settings, unknown_env_names
from common.supervisord_conf import read_conf, worker_packages
from entrypoint.__main__ import check_workers, declarations
from tests.conftest import ROOT, dockerfile_env

KUBE = ROOT / "deploy" / "kubernetes"
BASE = KUBE / "base"
OVERLAY = KUBE / "overlays" / "deployment-per-worker"
# The overlay's folders that are not a worker's: what the pods share, and the
# base's Deployment alone that each worker's folder starts from.
OVERLAY_HELPERS = ("shared", "deployment")
KUSTOMIZATIONS = {"base": KUBE, "deployment-per-worker": OVERLAY}
SUPERVISORD_CONF = ROOT / "supervisord.conf"
WORKERS = tuple(worker_packages(read_conf(SUPERVISORD_CONF)))
BIN = Path(sys.executable).parent
PODMONITOR = "podmonitor.yaml"
PODMONITOR_SCHEMA = KUBE / "schemas" / "podmonitor_v1.json"
# The oldest of the three newest minors that kubernetes-validate 1.37 ships
# (Kubernetes supports three at a time): no field newer than a supported cluster.
KUBERNETES_VERSION = "1.35.0"
PORT_NAME = "metrics"
MIN_KUSTOMIZE = 5  # the major version these manifests are rendered with (5.5 here)


def kustomization(folder: Path = BASE) -> dict[str, Any]:
    """``folder/kustomization.yaml`` (the base's by default) as a mapping."""
    data: dict[str, Any] = yaml.safe_load((folder / "kustomization.yaml").read_text())
    return data


RESOURCES: list[str] = kustomization()["resources"]


def docs(name: str) -> list[dict[str, Any]]:
    """Every YAML document in ``deploy/kubernetes/base/<name>``."""
    return [d for d in yaml.safe_load_all((BASE / name).read_text()) if d is not None]


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


@functools.cache
def kustomize() -> tuple[str, ...]:
    """The command that renders a kustomization: ``kustomize build``, else ``kubectl kustomize``.

    Fails (never skips) when neither is on PATH or its kustomize is older than
    :data:`MIN_KUSTOMIZE`.
    """
    if found := shutil.which("kustomize"):
        command, version = (found, "build"), run(found, "version").stdout.strip()
    elif found := shutil.which("kubectl"):
        output = run(found, "version", "--client", "--output=json").stdout
        command = (found, "kustomize")
        version = str(json.loads(output or "{}").get("kustomizeVersion", ""))
    else:
        pytest.fail(f"neither kustomize nor kubectl is on PATH: install kustomize {MIN_KUSTOMIZE}+")
    match = re.search(r"v(\d+)\.", version)
    if not match or int(match[1]) < MIN_KUSTOMIZE:
        pytest.fail(f"{' '.join(command)}: kustomize {version!r}, need v{MIN_KUSTOMIZE} or newer")
    return command


@functools.cache
def rendered_text(folder: Path) -> str:
    """What ``kustomize build folder`` prints (rendered once per test run)."""
    result = run(*kustomize(), folder)
    assert result.returncode == 0, result.stderr
    return result.stdout


def rendered(folder: Path, kind: str | None = None) -> list[dict[str, Any]]:
    """The objects (of ``kind``, if given) that ``folder`` renders to, parsed anew each call."""
    objects = [d for d in yaml.safe_load_all(rendered_text(folder)) if d is not None]
    return [o for o in objects if kind is None or o["kind"] == kind]


def only_container(deployment: dict[str, Any]) -> dict[str, Any]:
    """A Deployment's only container."""
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, deployment["metadata"]["name"]
    return containers[0]


def app_workers(deployment: dict[str, Any]) -> str:
    """The APP_WORKERS value of a Deployment's container ("" if it sets none)."""
    env = {e["name"]: e.get("value") for e in only_container(deployment).get("env", [])}
    return str(env.get("APP_WORKERS", ""))


def dashed(program: str) -> str:
    """A program name as Kubernetes names and label values spell it (sync_worker: sync-worker)."""
    return program.replace("_", "-")


def test_kustomization_lists_every_manifest() -> None:
    """The base's kustomization.yaml lists exactly the YAML manifests in its folder."""
    on_disk = {p.name for p in BASE.glob("*.y*ml")} - {"kustomization.yaml"}
    assert sorted(RESOURCES) == sorted(on_disk)
    assert len(RESOURCES) == len(set(RESOURCES))


def test_deploy_kubernetes_renders_the_base() -> None:
    """``kubectl apply -k deploy/kubernetes`` applies exactly what the base renders."""
    assert kustomization(KUBE)["resources"] == ["base"]
    assert rendered(KUBE) == rendered(BASE)
    assert sorted(o["kind"] for o in rendered(KUBE)) == sorted(
        d["kind"] for name in RESOURCES for d in docs(name)
    )


@pytest.mark.parametrize("folder", list(KUSTOMIZATIONS.values()), ids=list(KUSTOMIZATIONS))
def test_rendered_objects_pass_kubernetes_validate_strict(folder: Path, tmp_path: Path) -> None:
    """Every built-in object a kustomization renders matches the API schema, no unknown field."""
    builtin = [o for o in rendered(folder) if o["kind"] != "PodMonitor"]
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(yaml.safe_dump_all(builtin))
    result = run(BIN / "kubernetes-validate", "--strict", "-k", KUBERNETES_VERSION, manifest)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # An unknown kind only warns (exit 0): require that every object was checked.
    assert output.count("passed for resource") == len(builtin) > 0, output


@pytest.mark.parametrize("folder", list(KUSTOMIZATIONS.values()), ids=list(KUSTOMIZATIONS))
def test_rendered_podmonitor_matches_checked_in_schema(folder: Path, tmp_path: Path) -> None:
    """The one PodMonitor a kustomization renders validates against the operator CRD's schema."""
    [monitor] = rendered(folder, "PodMonitor")
    path = tmp_path / PODMONITOR
    path.write_text(yaml.safe_dump(monitor))
    result = run(BIN / "check-jsonschema", "--schemafile", PODMONITOR_SCHEMA, path)
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


def test_runtime_dir_is_the_images_own_in_dev_shm() -> None:
    """The image's APP_RUNTIME_DIR is in /dev/shm (the pod's own tmpfs): no volume shadows it."""
    runtime_dir = dockerfile_env()["APP_RUNTIME_DIR"]
    assert runtime_dir.startswith("/dev/shm/")
    assert "APP_RUNTIME_DIR" not in container_env()
    for mount in container()["volumeMounts"]:
        assert mount.get("readOnly") is True, mount
        assert not runtime_dir.startswith(mount["mountPath"]), mount


def test_service_links_cannot_inject_app_variables() -> None:
    """Service links are off and no Service name would produce APP_* variables anyway."""
    assert pod_spec()["enableServiceLinks"] is False
    name = one("Service")["metadata"]["name"]
    prefix = name.upper().replace("-", "_")  # a link's variables: <PREFIX>_SERVICE_HOST...
    assert prefix != "APP", name
    assert not prefix.startswith("APP_"), name


def test_image_is_the_one_kustomize_sets() -> None:
    """The container's image name is the one kustomization.yaml's images entry replaces."""
    names = [i["name"] for i in kustomization()["images"]]
    assert container()["image"].partition(":")[0] in names


def test_configmap_loads_through_the_settings_loader(tmp_path: Path) -> None:
    """The mounted config.yml passes load_settings and leaves workers at every worker program."""
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
    settings = load_settings({"APP_CONFIG_PATH": str(path)}, declarations(SUPERVISORD_CONF))
    # Not pinned in the file: the default follows supervisord.conf.
    assert settings.sources["workers"] == "default"
    assert settings.workers == WORKERS
    check_workers(settings, SUPERVISORD_CONF)


def test_overlay_runs_one_deployment_per_worker_it_names() -> None:
    """Each overlay Deployment starts one worker program of supervisord.conf, none twice.

    A worker added to supervisord.conf runs in the base at once; the overlay
    runs the workers it has a folder for (the README says how to add one).
    """
    deployments = rendered(OVERLAY, "Deployment")
    started = [app_workers(d) for d in deployments]
    assert len(started) >= 2
    assert len(set(started)) == len(started), started
    assert set(started) <= set(WORKERS), f"not a worker program: {set(started) - set(WORKERS)}"


def test_overlay_lists_a_folder_per_worker() -> None:
    """Each worker's folder is named after a worker program and listed in the resources."""
    folders = {p.name for p in OVERLAY.iterdir() if p.is_dir()}
    assert folders - set(OVERLAY_HELPERS) <= {dashed(w) for w in WORKERS}
    resources = kustomization(OVERLAY)["resources"]
    assert sorted(resources) == sorted(folders - {"deployment"})


def test_overlay_app_workers_picks_that_worker_alone(tmp_path: Path) -> None:
    """Each Deployment's APP_WORKERS loads, through the real loader, as exactly its worker."""
    [configmap] = rendered(OVERLAY, "ConfigMap")
    path = tmp_path / "config.yml"
    path.write_text(configmap["data"]["config.yml"])
    for deployment in rendered(OVERLAY, "Deployment"):
        env = {e["name"]: e["value"] for e in only_container(deployment)["env"]}
        assert set(env) == {"APP_CONFIG_PATH", "APP_WORKERS"}
        assert unknown_env_names(env) == []
        environ = env | {"APP_CONFIG_PATH": str(path)}
        settings = load_settings(environ, declarations(SUPERVISORD_CONF))
        assert settings.workers == (app_workers(deployment),)
        assert settings.sources["workers"] == "env APP_WORKERS"
        check_workers(settings, SUPERVISORD_CONF)


def test_overlay_deployments_have_their_own_names_and_selectors() -> None:
    """Each Deployment is named after its worker and selects its own pods, no other's."""
    base_name = one("Deployment")["metadata"]["name"]
    deployments = rendered(OVERLAY, "Deployment")
    templates = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in deployments
    }
    assert len(templates) == len(deployments)
    for deployment in deployments:
        name, worker = deployment["metadata"]["name"], dashed(app_workers(deployment))
        assert name == f"{base_name}-{worker}"
        selector = deployment["spec"]["selector"]
        assert set(selector) == {"matchLabels"}
        assert selector["matchLabels"]["app.kubernetes.io/component"] == worker
        for other, labels in templates.items():
            selects = selector["matchLabels"].items() <= labels.items()
            assert selects == (other == name), (name, other)


def test_overlay_shares_one_configmap_and_one_podmonitor() -> None:
    """The overlay renders the ConfigMap and a PodMonitor once, for every pod, and no Service."""
    objects = rendered(OVERLAY)
    assert sorted(o["kind"] for o in objects if o["kind"] != "Deployment") == [
        "ConfigMap",
        "PodMonitor",
    ]
    [configmap] = rendered(OVERLAY, "ConfigMap")
    [monitor] = rendered(OVERLAY, "PodMonitor")
    assert monitor["spec"] == one("PodMonitor")["spec"]
    for deployment in rendered(OVERLAY, "Deployment"):
        template = deployment["spec"]["template"]
        assert (
            monitor["spec"]["selector"]["matchLabels"].items()
            <= template["metadata"]["labels"].items()
        )
        volumes = [v["configMap"]["name"] for v in template["spec"]["volumes"] if "configMap" in v]
        assert volumes == [configmap["metadata"]["name"]]


def test_overlay_pods_are_the_base_pod_plus_app_workers() -> None:
    """Each pod is the base's (entrypoint, grace, probes, security) but APP_WORKERS, resources."""
    [base] = rendered(BASE, "Deployment")
    base_pod = base["spec"]["template"]["spec"]
    base_pod["containers"][0].pop("resources")
    for deployment in rendered(OVERLAY, "Deployment"):
        assert deployment["spec"]["replicas"] >= 1
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert "command" not in container  # the image's entrypoint: supervisord is PID 1
        assert "args" not in container
        assert container.pop("resources")["limits"]["memory"]
        container["env"] = [e for e in container["env"] if e["name"] != "APP_WORKERS"]
        assert pod == base_pod
