"""Include/exclude patterns on paths relative to a job's source, with gitignore
semantics (the `pathspec` library):
- a pattern without `/` matches the base name at any depth: `*.py`, `doc*.pdf`;
- a pattern with `/` matches the whole relative path from the source's top:
  `src/*.c`, `**/*.tar.gz` (`**` spans any number of directories, also none;
  `*` and `?` never cross a `/`); a leading `/` only anchors, as it already does;
- a pattern ending in `/` matches directories only, and so everything below them:
  `tmp/`, `build/cache/`;
- `[abc]` and `[!abc]` are character classes; an invalid one (`[z-a]`) is an error
  in the job file;
- a leading `!` or `#` means nothing here (gitignore's negation and comments): a name
  that starts with one is written `\\!name`, `\\#name`; leaving files out is `exclude`.
A file is taken when no exclude matches it (or one of its directories) and, if any
include is given, an include matches it or one of its directories. Exclude wins.
Directories are walked unless excluded, since a file below may be included."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pathspec


def _compile(patterns: Iterable[str]) -> pathspec.PathSpec | None:
    """Patterns as one gitignore-style spec (None for no patterns: a mirror without
    filters never imports pathspec, ~10 ms of every start); ValueError naming the
    first bad one."""
    patterns = list(patterns)
    if not patterns:
        return None
    import pathspec

    checked = []
    for pattern in patterns:
        if any(char in pattern for char in "\0\r\n"):
            raise ValueError(f"pattern {pattern!r} contains a control character")
        if pattern.startswith(("!", "#")):
            raise ValueError(
                f"pattern {pattern!r}: a leading {pattern[0]!r} is not allowed "
                f"(write '\\{pattern}' for a name starting with {pattern[0]!r}; leave files out with exclude)"
            )
        try:
            spec = pathspec.PathSpec.from_lines("gitignore", [pattern])
        except (re.error, ValueError) as exc:
            raise ValueError(f"invalid pattern {pattern!r}: {getattr(exc, 'msg', exc)}") from None
        if not any(compiled.include for compiled in spec.patterns):
            raise ValueError(f"empty pattern {pattern!r}")
        checked.append(pattern)
    return pathspec.PathSpec.from_lines("gitignore", checked)


def check_patterns(patterns: Iterable[str]) -> list[str]:
    """Validate patterns for a spec (raises ValueError naming the bad one)."""
    result = list(patterns)
    _compile(result)
    return result


class PathFilter:
    def __init__(self, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> None:
        self.include = [_compile([pattern]) for pattern in include]
        self.exclude = _compile(exclude)

    def walk_dir(self, path: str) -> bool:
        """Whether to descend into directory `path` (excluded directories are pruned)."""
        return self.exclude is None or not self.exclude.match_file(path + "/")

    def wants_file(self, path: str) -> bool:
        if self.exclude is not None and self.exclude.match_file(path):
            return False
        return not self.include or self.first_include(path) is not None

    def first_include(self, path: str) -> int | None:
        """Index of the first include pattern taking `path` (for per-pattern picks)."""
        return next((index for index, spec in enumerate(self.include) if spec.match_file(path)), None)  # type: ignore[union-attr]
