"""The Prometheus and Grafana files in ``deploy/``, checked with the real ``promtool``.

``promtool`` comes with the Debian package ``prometheus``; the tests that run it
skip when it is not on PATH. The rest parse the YAML and JSON files and check
them against each other, against the metrics the app exports and against the
worker programs in supervisord.conf.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import PROCESS_FAMILIES, ROOT, WORKERS

PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
CONFIG = PROMETHEUS_DIR / "prometheus.yml"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
GRAFANA_DIR = ROOT / "deploy" / "grafana"
DATASOURCE = GRAFANA_DIR / "provisioning" / "datasources" / "prometheus.yml"
PROVIDER = GRAFANA_DIR / "provisioning" / "dashboards" / "app.yml"
DASHBOARD = GRAFANA_DIR / "dashboards" / "app.json"
# Where docker-compose.yml mounts deploy/grafana/dashboards in the Grafana container.
DASHBOARDS_MOUNT = "/var/lib/grafana/dashboards"

# Every metric name the exporter serves (common/metrics.py, the exporter's
# app_build_info, the process_* it reads from /proc), plus Prometheus' own up.
HISTOGRAM = "app_iteration_duration_seconds"
EXPORTED = frozenset(
    {
        "app_iterations_total",
        "app_iteration_errors_total",
        f"{HISTOGRAM}_bucket",
        f"{HISTOGRAM}_sum",
        f"{HISTOGRAM}_count",
        "app_last_iteration_timestamp_seconds",
        "app_last_heartbeat_timestamp_seconds",
        "app_up",
        "app_starts_total",
        "app_build_info",
        "app_worker_expected",
        "app_watchdog_restarts_total",
        *PROCESS_FAMILIES,
        "up",
    }
)
DURATION_BUCKETS = ("0.001", "0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "10", "30", "60")
REQUIRED_ALERTS = ("AppExporterDown", "AppWorkerDown", "AppWorkerStale")
# The per-program views the dashboard must show: name -> pattern in an
# expression with its whitespace removed.
PER_PROGRAM_VIEWS = {
    "up": re.compile(r"^app_up\{"),
    "iterations per second": re.compile(r"^rate\(app_iterations_total\{"),
    "seconds since last heartbeat or iteration": re.compile(
        r"^time\(\)-\(app_last_heartbeat_timestamp_seconds\{.*\}orapp_last_iteration_timestamp_seconds\{"
    ),
    "p95 duration": re.compile(
        r"^histogram_quantile\(0\.95,sumby\(program,le\)\(rate\(app_iteration_duration_seconds_bucket\{"
    ),
    "errors per second": re.compile(r"^rate\(app_iteration_errors_total\{"),
    "restarts": re.compile(r"^increase\(app_starts_total\{"),
}
# A name starting with app_ or process_ that is not part of a longer identifier.
APP_METRIC = re.compile(r"(?<![A-Za-z0-9_:])(?:app|process)_[A-Za-z0-9_:]*")
QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
# Values for Grafana's variables that make a dashboard query plain PromQL.
GRAFANA_VARIABLES = {
    "$__rate_interval": "1m",
    "$__range": "1h",
    "$program": ".+",
    "$process": ".+",
}


def promtool() -> str:
    """The path of ``promtool``; skips the test when it is not installed."""
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool not found: apt-get install prometheus")
    return path


def run_promtool(*args: str, cwd: Path) -> str:
    """Run ``promtool args`` in ``cwd``, assert it succeeds and return its output."""
    proc = subprocess.run(
        [promtool(), *args], cwd=cwd, check=False, capture_output=True, text=True, timeout=60
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
    return output


def load_yaml(path: Path) -> Any:
    """The parsed YAML document in ``path``."""
    return yaml.safe_load(path.read_text())


def alert_rules() -> list[dict[str, Any]]:
    """Every alerting rule in alerts.yml, in file order."""
    return [
        rule for group in load_yaml(ALERTS)["groups"] for rule in group["rules"] if "alert" in rule
    ]


def alert_exprs() -> list[str]:
    """The expression of every alerting rule."""
    return [str(rule["expr"]) for rule in alert_rules()]


def dashboard() -> dict[str, Any]:
    """The parsed Grafana dashboard."""
    result: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return result


def dashboard_panels() -> list[dict[str, Any]]:
    """Every panel of the dashboard, including those nested in rows."""
    panels: list[dict[str, Any]] = []
    for panel in dashboard()["panels"]:
        panels.append(panel)
        panels.extend(panel.get("panels", []))
    return panels


def dashboard_targets() -> list[dict[str, Any]]:
    """Every query of every dashboard panel."""
    return [target for panel in dashboard_panels() for target in panel.get("targets", [])]


def dashboard_exprs() -> list[str]:
    """The PromQL expression of every dashboard query."""
    return [str(target["expr"]) for target in dashboard_targets()]


def compact(expr: str) -> str:
    """``expr`` without whitespace, for matching its shape."""
    return re.sub(r"\s+", "", expr)


def plain_promql(expr: str) -> str:
    """A dashboard expression with Grafana's variables replaced by PromQL values."""
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def program_targets() -> list[dict[str, Any]]:
    """The dashboard queries drawn per program (legend ``{{program}}``)."""
    return [t for t in dashboard_targets() if t.get("legendFormat") == "{{program}}"]


