"""Include/exclude glob patterns on paths relative to a job's source.

The matching rule (the same as rsync's and close to lftp's):
- a pattern without `/` matches the base name at any depth: `*.py`, `doc*.pdf`;
- a pattern with `/` matches the whole relative path from the source's top:
  `src/*.c`, `**/*.tar.gz` (`**` spans any number of directories, also none;
  `*` and `?` never cross a `/`); a leading `/` only anchors, as it already does;
- a pattern ending in `/` matches directories only, and so everything below them:
  `tmp/`, `build/cache/`;
- `[abc]` and `[!abc]` are character classes.
A file is taken when no exclude matches it (or one of its directories) and, if any
include is given, an include matches it or one of its directories. Exclude wins.
Directories are walked unless excluded, since a file below may be included."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass


def _translate(glob: str) -> str:
    """A glob (without its anchoring `/`) as a regular expression over a relative path."""
    out = []
    i, n = 0, len(glob)
    while i < n:
        char = glob[i]
        if glob.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = glob.find("]", i + 2 if glob.startswith("[!", i) or glob.startswith("[]", i) else i + 1)
            if end < 0:
                out.append(re.escape(char))
            else:
                body = glob[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


@dataclass(frozen=True)
class _Pattern:
    regex: re.Pattern[str]
    base_name: bool  # no "/": match the last component only
    dirs_only: bool  # trailing "/"

    @classmethod
    def compile(cls, text: str) -> _Pattern:
        dirs_only = text.endswith("/")
        body = text.rstrip("/")
        base_name = "/" not in body
        body = body.lstrip("/")
        if not body:
            raise ValueError(f"empty pattern {text!r}")
        return cls(re.compile(_translate(body) + r"\Z", re.DOTALL), base_name, dirs_only)

    def matches(self, path: str, is_dir: bool) -> bool:
        if self.dirs_only and not is_dir:
            return False
        subject = path.rsplit("/", 1)[-1] if self.base_name else path
        return self.regex.match(subject) is not None


def check_patterns(patterns: Iterable[str]) -> list[str]:
    """Validate patterns for a spec (raises ValueError naming the bad one)."""
    result = list(patterns)
    for pattern in result:
        if any(char in pattern for char in "\0\r\n"):
            raise ValueError(f"pattern {pattern!r} contains a control character")
        _Pattern.compile(pattern)
    return result


class PathFilter:
    def __init__(self, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> None:
        self.include = [_Pattern.compile(p) for p in include]
        self.exclude = [_Pattern.compile(p) for p in exclude]

    @staticmethod
    def _any(patterns: list[_Pattern], path: str, is_dir: bool) -> bool:
        """Whether a pattern matches `path` or one of its parent directories."""
        if not patterns:
            return False
        if any(p.matches(path, is_dir) for p in patterns):
            return True
        parts = path.split("/")
        return any(p.matches("/".join(parts[:i]), True) for i in range(1, len(parts)) for p in patterns)

    def walk_dir(self, path: str) -> bool:
        """Whether to descend into directory `path` (excluded directories are pruned)."""
        return not self._any(self.exclude, path, True)

    def wants_file(self, path: str) -> bool:
        if self._any(self.exclude, path, False):
            return False
        return not self.include or self._any(self.include, path, False)

    def first_include(self, path: str) -> int | None:
        """Index of the first include pattern taking `path` (for per-pattern picks)."""
        for index, pattern in enumerate(self.include):
            if self._any([pattern], path, False):
                return index
        return None
