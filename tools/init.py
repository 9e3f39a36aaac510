"""Make a fresh copy of the template your own project: ``make init NAME=price-feed``.

What the template's checklist asked you to change by hand, in one step:

- ``NAME``: the project (pyproject.toml, the image, the Compose project, every
  Kubernetes object and label, the Grafana dashboard, the alert group, the
  README's commands) and the default ``service_name``, the ``service`` key of
  every log line. Lowercase letters, digits and single hyphens, at most 40
  characters: Kubernetes names a Deployment ``NAME-<worker>`` (63 at most).
  Not ``app`` nor ``app-...``: a Kubernetes service link would then inject
  ``APP_*`` variables, which are settings here.
- ``DESCRIPTION``: pyproject.toml's description and the image's description label.
- ``AUTHOR``: pyproject.toml's authors and the LICENSE's copyright holder
  (the license stays MIT; replace LICENSE itself for another one). Both are
  plain printable text: no quotes, backslashes or ``$``.
- ``PORT``: the metrics port (8000) everywhere it is written: the default,
  the Dockerfile, Compose, Kubernetes, Prometheus' configuration, the tests.
  1024..65535, not a port Compose already publishes (Prometheus, Grafana).

Every value and every edit is checked before any file is written; the new
files are staged beside the old ones and then moved into place. A bad value, a
working tree with uncommitted changes, a copy already initialised or a file
whose anchor an edit needs is named, and nothing changes. Once done, the copy
no longer carries this bootstrap: this script, its test and the blocks marked
``make init`` in the Makefile, ``.ci/run``, the README and docs/operations.md are removed. Exit 0
done, 2 bad input or nothing to do. Standard library only (Python 3.9+): it runs
before anything is installed. ``make init`` passes its variables as
``INIT_NAME``... in the environment; ``--name``... work too.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "supervised-service-template"  # the distribution, the image, the license holder
SERVICE = "supervised-service"  # Kubernetes objects, Compose project, dashboard, alerts
NAMES = re.compile(r"supervised-service(-template)?")  # both, in one pass
PORT = "8000"
PORT_PATTERN = re.compile(r"[1-9][0-9]{3,4}")  # ASCII digits, no leading zero
NAME_PATTERN = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")
NAME_MAX = 40
KEYS = ("name", "description", "author", "port")
LOCKS = (
    "requirements.lock",
    "requirements-otel.lock",
    "requirements-sentry.lock",
    "requirements-dev.lock",
)
BOOTSTRAP = ("tools/init.py", "tests/test_init.py")  # removed once the copy is initialised
BLOCKS = ("Makefile", ".ci/run", "README.md", "docs/operations.md")  # one block each, marked
BLOCK_START, BLOCK_END = "--- make init", "--- end of make init ---"

# (file, what the template has, what it becomes): each must be found exactly once.
Edit = tuple[str, str, Callable[[argparse.Namespace], str]]
SERVICE_NAME_EDITS: list[Edit] = [
    ("common/config.py", 'service_name: Annotated[str, conv.name] = "app"',
     lambda a: f'service_name: Annotated[str, conv.name] = "{a.name}"'),
    ("config.yml.example", "# service_name: app ",
     lambda a: f"# service_name: {a.name} "),
    ("README.md", "| `service_name` | `APP_SERVICE_NAME` | `app` |",
     lambda a: f"| `service_name` | `APP_SERVICE_NAME` | `{a.name}` |"),
    ("tests/test_worker.py", '"settings: service_name=app, "',
     lambda a: f'"settings: service_name={a.name}, "'),
    ("Makefile", ".PHONY: init ", lambda a: ".PHONY: "),  # the target goes with its block
    ('pyproject.toml', '"tests", "bench", "tools"]', lambda a: '"tests", "bench"]'),  # mypy's files
    # The service name of the lines written before the settings are loaded:
    ("common/logs.py", '    service: str = "app",', lambda a: f'    service: str = "{a.name}",'),
    ("entrypoint/supervisord.py", 'identity.get("service", "app")',
     lambda a: f'identity.get("service", "{a.name}")'),
    ("deploy/grafana/dashboards/app.json", '"title": "Supervised service",',
     lambda a: f'"title": "{a.name}",'),
]  # fmt: skip


class InitError(Exception):
    """A bad value or a template that does not have what an edit expects."""


def tracked_text_files(root: Path) -> dict[Path, str]:
    """Each UTF-8 text file of the repository (tracked, or new and not ignored): its text."""
    run = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=root, capture_output=True, check=False,
    )  # fmt: skip
    if run.returncode != 0:  # .gitignore says what is yours to edit: git must read it
        raise InitError(
            f"{root} is not a git checkout: git init && git add -A && git commit -m template,"
            " then make init again"
        )
    listed = run.stdout.split(b"\0")
    if b"pyproject.toml" not in listed and (root / "pyproject.toml").exists():
        raise InitError(
            f"git does not list {root}/pyproject.toml: is this directory ignored by the "
            ".gitignore of a repository around it? (git init here, then make init again)"
        )
    head = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=root,
                          capture_output=True, check=False)  # fmt: skip
    if head.returncode == 0:  # a clone: every change must be yours to review in git diff
        status = subprocess.run(["git", "status", "--porcelain"], cwd=root,
                                capture_output=True, text=True, check=True)  # fmt: skip
        if status.stdout.strip():
            raise InitError("the working tree has uncommitted changes: commit or stash them")
    texts = {}
    for name in filter(None, listed):
        path = root / name.decode()
        if path.is_file() and name.decode() not in BOOTSTRAP:
            try:
                texts[path] = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
    return texts


def check(args: argparse.Namespace) -> None:
    """Raise :class:`InitError` naming the first bad value."""
    if not NAME_PATTERN.fullmatch(args.name) or len(args.name) > NAME_MAX:
        raise InitError(
            f"NAME={args.name!r}: expected lowercase letters, digits and single hyphens, "
            f"starting with a letter, at most {NAME_MAX} characters (e.g. price-feed)"
        )
    if NAMES.search(args.name):
        raise InitError(f"NAME={args.name!r} holds the template's own name: choose yours")
    if args.name == "app" or args.name.startswith("app-"):
        raise InitError(
            f"NAME={args.name!r}: not app or app-...: a Kubernetes service link would "
            "inject APP_* variables, which are read as settings"
        )
    for key in ("description", "author"):
        value = getattr(args, key)
        if value is not None and (
            not value.strip() or not value.isprintable() or re.search(r'["\\$]', value)
        ):
            raise InitError(
                f"{key.upper()}={value!r}: expected printable text without quotes, backslashes or $"
            )
    if args.port is not None:
        taken = set(re.findall(r'"127\.0\.0\.1:(\d+):', compose_text(args.root))) - {PORT}
        if not PORT_PATTERN.fullmatch(args.port) or not 1024 <= int(args.port) <= 65535:
            raise InitError(
                f"PORT={args.port!r}: expected a port in 1024..65535 (the image runs as a "
                "non-root user: no port below 1024)"
            )
        if args.port == PORT or args.port in taken:
            raise InitError(
                f"PORT={args.port!r}: expected a port other than {PORT} (the template's) and "
                f"{', '.join(sorted(taken))} (docker-compose.yml publishes them)"
            )


def compose_text(root: Path) -> str:
    """docker-compose.yml's text ("" if there is none)."""
    path = root / "docker-compose.yml"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def replace_once(text: str, old: str, new: str, where: str) -> str:
    """``text`` with its one ``old`` replaced; :class:`InitError` if it has none or several."""
    count = text.count(old)
    if count != 1:
        found = "not found" if count == 0 else f"found {count} times"
        raise InitError(f"{where}: {old!r} {found}: is this a fresh copy of the template?")
    return text.replace(old, new)


