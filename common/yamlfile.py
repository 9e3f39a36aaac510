"""Read the YAML config file into ``{key: (value, line)}`` with PyYAML's safe loader.

Only safe tags are constructed (``!!python/object`` is refused); anchors, aliases
and merge keys work; a duplicate key is an error rather than "last one wins";
an empty file (or one holding only comments) means "no settings". The
``programs:`` key holds one mapping per program (``programs: {sync_worker:
{url: ...}}``), read the same way. A value PyYAML cannot construct (an unknown
tag, ``!!int abc``) is a problem naming its key path, line and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.config import Problem

FileValues = dict[str, tuple[object, int]]
PATH_KEY = "APP_CONFIG_PATH"
FILE_KEY = "config file"  # the Problem key for what is wrong with the file itself
PROGRAMS_KEY = "programs"


@dataclass
class ConfigFile:
    """What the file holds: top-level settings, each program's section, the problems found.

    ``programs`` maps a program name to ``(its settings, the line of its name)``.
    """

    values: FileValues = field(default_factory=dict)
    programs: dict[str, tuple[FileValues, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)


def read_config_file(path: Path, explicit: bool, max_bytes: int) -> ConfigFile:
    """Return the file's settings and the problems found reading it.

    ``explicit`` says the path was named by ``APP_CONFIG_PATH``: then a missing
    file is a problem; the default path may be absent. Files over ``max_bytes``
    bytes are refused.
    """
    source = str(path)
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        if explicit:
            return _failed(PATH_KEY, f"env {PATH_KEY}", f"file {path} does not exist")
        return ConfigFile()
    except OSError as exc:
        return _failed(FILE_KEY, source, f"cannot read the file: {exc.strerror}")
    if len(data) > max_bytes:
        return _failed(FILE_KEY, source, f"file is larger than {max_bytes} bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return _failed(FILE_KEY, source, f"not UTF-8 at byte {exc.start}")

    import yaml  # here, so that programs without a config file never import PyYAML

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        result = ConfigFile()
        if node is None:
            return result
        reader = _Reader(loader, path, result.problems)
        result.values = reader.mapping(node, "")
        section = result.values.pop(PROGRAMS_KEY, None)
        if section is not None:
            result.programs = reader.sections(section)
        return result
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path} line {mark.line + 1} column {mark.column + 1}" if mark else source
        return _failed(FILE_KEY, where, f"invalid YAML: {exc.problem}")
    except yaml.YAMLError as exc:
        return _failed(FILE_KEY, source, f"invalid YAML: {exc}")
    except RecursionError:
        return _failed(FILE_KEY, source, "invalid YAML: nested too deeply")
    finally:
        loader.dispose()


def _failed(key: str, source: str, detail: str) -> ConfigFile:
    return ConfigFile(problems=[Problem(key, source, detail)])


class _Reader:
    """Constructs one mapping level at a time, so that each problem knows its key path."""

    def __init__(self, loader: Any, path: Path, problems: list[Problem]) -> None:
        self.loader, self.path, self.problems = loader, path, problems

    def _where(self, node: Any, column: bool = False) -> str:
        mark = node.start_mark
        where = f"{self.path} line {mark.line + 1}"
        return f"{where} column {mark.column + 1}" if column else where

    def mapping(self, node: Any, prefix: str, raw: bool = False) -> FileValues:
        """``{key: (value, line)}`` of a mapping node (``raw``: values stay nodes).

        At the top level (``prefix`` ""), the value of ``programs`` stays a node.
        A value that cannot be constructed is left out (its problem is recorded).
        """
        import yaml

        if not isinstance(node, yaml.MappingNode):
            where = prefix.rstrip(".") or FILE_KEY
            self.problems.append(
                Problem(where, self._where(node), "expected a mapping of key: value")
            )
            return {}
        explicit = sum(1 for key_node, _ in node.value if key_node.tag != _MERGE_TAG)
        self.loader.flatten_mapping(node)  # resolve merge keys (<<: *anchor): merged pairs first
        merged = len(node.value) - explicit
        values: FileValues = {}
        explicit_lines: dict[str, int] = {}  # a merged pair is overridden by an explicit one
        for index, (key_node, value_node) in enumerate(node.value):
            line = key_node.start_mark.line + 1
            key: object = self.construct(key_node, prefix + "<key>")
            if key is _INVALID:
                continue
            if not isinstance(key, str):
                self.problems.append(
                    Problem(prefix + repr(key), self._where(key_node), "keys must be strings")
                )
                continue
            if index >= merged:
                if key in explicit_lines:
                    detail = f"duplicate key (first on line {explicit_lines[key]})"
                    self.problems.append(Problem(prefix + key, self._where(key_node), detail))
                    continue
                explicit_lines[key] = line
            if raw or (not prefix and key == PROGRAMS_KEY):
                values[key] = (value_node, line)
            else:
                value = self.construct(value_node, prefix + key)
                if value is not _INVALID:
                    values[key] = (value, line)
        return values

    def sections(self, entry: tuple[object, int]) -> dict[str, tuple[FileValues, int]]:
        """``programs:`` as ``{program: (its settings, line of its name)}``."""
        return {
            name: (self.mapping(section, f"{PROGRAMS_KEY}.{name}."), line)
            for name, (section, line) in self.mapping(entry[0], PROGRAMS_KEY + ".", True).items()
        }

    def construct(self, node: Any, key_path: str) -> object:
        """The Python value of ``node``; one that cannot be constructed is a problem."""
        import yaml

        try:
            return self.loader.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError as exc:
            detail = f"invalid YAML value: {exc.problem}"
        except RecursionError:
            detail = "invalid YAML value: nested too deeply"
        except Exception:  # PyYAML's constructors raise ValueError, KeyError, IndexError...
            # Not the error's text: it may quote the value, and the value may be a secret.
            detail = f"invalid YAML value: it cannot be read as {node.tag.rpartition(':')[2]}"
        self.problems.append(Problem(key_path, self._where(node, column=True), detail))
        return _INVALID


_INVALID = object()  # a value PyYAML could not construct (its problem is recorded)
_MERGE_TAG = "tag:yaml.org,2002:merge"
