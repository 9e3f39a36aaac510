"""The Renovate configuration: every key is one Renovate knows, and it can regenerate our locks.

``make lint`` validates ``.github/renovate.json`` against Renovate's published
schema (check-jsonschema's copy, offline). That schema allows unknown keys, so a
misspelled option would pass it and be ignored by Renovate: the walk below holds
every key to the schema's own ``properties``.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import BIN, ROOT, repository_files

CONFIG = ROOT / ".github" / "renovate.json"
LOCKS = (
    "requirements.lock",
    "requirements-otel.lock",
    "requirements-sentry.lock",
    "requirements-dev.lock",
)

# Renovate 44.121.2, lib/modules/manager/pip-compile/common.ts: the options its
# pip-compile manager accepts in a `uv pip compile` header; any other option makes
# it skip the lock ("Option ... not supported (yet)"). Options with an argument
# must be written `--option=value`.
RENOVATE_UV_FLAGS = {"-v", "--generate-hashes", "--emit-index-url", "--all-extras",
                     "--no-strip-extras", "--universal"}  # fmt: skip
RENOVATE_UV_OPTIONS = {"--index-url", "--output-file", "--extra", "--extra-index-url",
                       "--constraints", "--constraint", "--python-version",
                       "--no-emit-package", "--prerelease", "--format", "--resolution",
                       "--fork-strategy", "--exclude-newer", "--exclude-newer-package",
                       "--group", "--override", "--overrides"}  # fmt: skip


def renovate_schema() -> dict[str, Any]:
    """check-jsonschema's vendored copy of Renovate's published JSON schema."""
    import check_jsonschema  # type: ignore[import-untyped]

    path = Path(check_jsonschema.__file__).parent / "builtin_schemas/vendor/renovate.json"
    schema: dict[str, Any] = json.loads(path.read_text())
    return schema


def unknown_keys(value: Any, node: dict[str, Any], schema: dict[str, Any], at: str) -> list[str]:
    """Paths of the keys in ``value`` that ``node`` (a schema object) does not declare."""
    parts, items = [node], None
    properties: dict[str, Any] = {}
    while parts:  # the node, its allOf parts and $ref targets ("#": the whole config's options)
        part = parts.pop()
        if "$ref" in part:
            ref = part["$ref"]
            parts.append(schema if ref == "#" else schema["definitions"][ref.rpartition("/")[2]])
        parts += part.get("allOf", [])
        properties = {**part.get("properties", {}), **properties}
        items = items or part.get("items")
    if isinstance(value, list):
        if not isinstance(items, dict):
            return []
        return [
            key for i, v in enumerate(value) for key in unknown_keys(v, items, schema, f"{at}[{i}]")
        ]
    if not isinstance(value, dict) or not properties:
        return []  # a free-form object (constraints, for example)
    found = []
    for key, child in value.items():
        if key == "$schema":
            continue
        if key not in properties:
            found.append(f"{at}.{key}")
        else:
            found += unknown_keys(child, properties[key], schema, f"{at}.{key}")
    return found


def test_every_key_is_an_option_renovate_knows() -> None:
    """No misspelled option: the schema allows unknown keys, Renovate would ignore one."""
    schema = renovate_schema()
    assert unknown_keys(json.loads(CONFIG.read_text()), schema, schema, "$") == []


def test_the_key_walk_finds_a_misspelled_option() -> None:
    """The walk above catches a typo at the top, in a package rule and in a manager's object."""
    schema = renovate_schema()
    config = {
        "minimumReleaseAgee": "7 days",
        "packageRules": [{"matchPackageName": ["x"]}],
        "pip-compile": {"managerFilePattern": ["/x/"]},
    }
    found = unknown_keys(config, schema, schema, "$")
    assert found == [
        "$.minimumReleaseAgee",
        "$.packageRules[0].matchPackageName",
        "$.pip-compile.managerFilePattern",
    ]