def without_block(text: str, where: str) -> str:
    """``text`` less its one ``make init`` block: the lines from its start to its end marker."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if BLOCK_START in line]
    ends = [i for i, line in enumerate(lines) if BLOCK_END in line]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise InitError(f"{where}: no single '{BLOCK_START} ... {BLOCK_END}' block")
    start, after = starts[0], ends[0] + 1
    if after < len(lines) and not lines[after].strip() and start > 0:
        after += 1  # the blank line that followed the block
    elif after == len(lines) and start > 0 and not lines[start - 1].strip():
        start -= 1  # the block ended the file: so does the line before it now
    return "".join(lines[:start] + lines[after:])


def plan(root: Path, args: argparse.Namespace) -> dict[Path, str]:
    """The new text of every file that changes; nothing is written here."""
    texts = tracked_text_files(root)
    new = dict(texts)
    pyproject = root / "pyproject.toml"
    if f'name = "{PROJECT}"' not in texts.get(pyproject, ""):
        raise InitError(
            f'pyproject.toml has no name = "{PROJECT}": this copy was initialised already'
        )
    for file, old, make in SERVICE_NAME_EDITS:
        path = root / file
        new[path] = replace_once(new[path], old, make(args), file)
    for file in BLOCKS:
        new[root / file] = without_block(new[root / file], file)
    for path, text in new.items():  # the port first: a NAME may hold digits
        renamed = text
        if args.port is not None and path.name not in LOCKS:
            renamed = re.sub(rf"\b{PORT}\b", args.port, renamed)
        new[path] = NAMES.sub(args.name, renamed)
    if args.description is not None:
        new[pyproject] = re.sub(
            r'^description = ".*"$', f'description = "{args.description}"', new[pyproject],
            count=1, flags=re.MULTILINE,
        )  # fmt: skip
        dockerfile = root / "Dockerfile"
        new[dockerfile] = re.sub(
            r'org\.opencontainers\.image\.description="[^"]*"',
            f'org.opencontainers.image.description="{args.description}"', new[dockerfile],
        )  # fmt: skip
    if args.author is not None:
        new[pyproject] = replace_once(
            new[pyproject], 'readme = "README.md"\n',
            f'readme = "README.md"\nauthors = [{{ name = "{args.author}" }}]\n', "pyproject.toml",
        )  # fmt: skip
        license_file = root / "LICENSE"
        year = time.gmtime().tm_year
        new[license_file] = re.sub(
            r"^Copyright \(c\) .*$", f"Copyright (c) {year} {args.author}",
            new[license_file], count=1, flags=re.MULTILINE,
        )  # fmt: skip
    return {path: text for path, text in new.items() if text != texts[path]}


def write_all(changes: dict[Path, str]) -> None:
    """Stage every new text beside its file, then move each into place.

    An error while staging (a full disk, a read-only file) removes what was staged
    and raises :class:`OSError`: no file has changed then.
    """
    staged: list[tuple[Path, Path]] = []
    try:
        for path, text in changes.items():
            temp = path.with_name(f".{path.name}.init")
            temp.write_text(text, encoding="utf-8")
            temp.chmod(path.stat().st_mode)
            staged.append((temp, path))
            if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
                raise PermissionError(13, "Permission denied", str(path))
    except OSError:
        for temp, _ in staged:
            with contextlib.suppress(OSError):
                temp.unlink()
        raise
    for temp, path in staged:
        os.replace(temp, path)


def main(argv: list[str] | None = None) -> int:
    """Check every value and every edit, then write the changed files; the exit code."""
    parser = argparse.ArgumentParser(prog="make init", description=__doc__.split("\n\n")[0])
    given = {k: os.environ.get(f"INIT_{k.upper()}") or None for k in KEYS}
    parser.add_argument("--name", default=given["name"] or "")
    parser.add_argument("--description", default=given["description"])
    parser.add_argument("--author", default=given["author"])
    parser.add_argument("--port", default=given["port"])
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        check(args)
        changes = plan(args.root, args)
    except InitError as exc:
        print(f"make init: {exc}; nothing changed", file=sys.stderr)
        return 2
    try:
        write_all(changes)
    except OSError as exc:
        print(f"make init: cannot write {exc.filename}: {exc.strerror}; nothing changed",
              file=sys.stderr)  # fmt: skip
        return 2
    for file in BOOTSTRAP:
        (args.root / file).unlink(missing_ok=True)
    print(f"make init: {args.name}: {len(changes)} files changed")
    for path in sorted(changes):
        print(f"  {path.relative_to(args.root)}")
    print(f"  removed: {', '.join(BOOTSTRAP)} (and the make init target)")
    print("next: review with `git diff`, commit, then `make test`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
