"""The optional integrations' variables: checked as the libraries read them, and free when off."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from common.config import ConfigError, load_settings
from common.integration_env import problems
from common.observability import sentry_on, tracing_on
from tests.conftest import BIN, base_env, free_port, run_command, run_module

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}
DSN = "https://abc123@o1.ingest.sentry.io/4505"


def details(environ: dict[str, str]) -> list[str]:
    """``"<key> (<source>): <detail>"`` of every problem."""
    return [str(p) for p in problems(environ)]


def test_nothing_set_is_off_and_fine() -> None:
    """No variable: both off, no problem."""
    assert not tracing_on({})
    assert not sentry_on({})
    assert problems({}) == []


def test_an_endpoint_turns_tracing_on_unless_turned_off() -> None:
    """Either endpoint turns traces on; OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none off."""
    assert tracing_on(ENDPOINT)
    assert tracing_on({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://c/v1/traces"})
    assert not tracing_on(ENDPOINT | {"OTEL_SDK_DISABLED": "TRUE"})
    assert not tracing_on(ENDPOINT | {"OTEL_TRACES_EXPORTER": "none"})
    assert problems(ENDPOINT | {"OTEL_SDK_DISABLED": "true"}) == []


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318", "expected an http:// or https:// URL"),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://", "expected an http:// or https:// URL"),
        ("OTEL_TRACES_SAMPLER", "sometimes", "expected one of always_on, always_off"),
        ("OTEL_TRACES_SAMPLER_ARG", "1.5", "expected a ratio from 0 to 1, got '1.5'"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc", "expected one of http/protobuf, got 'grpc'"),
        ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "10s", "expected a number > 0, got '10s'"),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "zstd", "expected one of gzip, deflate, none"),
        ("OTEL_EXPORTER_OTLP_HEADERS", "api-key", "expected key=value pairs"),
        ("OTEL_BSP_MAX_QUEUE_SIZE", "0", "expected an integer >= 1, got '0'"),
        ("OTEL_TRACES_EXPORTER", "zipkin", "expected one of otlp, none, got 'zipkin'"),
        ("OTEL_SDK_DISABLED", "yes", "expected one of true, false, got 'yes'"),
        ("OTEL_PROPAGATORS", "tracecontext,b3", "expected tracecontext, baggage or none"),
        ("OTEL_RESOURCE_ATTRIBUTES", "team", "expected key=value pairs"),
    ],
)
def test_a_bad_tracing_value_names_its_variable(name: str, value: str, expected: str) -> None:
    """Each value the SDK would replace silently by a default is a problem naming the variable."""
    environ = ENDPOINT | {name: value}
    [problem] = problems(environ)
    assert (problem.key, problem.source) == (name, f"env {name}")
    assert expected in problem.detail


# Found by a review (issue 14): values the check let through that crash every worker
# at start, or that the library misreads or drops with only a warning.
@pytest.mark.parametrize(
    ("environ", "key"),
    [
        ({"OTEL_BSP_SCHEDULE_DELAY": "0"}, "OTEL_BSP_SCHEDULE_DELAY"),  # "must be positive"
        ({"OTEL_BSP_MAX_QUEUE_SIZE": "100"}, "OTEL_BSP_MAX_QUEUE_SIZE"),  # < the batch, 512
        ({"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4096"}, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
        ({"OTEL_PROPAGATORS": "TraceContext"}, "OTEL_PROPAGATORS"),  # entry points are exact
        ({"OTEL_TRACES_SAMPLER": "always_off "}, "OTEL_TRACES_SAMPLER"),  # lowered, not stripped
        ({"OTEL_EXPORTER_OTLP_HEADERS": "my key=v"}, "OTEL_EXPORTER_OTLP_HEADERS"),
        ({"OTEL_EXPORTER_OTLP_HEADERS": "x-token=t\u00f6k"}, "OTEL_EXPORTER_OTLP_HEADERS"),
        ({"OTEL_EXPORTER_OTLP_HEADERS": 'a="b"'}, "OTEL_EXPORTER_OTLP_HEADERS"),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "0"}, "OTEL_EXPORTER_OTLP_TIMEOUT"),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "nan"}, "OTEL_EXPORTER_OTLP_TIMEOUT"),
        ({"OTEL_EXPORTER_OTLP_TIMEOUT": "inf"}, "OTEL_EXPORTER_OTLP_TIMEOUT"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318 "}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:port"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ({"SENTRY_DSN": "https://k@host/1/"}, "SENTRY_DSN"),  # BadDsn: Invalid project
        ({"SENTRY_DSN": "https://k@host:abc/1"}, "SENTRY_DSN"),
        ({"SENTRY_DSN": "https://k@host/\u00b2"}, "SENTRY_DSN"),  # isdigit, not int
    ],
)
def test_what_the_libraries_reject_or_drop_is_a_problem(environ: dict[str, str], key: str) -> None:
    """Each value that would crash the workers or be dropped silently is one problem, named."""
    assert [p.key for p in problems(ENDPOINT | environ)] == [key]


@pytest.mark.parametrize(
    "environ",
    [
        {"OTEL_EXPORTER_OTLP_ENDPOINT": ""},  # empty is unset (the specification)
        {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "", "OTEL_TRACES_SAMPLER": ""},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://[::1]:4318"},
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "HTTP://collector"},
        {"OTEL_TRACES_SAMPLER": "PARENTBASED_TRACEIDRATIO", "OTEL_TRACES_SAMPLER_ARG": " 0.25 "},
        {"OTEL_PROPAGATORS": "tracecontext, baggage"},
        {"OTEL_EXPORTER_OTLP_HEADERS": "api-key=abc%20def, x-tenant = a b"},
        {"OTEL_BSP_MAX_QUEUE_SIZE": "4096", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4096"},
        {"SENTRY_DSN": "HTTPS://key:secret@sentry.example.com:9000/sentry/42?x=1#y"},
    ],
)
def test_what_the_libraries_accept_is_no_problem(environ: dict[str, str]) -> None:
    """No false alarm: values the libraries read correctly pass (with or without an endpoint)."""
    assert problems(ENDPOINT | environ) == []


def test_a_tracing_variable_without_an_endpoint_is_a_problem() -> None:
    """A sampler without an endpoint asks for traces that would never be sent: said, not ignored."""
    assert details({"OTEL_TRACES_SAMPLER": "always_on"}) == [
        "OTEL_TRACES_SAMPLER (env OTEL_TRACES_SAMPLER): set, but tracing is off: "
        "no OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT"
    ]
    shared = {"OTEL_SERVICE_NAME": "x", "OTEL_RESOURCE_ATTRIBUTES": "a=b"}  # other tools' too
    assert problems(shared) == []


@pytest.mark.parametrize(
    ("dsn", "expected"),
    [
        ("abc123@o1.ingest.sentry.io/4505", "expected https://<public key>@<host>/<project id>"),
        ("https://o1.ingest.sentry.io/4505", "expected https://<public key>@<host>/<project id>"),
        ("https://abc123@o1.ingest.sentry.io/", "expected a numeric project id"),
        ("https://abc123@o1.ingest.sentry.io/x", "expected a numeric project id"),
    ],
)
def test_a_bad_dsn_is_a_problem_that_never_shows_the_key(dsn: str, expected: str) -> None:
    """A DSN that sentry-sdk would reject names SENTRY_DSN, without echoing its key."""
    [problem] = problems({"SENTRY_DSN": dsn})
    assert problem.key == "SENTRY_DSN"
    assert expected in problem.detail
    assert "abc123" not in problem.detail


def test_an_empty_dsn_is_off_as_sentry_reads_it() -> None:
    """SENTRY_DSN= is Sentry's own way to turn it off: no problem, no reports."""
    assert not sentry_on({"SENTRY_DSN": ""})
    assert problems({"SENTRY_DSN": ""}) == []
    assert problems({"SENTRY_DSN": DSN}) == []


