"""YAML loading that remembers where every key and value came from.

PyYAML's SafeLoader builds plain dicts and lists; ours builds `LocDict`/`LocList`
carrying the source marks, so a validation error deep in a job list can still name
file, line and column. Anchors and merge keys (`<<: *defaults`) work as in YAML 1.1;
`${VAR}` and `${VAR:-default}` in strings are read from the environment."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from xfer.errors import SpecError
from xfer.yamlscalar import Mark, Span, expand_env


def _mark(mark: yaml.Mark) -> Mark:
    return Mark(mark.line + 1, mark.column + 1)


def _span(node: yaml.Node) -> Span | None:
    """Where a scalar node's text is (None for a mapping or sequence)."""
    if not isinstance(node, yaml.ScalarNode):
        return None
    return Span(node.start_mark.index, node.end_mark.index, node.style)


class LocDict(dict):
    """A mapping with the marks of its own start, of each key and of each value, and
    the spans of its scalar values."""

    mark: Mark
    key_marks: dict[Any, Mark]
    value_marks: dict[Any, Mark]
    value_spans: dict[Any, Span | None]


class LocList(list):
    """A sequence with the marks of its start and of each item, and the spans of its
    scalar items."""

    mark: Mark
    item_marks: list[Mark]
    item_spans: list[Span | None]


class _LocatingLoader(yaml.SafeLoader):
    source = "<string>"
    env_used: set[str] | None = None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:  # type: ignore[override]
        self._reject_duplicate_keys(node)
        self.flatten_mapping(node)
        result = LocDict()
        result.mark = _mark(node.start_mark)
        result.key_marks, result.value_marks, result.value_spans = {}, {}, {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)) and key is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a plain value", key_node.start_mark
                )
            result[key] = self.construct_object(value_node, deep=True)
            result.key_marks[key] = _mark(key_node.start_mark)
            result.value_marks[key] = _mark(value_node.start_mark)
            result.value_spans[key] = _span(value_node)
        return result

    def _reject_duplicate_keys(self, node: yaml.MappingNode) -> None:
        """A key written twice in one mapping is a typo, not an override (merges are)."""
        seen: set[str] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if key_node.value in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r}", key_node.start_mark
                    )
                seen.add(key_node.value)

    def construct_sequence(self, node: yaml.SequenceNode, deep: bool = False) -> list:  # type: ignore[override]
        result = LocList(self.construct_object(child, deep=True) for child in node.value)
        result.mark = _mark(node.start_mark)
        result.item_marks = [_mark(child.start_mark) for child in node.value]
        result.item_spans = [_span(child) for child in node.value]
        return result

    def construct_env_str(self, node: yaml.ScalarNode) -> str:
        return expand_env(self.construct_scalar(node), _mark(node.start_mark), self.source, self.env_used)


def _construct_map(loader: _LocatingLoader, node: yaml.MappingNode) -> LocDict:
    return loader.construct_mapping(node)


def _construct_seq(loader: _LocatingLoader, node: yaml.SequenceNode) -> LocList:
    return loader.construct_sequence(node)


_LocatingLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_LocatingLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)
_LocatingLoader.add_constructor("tag:yaml.org,2002:str", _LocatingLoader.construct_env_str)


def load_yaml(text: str, source: str, env_used: set[str] | None = None) -> Any:
    """Parse YAML text; syntax errors become a SpecError naming source:line:col.
    The names of the environment variables read are added to `env_used`."""
    loader = None
    try:
        loader = _LocatingLoader(text)  # the reader checks characters here already
        loader.source = source
        loader.env_used = env_used
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(f"{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: invalid YAML: {' '.join(str(exc).split())}") from None
    except RecursionError:
        raise SpecError(f"{source}: YAML nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def _descend(data: Any, path: tuple[Any, ...]) -> tuple[Any, Mark | None, tuple[Any, ...]]:
    """Follow `path` (a pydantic error location) through loaded data, skipping
    pydantic's own steps (discriminator tags); returns node, best mark, shown path."""
    mark: Mark | None = getattr(data, "mark", None)
    shown: list[Any] = []
    node = data
    for step in path:
        if isinstance(node, Mapping) and step in node:
            mark = getattr(node, "value_marks", {}).get(step, mark)
            node = node[step]
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            marks = getattr(node, "item_marks", None)
            mark = marks[step] if marks else mark
            node = node[step]
        elif isinstance(node, Mapping) and isinstance(step, str) and node.get("kind") == step:
            continue
        else:
            node = None
        shown.append(step)
    return node, mark, tuple(shown)


def locate(data: Any, path: tuple[Any, ...]) -> tuple[Mark | None, tuple[Any, ...]]:
    """The most precise mark for `path` and the path as the user wrote it."""
    _, mark, shown = _descend(data, path)
    return mark, shown


def key_mark(data: Any, path: tuple[Any, ...]) -> Mark | None:
    """The mark of the key at the end of `path` (for 'unknown key' errors)."""
    parent, parent_mark, _ = _descend(data, path[:-1])
    marks = getattr(parent, "key_marks", None)
    return marks.get(path[-1], parent_mark) if marks else parent_mark
