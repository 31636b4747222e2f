"""The first N "meaningful" lines of an article body.

Dropped: quoted lines (`>`, `|`), attribution lines (`In article <...>, x wrote:`,
`x wrote:`, `x writes:`) and everything after the signature separator (`-- `).
Kept: interactive Python prompts (`>>>`), which look like quotes but are code.
Runs of blank lines collapse to one (and do not count towards N); leading and
trailing blank lines go."""

from __future__ import annotations

import re

_ATTRIBUTION = re.compile(r"^(in article <[^>]*>.*|.*\b(wrote|writes)\s*:\s*)$", re.IGNORECASE)
_PROMPT = re.compile(r"^>>>(\s|$)")


def _meaningful(line: str) -> bool:
    if _PROMPT.match(line):
        return True
    if line.startswith((">", "|")):
        return False
    return not _ATTRIBUTION.match(line)


def excerpt(body: str, limit: int) -> list[str]:
    """Up to `limit` meaningful lines of `body`, right-stripped. Blank lines are not
    counted: one is kept between meaningful lines where the body had any."""
    out: list[str] = []
    taken = 0
    blank = False
    for raw in body.splitlines():
        if taken >= limit or raw.rstrip("\r") == "-- ":
            break
        line = raw.rstrip()
        if not line:
            blank = bool(out)
            continue
        if not _meaningful(line):
            continue
        if blank:
            out.append("")
            blank = False
        out.append(line)
        taken += 1
    return out
