"""README and docs/: links resolve, snippets parse, defaults and the contract match the code.

- Every relative link (a file, a directory, a ``#heading`` of a Markdown
  file, GitHub's anchor rules) resolves.
- Every fenced snippet marked as a language runs through that language's
  parser: ``sh``/``bash`` through ``bash -n``, ``yaml`` through PyYAML,
  ``json`` (a document, or one object per line), ``python`` through
  :func:`ast.parse`. A snippet that is not meant to parse is marked ``text``.
- The README's configuration table has one row per setting, with its
  variable and its real default.
- ``docs/observability.md`` lists every metric and every ``event`` the code
  can write, and nothing the code does not.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from common.config import COMPUTED, Settings, env_name
from tests.conftest import ROOT

DOCS = sorted(
    [ROOT / "README.md", ROOT / "deploy" / "kubernetes" / "README.md", *ROOT.glob("docs/*.md")]
)
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```$", re.M | re.S)
CODE = ("common", "services", "entrypoint", "healthcheck")


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of every heading of a Markdown file (``-1``, ``-2`` for repeats)."""
    found: set[str] = set()
    text = FENCE.sub("", path.read_text())
    for heading in re.findall(r"^#{1,6} (.+)$", text, re.M):
        base = slug(heading)
        name, n = base, 0
        while name in found:
            n += 1
            name = f"{base}-{n}"
        found.add(name)
    return found


def snippets(path: Path) -> list[tuple[str, str, int]]:
    """``(language, code, line)`` of every fenced snippet."""
    text = path.read_text()
    return [(m[1], m[2], text.count("\n", 0, m.start()) + 1) for m in FENCE.finditer(text)]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(doc: Path) -> None:
    """Each relative link names a file or directory that exists, and a heading it has."""
    text = FENCE.sub("", doc.read_text())
    links = LINK.findall(text)
    broken = []
    for target in links:
        if re.match(r"^[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        resolved = (doc.parent / path).resolve() if path else doc
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading with that anchor")
    assert not broken, f"{doc.relative_to(ROOT)}: {broken}"


def test_the_link_checker_sees_links_and_anchors() -> None:
    """The checker finds the README's links to docs/, and GitHub's anchor of a heading."""
    readme = (ROOT / "README.md").read_text()
    assert "docs/observability.md" in LINK.findall(readme)
    assert slug("Prestart: set-up steps before the workers") == (
        "prestart-set-up-steps-before-the-workers"
    )
    assert slug("`make bench`") == "make-bench"


def _parses(language: str, code: str) -> str | None:
    """None if ``code`` parses as ``language``; else the parser's complaint."""
    if language in ("sh", "bash", "shell"):
        result = subprocess.run(
            ["bash", "-n"], input=code, capture_output=True, text=True, check=False, timeout=30
        )
        return result.stderr.strip() or None if result.returncode else None
    try:
        if language in ("yaml", "yml"):
            list(yaml.safe_load_all(code))
        elif language == "json":
            try:
                json.loads(code)
            except json.JSONDecodeError:
                for line in filter(str.strip, code.splitlines()):
                    json.loads(line)
        elif language == "python":
            ast.parse(code)
    except (yaml.YAMLError, ValueError, SyntaxError) as exc:
        return str(exc)
    return None


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_marked_snippet_parses(doc: Path) -> None:
    """Shell, YAML, JSON and Python snippets parse; every snippet names its language."""
    problems = []
    for language, code, line in snippets(doc):
        if not language:
            problems.append(f"line {line}: a snippet without a language (use text)")
        elif complaint := _parses(language, code):
            problems.append(f"line {line} ({language}): {complaint}")
    assert not problems, f"{doc.relative_to(ROOT)}: {problems}"


def test_a_broken_snippet_is_caught() -> None:
    """The parsers do reject what does not parse (the test above can fail)."""
    assert _parses("sh", "if true; then\n") is not None
    assert _parses("yaml", "a: [1, 2\n") is not None
    assert _parses("json", '{"a": 1,}') is not None
    assert _parses("python", "def f(:\n") is not None
    assert _parses("json", '{"a": 1}\n{"b": 2}\n') is None


def config_rows() -> dict[str, list[str]]:
    """``{key: [variable, default, meaning]}`` of the README's configuration table."""
    text = (ROOT / "README.md").read_text()
    table = text[text.index("| key | env var | default | meaning |") :].split("\n\n", 1)[0]
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1:]
    return rows


