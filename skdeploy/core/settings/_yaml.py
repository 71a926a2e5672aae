"""Reading settings files anyone can change in a pull request: bounded, alias-free YAML.

Every problem is added to a list rather than raised, so that :func:`.stack_file.read_stack_config`
reports the problems of Pulumi.yaml and the stack file at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import yaml

#: Largest Pulumi.yaml or stack file read: settings are a few kilobytes; more is refused unread.
MAX_SETTINGS_FILE_BYTES: Final = 1024 * 1024
#: Deepest nesting of YAML collections accepted (the deepest real setting nests 3 levels).
MAX_YAML_DEPTH: Final = 32


class _YamlRefused(yaml.YAMLError):
    """A construct the settings files do not accept (an alias, too deep a nesting)."""


class _SettingsLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with bounds, for files anyone can change in a pull request.

    - Aliases (``*name``, including ``<<: *name``) are refused: a few lines of nested aliases
      expand into billions of values ("billion laughs") the moment anything walks them, and no
      setting needs them.
    - Collections nest at most :data:`MAX_YAML_DEPTH` deep (the composer recurses per level).
    - Duplicate keys of a mapping, at any level, are recorded with both lines instead of the
      last one silently winning (Pulumi's own YAML reader refuses them too).
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()  # type: ignore[no-untyped-call]
            raise _YamlRefused(
                f"line {event.start_mark.line + 1}: YAML aliases are not accepted "
                f"(*{event.anchor}); write the value out"
            )
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _YamlRefused(
                    f"line {mark.line + 1}: values are nested deeper than {MAX_YAML_DEPTH} levels"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[object, int] = {}
        for key_node, _value in node.value:
            if (
                not isinstance(key_node, yaml.ScalarNode)
                or key_node.tag == "tag:yaml.org,2002:merge"
            ):
                continue
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            try:
                if key in first_line:
                    self.duplicates.append(
                        f"duplicate key {key!r} on lines {first_line[key]} and {line}"
                    )
                else:
                    first_line[key] = line
            except TypeError:  # unhashable: the base class refuses it with its own message
                continue
        return super().construct_mapping(node, deep)


def load_yaml(path: Path, problems: list[str]) -> dict[str, Any]:
    """A settings file as a mapping; on any problem, add it to ``problems`` and return {}."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SETTINGS_FILE_BYTES + 1)
    except OSError as exc:
        problems.append(f"{path} cannot be read: {exc.strerror or exc}")
        return {}
    if len(data) > MAX_SETTINGS_FILE_BYTES:
        problems.append(
            f"{path} is larger than {MAX_SETTINGS_FILE_BYTES // 1024**2} MiB: "
            "not a settings file; refused unread"
        )
        return {}
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(f"{path} is not UTF-8 text (byte {exc.start})")
        return {}
    loader = _SettingsLoader(text)
    try:
        loaded = loader.get_single_data()
    except _YamlRefused as exc:
        problems.append(f"{path}: {exc}")
        return {}
    except yaml.YAMLError as exc:
        problems.append(f"{path} is not valid YAML: {exc}")
        return {}
    finally:
        loader.dispose()
    if loader.duplicates:
        problems.extend(f"{path}: {d}; keep one" for d in loader.duplicates)
        return {}
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        problems.append(f"{path} must be a mapping with a config: section, not {kind(loaded)}")
        return {}
    return loaded


def kind(value: object) -> str:
    """``a list``, ``a string``, ... for messages about a value of the wrong shape."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return f"a {type(value).__name__}"
