"""What a job file's YAML scalars mean, without PyYAML: where one sits (`Mark`,
`Span`), `${VAR}` references (`expand_env`), and the text of a one-line plain or
quoted scalar read back from the file by its span (`read_scalar`): the job-file
cache reads passwords again that way, so a cached run imports no YAML parser."""

from __future__ import annotations

import os
import re
from typing import NamedTuple

from xfer.errors import SpecError

_ENV_REFERENCE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class Mark(NamedTuple):
    line: int  # 1-based
    column: int  # 1-based


class Span(NamedTuple):
    """A scalar's characters in the file's text, and its style (PyYAML's: None for
    plain, `'` or `"` quoted, `|` or `>` block)."""

    start: int
    end: int
    style: str | None


def expand_env(text: str, mark: Mark, source: str, used: set[str] | None = None) -> str:
    """Replace `${VAR}` / `${VAR:-default}`; `$$` is a literal `$`. The names read
    are added to `used` (the job-file cache checks their values)."""

    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, default = match.group(1), match.group(2)
        if used is not None:
            used.add(name)
        value = os.environ.get(name)
        if value is None:
            if default is None:
                raise SpecError(f"{source}:{mark.line}:{mark.column}: environment variable ${{{name}}} is not set")
            return default
        return value

    return _ENV_REFERENCE.sub(substitute, text) if "$" in text else text


def read_scalar(text: str, span: Span) -> str | None:
    """The string a scalar at `span` of `text` loads as (before `${VAR}`s), when
    that is its text as written: a one-line plain scalar, or a one-line quoted one
    without backslash escapes. None otherwise (folded lines, escapes, block styles)."""
    written = text[span.start:span.end]
    if "\n" in written or "\r" in written:
        return None
    if span.style is None:
        return written
    inner = written[1:-1]
    if span.style == "'" and written[-1:] == "'":
        return inner.replace("''", "'")
    if span.style == '"' and written[-1:] == '"' and "\\" not in inner:
        return inner
    return None
