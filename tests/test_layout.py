"""Whose code is whose: worker code uses only the public API of ``common``."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from common.supervisord_conf import read_conf, worker_packages
from tests.conftest import ROOT

PUBLIC = ("common.worker", "common.settings", "common.program")


def worker_files() -> list[Path]:
    """Every .py file of the worker packages of supervisord.conf and of the test workers."""
    folders = [
        ROOT.joinpath(*package.split("."))
        for package in worker_packages(read_conf(ROOT / "supervisord.conf")).values()
        if package
    ]
    folders.append(ROOT / "tests" / "fixtures")
    return sorted(path for folder in folders for path in folder.rglob("*.py"))


def test_public_modules_export_names_that_exist() -> None:
    """Each public module has an __all__, and every name in it is defined there."""
    for name in PUBLIC:
        module = importlib.import_module(name)
        exported = module.__all__
        assert exported, name
        assert all(hasattr(module, item) for item in exported), name


def test_worker_code_imports_only_the_public_api() -> None:
    """Shipped and test workers import from common only names in a public module's __all__."""
    files = worker_files()
    assert len(files) >= 6, files  # both workers and the fixtures were found
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
                assert not [n for n in names if n.startswith("common")], f"{path}: import {names}"
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("common"):
                assert node.module in PUBLIC, f"{path}: from {node.module} import ..."
                exported = importlib.import_module(node.module).__all__
                for alias in node.names:
                    assert alias.name in exported, f"{path}: {alias.name} is not in {node.module}"
