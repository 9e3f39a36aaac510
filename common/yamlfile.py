"""Read the YAML config file into ``{key: (value, line)}`` with PyYAML's safe loader.

Only safe tags are constructed (``!!python/object`` is refused); anchors and
aliases work; a duplicate top-level key is an error rather than "last one wins";
an empty file (or one holding only comments) means "no settings".
"""

from __future__ import annotations

from pathlib import Path

from common.config import Problem

FileValues = dict[str, tuple[object, int]]
PATH_KEY = "APP_CONFIG_PATH"
FILE_KEY = "config file"  # the Problem key for what is wrong with the file itself


def read_config_file(
    path: Path, explicit: bool, max_bytes: int
) -> tuple[FileValues, list[Problem]]:
    """Return the file's top-level settings and the problems found reading it.

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
            return {}, [Problem(PATH_KEY, f"env {PATH_KEY}", f"file {path} does not exist")]
        return {}, []
    except OSError as exc:
        return {}, [Problem(FILE_KEY, source, f"cannot read the file: {exc.strerror}")]
    if len(data) > max_bytes:
        return {}, [Problem(FILE_KEY, source, f"file is larger than {max_bytes} bytes")]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return {}, [Problem(FILE_KEY, source, f"not UTF-8 at byte {exc.start}")]

    import yaml  # here, so that programs without a config file never import PyYAML

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return {}, []
        if not isinstance(node, yaml.MappingNode):
            line = node.start_mark.line + 1
            return {}, [
                Problem(FILE_KEY, f"{path} line {line}", "expected a mapping of key: value")
            ]
        loader.flatten_mapping(node)  # resolve merge keys (<<: *anchor)
        values: FileValues = {}
        problems: list[Problem] = []
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            key = loader.construct_object(key_node, deep=True)
            if not isinstance(key, str):
                problems.append(Problem(repr(key), f"{path} line {line}", "keys must be strings"))
            elif key in values:
                first = values[key][1]
                problems.append(
                    Problem(key, f"{path} line {line}", f"duplicate key (first on line {first})")
                )
            else:
                values[key] = (loader.construct_object(value_node, deep=True), line)
        return values, problems
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path} line {mark.line + 1} column {mark.column + 1}" if mark else str(path)
        return {}, [Problem(FILE_KEY, where, f"invalid YAML: {exc.problem}")]
    except yaml.YAMLError as exc:
        return {}, [Problem(FILE_KEY, source, f"invalid YAML: {exc}")]
    finally:
        loader.dispose()
