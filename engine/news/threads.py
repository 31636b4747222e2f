"""Thread reconstruction from Message-ID and References: Jamie Zawinski's algorithm
(https://www.jwz.org/doc/threading.html), as news readers have used it since 1997.

Steps, as in the original: link every References chain into containers (a parent
seen only in References becomes an empty container); prune empty containers
(promote their children, but to the root level only when there is one); then
gather root threads that share a base subject ("Re: x" joins "x"). Each article
gets a thread id (the root's Message-ID, or for a subject-only merge the first
root's) and a depth (0 for a root). Iterative, so a 10,000-deep thread is fine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|fwd?)(\[\d+\])?\s*:\s*)+", re.IGNORECASE)


def base_subject(subject: str) -> tuple[str, bool]:
    """('x', True) for 'Re: Re: x': the subject without reply prefixes, and whether it had one."""
    stripped = _REPLY_PREFIX.sub("", subject)
    return " ".join(stripped.split()).casefold(), stripped != subject


@dataclass(eq=False)
class _Container:
    message_id: str
    subject: str | None = None  # None: an empty container (the article was not seen)
    parent: _Container | None = None
    children: list[_Container] = field(default_factory=list)
    subject_dummy: bool = False  # created to gather roots with one subject

    def has_ancestor(self, other: _Container) -> bool:
        node: _Container | None = self
        while node is not None:
            if node is other:
                return True
            node = node.parent
        return False


def _link(parent: _Container, child: _Container) -> None:
    if child.parent is not None:
        child.parent.children.remove(child)
    child.parent = parent
    parent.children.append(child)


def _unlink(child: _Container) -> None:
    if child.parent is not None:
        child.parent.children.remove(child)
        child.parent = None


@dataclass(frozen=True, slots=True)
class ThreadInfo:
    thread_id: str
    depth: int


def thread(articles: Iterable[tuple[str, list[str], str]]) -> dict[str, ThreadInfo]:
    """Thread (message_id, references, subject) triples; map each Message-ID to its place."""
    table: dict[str, _Container] = {}

    def container(message_id: str) -> _Container:
        found = table.get(message_id)
        if found is None:
            found = table[message_id] = _Container(message_id)
        return found

    for message_id, references, subject in articles:
        if not message_id:
            continue
        this = container(message_id)
        if this.subject is not None:
            continue  # the same article again (crossposted): first wins
        this.subject = subject
        previous: _Container | None = None
        for ref in references:
            if ref == message_id:
                continue
            current = container(ref)
            if previous is not None and current.parent is None and not previous.has_ancestor(current):
                _link(previous, current)
            previous = current
        if previous is not None and not previous.has_ancestor(this):
            _link(previous, this)
        elif previous is None:
            _unlink(this)

    roots = [c for c in table.values() if c.parent is None]
    roots = _prune(roots)
    roots = _gather_by_subject(roots)
    return _number(roots)


def _prune(roots: list[_Container]) -> list[_Container]:
    """Drop empty containers without children; replace empty ones by their children
    (at the root level only when there is exactly one child)."""
    result: list[_Container] = []
    for root in roots:
        stack = [root]
        while stack:
            node = stack.pop()
            changed = True
            while changed:
                changed = False
                for child in list(node.children):
                    if child.subject is None:
                        for grandchild in list(child.children):
                            _link(node, grandchild)
                        _unlink(child)
                        changed = True
            stack.extend(node.children)
        if root.subject is None and not root.children:
            continue
        if root.subject is None and len(root.children) == 1:
            only = root.children[0]
            _unlink(only)
            result.append(only)
        else:
            result.append(root)
    return result


def _subject_of(node: _Container) -> str | None:
    if node.subject is not None:
        return node.subject
    return node.children[0].subject if node.children else None


def _is_reply(node: _Container) -> bool:
    return node.subject is not None and base_subject(node.subject)[1]


def _gather_by_subject(roots: list[_Container]) -> list[_Container]:
    """Merge root threads with the same base subject, preferring a non-reply as the head."""
    bases: list[str] = []
    for root in roots:
        subject = _subject_of(root)
        bases.append(base_subject(subject)[0] if subject else "")
    chosen: dict[str, _Container] = {}
    for root, base in zip(roots, bases):
        if not base:
            continue
        old = chosen.get(base)
        if old is None or (root.subject is None and old.subject is not None) or (
            root.subject is not None and old.subject is not None and _is_reply(old) and not _is_reply(root)
        ):
            chosen[base] = root
    holder = dict(chosen)
    entries: list[_Container | str] = []
    listed: set[str] = set()
    for root, base in zip(roots, bases):
        if not base:
            entries.append(root)
            continue
        if base not in listed:
            listed.add(base)
            entries.append(base)
        if root is chosen[base]:
            continue
        top = holder[base]
        if top.subject is None and root.subject is None:
            for child in list(root.children):
                _link(top, child)
        elif top.subject is None:
            _link(top, root)
        elif root.subject is None:
            _link(root, top)
            holder[base] = root
        elif _is_reply(root) and not _is_reply(top):
            _link(top, root)
        else:
            dummy = _Container(top.message_id, subject_dummy=True)
            _link(dummy, top)
            _link(dummy, root)
            holder[base] = dummy
    return [holder[entry] if isinstance(entry, str) else entry for entry in entries]


def _number(roots: list[_Container]) -> dict[str, ThreadInfo]:
    places: dict[str, ThreadInfo] = {}
    for root in roots:
        thread_id = root.message_id
        offset = -1 if root.subject_dummy else 0
        stack = [(root, offset)]
        while stack:
            node, depth = stack.pop()
            if node.subject is not None and not node.subject_dummy:
                places.setdefault(node.message_id, ThreadInfo(thread_id, max(depth, 0)))
            stack.extend((child, depth + 1) for child in node.children)
    return places
