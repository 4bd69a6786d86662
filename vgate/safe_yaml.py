"""YAML for hostile files: PyYAML's safe loader with bounds.

- nesting deeper than ``MAX_DEPTH`` is refused while composing (the composer is recursive);
- aliases are allowed, but the document expanded through them may have at most ``MAX_NODES``
  nodes (a 393-byte "billion laughs" expands to 10**9), and a recursive alias is refused;
- a duplicate key in a mapping is an error (YAML says keys are unique; PyYAML keeps the last);
- a value its tag cannot hold (``!!float 0x10``) is a YAML error with its line, not a traceback.

Every problem is a ``yaml.YAMLError`` with a ``problem`` and, where known, a ``problem_mark``.
"""

from __future__ import annotations

import reprlib
from typing import Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.nodes import MappingNode, Node, SequenceNode

MAX_DEPTH = 64
"""Deepest nesting of collections."""
MAX_NODES = 100_000
"""Most nodes in a document once its aliases are expanded."""
SHOWN_CHARS = 200
"""Values quoted in error messages are cut to this many characters."""

_MERGE_TAG = "tag:yaml.org,2002:merge"
_REPR = reprlib.Repr()
_REPR.maxstring = SHOWN_CHARS
_REPR.maxother = SHOWN_CHARS
_REPR.maxlevel = 3
_REPR.maxlist = _REPR.maxtuple = _REPR.maxset = _REPR.maxdict = 8


def shown(value: object) -> str:
    """``repr(value)`` cut to about ``SHOWN_CHARS`` characters, computed without building the
    full repr (a value may be huge)."""
    return clip(_REPR.repr(value))


def clip(text: str) -> str:
    """``text`` cut to ``SHOWN_CHARS`` characters (ending in ``…`` when cut)."""
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return list(node.value)
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def check_expansion(root: Node, limit: int = MAX_NODES) -> None:
    """Refuse a node graph with a recursive alias or more than ``limit`` nodes when expanded.

    Iterative post-order walk; every node's expanded size is computed once.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            on_path.discard(key)
            sizes[key] = 1 + sum(sizes[id(child)] for child in _children(node))
            if sizes[key] > limit:
                raise ComposerError(
                    None,
                    None,
                    f"more than {limit:,} values with aliases expanded (an alias bomb?)",
                    node.start_mark,
                )
            continue
        if key in sizes:
            continue
        if key in on_path:
            raise ComposerError(None, None, "recursive alias (refers to itself)", node.start_mark)
        on_path.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in _children(node) if id(child) not in sizes)


class BoundedLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` with the bounds of this module."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self) -> Node | None:
        node = super().get_single_node()
        if node is not None:
            check_expansion(node)
        return node

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, MappingNode):
            self._refuse_duplicates(node)
        return super().construct_mapping(node, deep=deep)

    def _refuse_duplicates(self, node: MappingNode) -> None:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:  # `<<: *base` may override keys; that is its job
                continue
            key = self.construct_object(key_node)
            try:
                if key in first_line:
                    raise ConstructorError(
                        None,
                        None,
                        f"duplicate key {shown(key)} (first on line {first_line[key]})",
                        key_node.start_mark,
                    )
                first_line[key] = key_node.start_mark.line + 1
            except TypeError:  # an unhashable key: the constructor reports it
                continue

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except Exception as exc:  # e.g. float("0x10") for `!!float 0x10`
            value = shown(node.value) if not isinstance(node.value, list) else "a collection"
            raise ConstructorError(
                None,
                None,
                f"cannot read {value} as {node.tag.rsplit(':', 1)[-1]} ({type(exc).__name__})",
                node.start_mark,
            ) from None


def load(text: str) -> Any:
    """Parse one YAML document with ``BoundedLoader``; raises ``yaml.YAMLError``."""
    loader = BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()