def test_an_integration_asked_for_but_not_installed_is_a_problem(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without the extra, the variable that asked for it is named with how to install it."""
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)  # find_spec: not found
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk", None)
    assert details(ENDPOINT | {"SENTRY_DSN": DSN}) == [
        "OTEL_EXPORTER_OTLP_ENDPOINT (env OTEL_EXPORTER_OTLP_ENDPOINT): tracing needs the otel "
        "extra: pip install '.[otel]', or build the image with --build-arg EXTRAS=otel",
        "SENTRY_DSN (env SENTRY_DSN): error reports need the sentry extra: "
        "pip install '.[sentry]', or build the image with --build-arg EXTRAS=sentry",
    ]


def test_the_problems_come_with_every_other_setting_problem() -> None:
    """load_settings raises one ConfigError holding the APP_* and the OTEL_* problems."""
    with pytest.raises(ConfigError) as caught:
        load_settings({"APP_CONFIG_PATH": "/dev/null", "APP_LOG_LEVEL": "LOUD", "SENTRY_DSN": "x"})
    assert [p.key for p in caught.value.problems] == ["log_level", "SENTRY_DSN"]


@pytest.mark.stack
def test_app_entrypoint_exits_78_naming_the_variable(tmp_path: Path) -> None:
    """A bad sampler stops the container before anything starts: 78, one config_invalid line."""
    env = base_env(tmp_path / "run", free_port()) | ENDPOINT | {"OTEL_TRACES_SAMPLER": "sometimes"}
    result = run_command([str(BIN / "app-entrypoint")], env)
    assert result.returncode == 78
    [line] = result.stdout.splitlines()
    record = json.loads(line)
    assert record["event"] == "config_invalid"
    assert record["problems"] == [
        "OTEL_TRACES_SAMPLER (env OTEL_TRACES_SAMPLER): expected one of always_on, always_off, "
        "traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio, "
        "got 'sometimes'"
    ]


# A worker that says which of the integrations' modules its process has loaded.
REPORTER = """
import sys
def run_once(ctx):
    names = {m.split(".")[0] for m in sys.modules}
    loaded = sorted(names & {"opentelemetry", "sentry_sdk"})
    ctx.log.info("modules", extra={"event": "modules", "loaded": loaded})
    ctx.stop._handle(15, None)
"""


@pytest.mark.stack
@pytest.mark.parametrize(
    ("extra_env", "expected"),
    [
        ({}, []),
        ({"SENTRY_DSN": "http://k@127.0.0.1:9/1"}, ["sentry_sdk"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}, ["opentelemetry"]),
    ],
)
def test_an_integration_is_imported_only_when_configured(
    tmp_path: Path, extra_env: dict[str, str], expected: list[str]
) -> None:
    """Installed but not configured: a worker imports neither library (no memory, no time)."""
    from tests.conftest import write_worker

    env = base_env(tmp_path / "run", free_port()) | extra_env
    env |= write_worker(tmp_path / "pkgs", "reporter", REPORTER)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(tmp_path)
    result = run_module("reporter", env)
    assert result.returncode == 0, result.stdout + result.stderr
    [record] = [json.loads(x) for x in result.stdout.splitlines() if '"modules"' in x]
    assert record["loaded"] == expected