def test_promtool_checks_config_and_its_rule_file() -> None:
    """The real promtool accepts prometheus.yml and the rule file it references."""
    output = run_promtool("check", "config", str(CONFIG), cwd=ROOT)
    assert "1 rule files found" in output, output


def test_promtool_checks_rules() -> None:
    """The real promtool accepts every rule in alerts.yml."""
    output = run_promtool("check", "rules", str(ALERTS), cwd=ROOT)
    assert f"{len(alert_rules())} rules found" in output, output


def test_promtool_alert_unit_tests_pass() -> None:
    """The unit tests in alerts_test.yml pass against alerts.yml."""
    output = run_promtool("test", "rules", ALERTS_TEST.name, cwd=PROMETHEUS_DIR)
    assert "SUCCESS" in output, output


def test_prometheus_scrapes_the_app_and_loads_relative_rules() -> None:
    """prometheus.yml scrapes app:8000/metrics as job app and loads alerts.yml by relative path."""
    config = load_yaml(CONFIG)
    assert config["global"]["scrape_interval"] == "15s"
    assert config["global"]["evaluation_interval"] == "15s"
    assert config["rule_files"] == [ALERTS.name]
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "app"
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job["static_configs"] == [{"targets": ["app:8000"]}]


def test_required_alerts_exist_with_for_severity_and_annotations() -> None:
    """The required alerts exist, and every alert has for, a severity and both annotations."""
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert set(REQUIRED_ALERTS) <= set(names), names
    assert len(names) == len(set(names)), f"duplicate alert names: {names}"
    for rule in rules:
        assert "for" in rule, f"{rule['alert']} has no for:"
        assert rule.get("labels", {}).get("severity") in {"critical", "warning"}, rule["alert"]
        assert {"summary", "description"} <= set(rule.get("annotations", {})), rule["alert"]