def shown(value: object) -> str:
    """A default as the README writes it."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if value == ():
        return "none"
    return str(value)


def test_the_configuration_table_is_every_setting_with_its_real_default() -> None:
    """One row per setting, with its APP_ variable; a literal default equals the code's."""
    rows = config_rows()
    fields = {f.name: f for f in dataclasses.fields(Settings) if f.name in rows or f.init}
    keys = [f.name for f in dataclasses.fields(Settings) if f.name not in ("programs", "sources")]
    assert list(rows) == keys, "the table's keys, in order, are the settings'"
    for key, (variable, default, _meaning) in rows.items():
        assert variable == f"`{env_name(key)}`", key
        field = fields[key]
        if field.metadata.get(COMPUTED):
            continue  # derived by the loader: the cell says how
        literal = re.match(r"`([^`]*)`", default)
        written = literal[1] if literal else default
        assert written == shown(field.default), f"{key}: README says {default}"


def code_files() -> list[Path]:
    """The runtime's Python files (its tests left out)."""
    return [
        path
        for package in CODE
        for path in sorted((ROOT / package).rglob("*.py"))
        if not path.name.startswith("test_")
    ]


def code_metrics() -> set[str]:
    """Every metric name the code can write, as Prometheus shows it.

    String literals ``app_...``/``process_...`` in the runtime (the names
    passed to prometheus-client's metric classes and metric families); a
    counter's name (a call whose name says counter) gets ``_total``, an
    info's ``_info``, as the exposition writes them.
    """
    names: set[str] = set()
    for path in code_files():
        source = path.read_text()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and node.args:
                first = node.args[0]
                if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                    continue
                if not re.fullmatch(r"(app|process)_[a-z0-9_]+", first.value):
                    continue
                kind = ast.unparse(node.func).rsplit(".", 1)[-1].lower()
                suffix = "_total" if "counter" in kind else "_info" if "info" in kind else ""
                names.add(first.value + suffix)
    return names


def documented_metrics() -> set[str]:
    """The metric names in the first column of docs/observability.md's metric tables."""
    text = (ROOT / "docs" / "observability.md").read_text()
    section = text[text.index("\n## Metrics") : text.index("\n## Health and readiness")]
    return set(re.findall(r"^\| `((?:app|process)_[a-z0-9_]+)", section, re.M))


def test_every_metric_is_documented_and_every_documented_metric_exists() -> None:
    """docs/observability.md's metrics are exactly those the code can write."""
    code, docs = code_metrics(), documented_metrics()
    assert "app_iterations_total" in code, "the metric finder is broken"
    assert "process_cpu_seconds_total" in code
    assert "app_build_info" in code
    assert not code - docs, f"not documented: {sorted(code - docs)}"
    assert not docs - code, f"documented, not in the code: {sorted(docs - code)}"


def runtime_files() -> list[Path]:
    """:func:`code_files` less the workers': a worker's own events are its own."""
    workers = {path.parent for path in (ROOT / "services").glob("*/worker.py")}
    return [path for path in code_files() if path.parent not in workers]


def code_events() -> set[str]:
    """Every ``event`` value the runtime writes (your workers' own events left out).

    ``extra={"event": "..."}``, ``event="..."`` keyword arguments, the
    lifecycle constants of :mod:`common.logs`, and the watchdog's kinds.
    """
    from common import logs
    from services.event_listener.listener import WATCHDOG_MESSAGES

    events = {
        value
        for name, value in vars(logs).items()
        if name.isupper() and isinstance(value, str) and name != "FIXED_KEYS"
    }
    events |= set(WATCHDOG_MESSAGES)
    for path in runtime_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values, strict=True):
                    if _is_str(key, "event") and isinstance(value, ast.Constant):
                        events.add(str(value.value))
            elif (
                isinstance(node, ast.keyword)
                and node.arg == "event"
                and isinstance(node.value, ast.Constant)
            ):
                events.add(str(node.value.value))
    return events


def _is_str(node: ast.expr | None, text: str) -> bool:
    return isinstance(node, ast.Constant) and node.value == text


def documented_events() -> set[str]:
    """The events of docs/observability.md's event table (first column, comma-separated)."""
    text = (ROOT / "docs" / "observability.md").read_text()
    section = text[text.index("\n### Events") : text.index("\n### Exit codes")]
    found: set[str] = set()
    for cell in re.findall(r"^\| ((?:`[a-z_]+`(?:, )?)+) \|", section, re.M):
        found |= set(re.findall(r"`([a-z_]+)`", cell))
    return found


def test_every_event_is_documented_and_every_documented_event_exists() -> None:
    """docs/observability.md's events are exactly those the code can write."""
    code, docs = code_events(), documented_events()
    assert {"startup_success", "iteration_failed", "watchdog_restart", "stop_timeout"} <= code
    assert "feed_connected" not in code  # the shipped async_worker's own: yours need no row
    assert not code - docs, f"not documented: {sorted(code - docs)}"
    assert not docs - code, f"documented, not in the code: {sorted(docs - code)}"