def test_check_jsonschema_as_make_lint_runs_it_rejects_a_bad_value(tmp_path: Path) -> None:
    """A value of the wrong type fails the schema check (the one `make lint` runs)."""
    bad = tmp_path / "renovate.json"
    bad.write_text(json.dumps({"minimumReleaseAge": 7}))
    makefile = (ROOT / "Makefile").read_text()
    assert "check-jsonschema --builtin-schema vendor.renovate .github/renovate.json" in makefile
    run = subprocess.run(
        [BIN / "check-jsonschema", "--builtin-schema", "vendor.renovate", bad],
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1, run.stdout
    assert "minimumReleaseAge" in run.stdout


def header_command(lock: str) -> list[str]:
    """The command in a lock's header (``uv pip compile ...``), as arguments."""
    lines = (ROOT / lock).read_text().splitlines()
    assert lines[0] == "# This file was autogenerated by uv via the following command:", lock
    return shlex.split(lines[1].removeprefix("#"))


@pytest.mark.parametrize("lock", LOCKS)
def test_lock_headers_are_commands_renovate_re_runs(lock: str) -> None:
    """Renovate's pip-compile manager takes every option in the header: it can refresh the lock."""
    argv = header_command(lock)
    assert argv[:3] == ["uv", "pip", "compile"]
    options = [a for a in argv[3:] if a.startswith("-")]
    for option in options:
        name, equals, _value = option.partition("=")
        if equals:
            assert name in RENOVATE_UV_OPTIONS, f"{lock}: Renovate rejects {option}"
        else:
            assert option in RENOVATE_UV_FLAGS, f"{lock}: Renovate rejects {option}"
    assert "--generate-hashes" in options
    assert f"--output-file={lock}" in options
    assert [a for a in argv[3:] if not a.startswith("-")] == ["pyproject.toml"]


def test_make_lock_writes_the_headers_renovate_reads() -> None:
    """`make lock` runs exactly the header commands (less --quiet): both tools make one lock."""
    run = subprocess.run(
        ["make", "-n", "lock"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    commands = [shlex.split(line) for line in run.stdout.splitlines() if " pip compile " in line]
    expected = [header_command(lock) for lock in LOCKS]
    assert [["uv", *[a for a in c[1:] if a != "--quiet"]] for c in commands] == expected


def test_patterns_in_the_config_match_the_files_they_manage() -> None:
    """The lock pattern matches both locks; the custom managers find the Makefile's pins."""
    config = json.loads(CONFIG.read_text())

    def pattern(text: str) -> re.Pattern[str]:
        assert text.startswith("/"), text  # Renovate's regex form: /.../
        assert text.endswith("/"), text
        return re.compile(text[1:-1])

    [lock_pattern] = config["pip-compile"]["managerFilePatterns"]
    assert all(pattern(lock_pattern).search(lock) for lock in LOCKS)
    assert not pattern(lock_pattern).search("requirements.txt")
    versions: dict[str, set[str]] = {}
    for manager in config["customManagers"]:
        [files] = manager["managerFilePatterns"]
        [match] = manager["matchStrings"]
        targets = [
            ROOT / p for p in repository_files() if pattern(files).search(p)
        ]  # as Renovate sees them
        assert targets, f"{files} matches no file"
        for target in targets:
            found = re.search(match.replace("(?<", "(?P<"), target.read_text())
            assert found, f"{match} finds nothing in {target.name}"
            versions.setdefault(manager["depNameTemplate"], set()).add(found["currentValue"])
    assert versions["uv"] == {config["constraints"]["uv"]}, "uv: Makefile and constraints differ"
    assert set(versions) == {"uv", "actionlint"}


def pins(lock: str) -> dict[str, str]:
    """``{package: version}`` of a lock (its lines ``name==version``)."""
    found = {}
    for line in (ROOT / lock).read_text().splitlines():
        if "==" in line and not line.startswith((" ", "#")):
            name, _, version = line.split(" ")[0].partition("==")
            found[name.lower()] = version
    return found


def test_a_package_in_several_locks_has_one_pin() -> None:
    """The image installs the runtime lock with each extra's: shared packages must agree."""
    runtime = pins("requirements.lock")
    assert runtime, "no pin found: the lock format changed"
    seen: dict[str, tuple[str, str]] = {}
    for lock in LOCKS:
        locked = pins(lock)
        assert runtime.items() <= locked.items(), f"{lock} pins the runtime differently"
        for name, version in locked.items():
            first = seen.setdefault(name, (lock, version))
            assert first[1] == version, f"{name}: {first[1]} in {first[0]}, {version} in {lock}"