def test_every_alert_has_firing_and_quiet_unit_tests() -> None:
    """Every alert in alerts.yml has a unit test where it fires and one where it stays quiet."""
    test_file = load_yaml(ALERTS_TEST)
    assert test_file["rule_files"] == [ALERTS.name]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in test_file["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alert_rules()}
    assert not names - firing, f"alerts never tested firing: {sorted(names - firing)}"
    assert not names - quiet, f"alerts never tested quiet: {sorted(names - quiet)}"
    assert not (firing | quiet) - names, (
        f"tests of unknown alerts: {sorted((firing | quiet) - names)}"
    )


def test_no_rule_names_a_program() -> None:
    """The worker rules join on app_worker_expected: a new worker needs no edit in alerts.yml."""
    for rule in alert_rules():
        assert "program=" not in compact(str(rule["expr"])), rule["alert"]
        assert "absent(" not in str(rule["expr"]), rule["alert"]
    judged = {"AppWorkerDown", "AppWorkerStale", "AppWorkerMissing"}
    for rule in alert_rules():
        if rule["alert"] in judged:
            assert "app_worker_expected" in str(rule["expr"]), rule["alert"]


def test_dashboard_uses_the_provisioned_datasource() -> None:
    """Every panel and query of the dashboard uses the uid of the provisioned datasource."""
    (source,) = load_yaml(DATASOURCE)["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert source["isDefault"] is True
    uid = source["uid"]
    board = dashboard()
    assert board["uid"]
    assert board["title"]
    panels = dashboard_panels()
    assert panels
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target.get("datasource", panel["datasource"])["uid"] == uid, panel["title"]
    for variable in board["templating"]["list"]:
        assert variable["datasource"]["uid"] == uid, variable["name"]


def test_dashboard_provider_loads_the_mounted_dashboards() -> None:
    """The dashboard provider reads the directory compose mounts deploy/grafana/dashboards at."""
    (provider,) = load_yaml(PROVIDER)["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == DASHBOARDS_MOUNT


def test_dashboard_has_a_multi_program_variable() -> None:
    """The program variable lists the workers the container starts, allows several and All."""
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    program = variables["program"]
    assert program["query"]["query"] == "label_values(app_worker_expected, program)"
    assert program["multi"] is True
    assert program["includeAll"] is True


def test_dashboard_shows_every_per_program_view() -> None:
    """The dashboard draws up, iterations/s, age, p95 duration, errors/s, restarts per program."""
    targets = program_targets()
    for view, pattern in PER_PROGRAM_VIEWS.items():
        matching = [t for t in targets if pattern.search(compact(t["expr"]))]
        assert matching, f"no per-program panel shows {view}"
    for target in targets:
        chosen = 'program=~"$process"' if "process_" in target["expr"] else 'program=~"$program"'
        assert chosen in target["expr"], target["expr"]
    for family in PROCESS_FAMILIES:
        name = family.removesuffix("_total")
        assert any(name in t["expr"] for t in targets), f"no per-program panel shows {family}"
    exprs = [compact(e) for e in dashboard_exprs()]
    assert 'up{job="app"}' in exprs, "no panel shows the exporter's scrape status"
    assert "app_build_info" in exprs, "no panel shows the build info"
    types = {panel["type"] for panel in dashboard_panels()}
    assert {"timeseries", "stat"} <= types


def test_expressions_use_only_exported_metrics() -> None:
    """Every app_ metric named in an alert or dashboard expression is one the app exports."""
    used: set[str] = set()
    for expr in alert_exprs() + dashboard_exprs():
        used.update(APP_METRIC.findall(QUOTED.sub('""', expr)))
    assert used, "no app_ metric found: the name pattern is broken"
    assert "process_pss_bytes" in used, "no process_ metric found: the name pattern is broken"
    assert not used - EXPORTED, f"not exported by the app: {sorted(used - EXPORTED)}"


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """Every dashboard query is PromQL that promtool parses, with Grafana's variables filled in."""
    rules = [
        {"record": f"dashboard:query_{i}", "expr": plain_promql(expr)}
        for i, expr in enumerate(dashboard_exprs())
    ]
    rule_file = tmp_path / "dashboard_rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    output = run_promtool("check", "rules", rule_file.name, cwd=tmp_path)
    assert f"{len(rules)} rules found" in output, output


def healthy_series() -> list[dict[str, str]]:
    """Input series for promtool: every worker healthy for 20 minutes, scraped every 15 s."""
    job = 'job="app", instance="app:8000"'
    series = [{"series": f"up{{{job}}}", "values": "1x80"}]
    for program in WORKERS:
        labels = f'{job}, program="{program}"'
        series += [
            {"series": f"app_up{{{labels}}}", "values": "1x80"},
            {"series": f"app_starts_total{{{labels}}}", "values": "1x80"},
            {"series": f"app_iterations_total{{{labels}}}", "values": "0+3x80"},
            {"series": f"app_iteration_errors_total{{{labels}}}", "values": "0+1x80"},
            {"series": f"app_last_iteration_timestamp_seconds{{{labels}}}", "values": "0+15x80"},
            {"series": f"{HISTOGRAM}_sum{{{labels}}}", "values": "0+0.3x80"},
            {"series": f"{HISTOGRAM}_count{{{labels}}}", "values": "0+3x80"},
            {"series": f"process_cpu_seconds_total{{{labels}}}", "values": "0+1.5x80"},
        ]
        series += [
            {"series": f"{family}{{{labels}}}", "values": "30000000x80"}
            for family in PROCESS_FAMILIES
            if family != "process_cpu_seconds_total"
        ]
        for le in (*DURATION_BUCKETS, "+Inf"):
            bucket = f'{HISTOGRAM}_bucket{{{labels}, le="{le}"}}'
            series.append({"series": bucket, "values": "0+3x80"})
    return series


def test_dashboard_program_queries_give_one_series_per_program(tmp_path: Path) -> None:
    """On healthy data, each per-program dashboard query gives one series for each worker."""
    targets = program_targets()
    exprs = [plain_promql(t["expr"]) for t in targets]
    rule_file = tmp_path / "empty_rules.yml"
    rule_file.write_text(yaml.safe_dump({"groups": []}))
    expected = [{"labels": f'{{program="{program}"}}', "value": 1} for program in WORKERS]
    test_file = tmp_path / "dashboard_test.yml"
    test_file.write_text(
        yaml.safe_dump(
            {
                "rule_files": [rule_file.name],
                "evaluation_interval": "15s",
                "tests": [
                    {
                        "interval": "15s",
                        "input_series": healthy_series(),
                        "promql_expr_test": [
                            {
                                "expr": f"count by (program) ({expr})",
                                "eval_time": "15m",
                                "exp_samples": expected,
                            }
                            for expr in exprs
                        ],
                    }
                ],
            }
        )
    )
    output = run_promtool("test", "rules", test_file.name, cwd=tmp_path)
    assert "SUCCESS" in output, output
