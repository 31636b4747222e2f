"""OVER blocks straight to JSONL lines, for scans whose only consumer is the JSONL file.

A header scan is bound by Python CPU: a dict per article and `json` encoding it cost
about 7 µs, more than INN takes to send the line. Here a block is decoded once, checked
for characters JSON must escape with one `bytes.translate` (and escaped by one C call
only when it has some), split on its separators, and each line is put together by one
f-string: about 2 µs. The output is byte for byte what `encode_record` gives for the
records of `OverviewFormat.parse` (tests/unit/test_nntp_overview_json.py checks it on
arbitrary input). Whatever the shortcut cannot reproduce exactly goes through that dict
path instead: a block with a backslash or another overview format, a line that is not
UTF-8, has an RFC 2047 word, a wrong field count, or an escaped character in a field
that is stripped, split or read as a number."""

from __future__ import annotations

from collections.abc import Mapping
from json.encoder import encode_basestring as _quote  # type: ignore[attr-defined]
from typing import Any

from xfer.news.jsonl import Encoded, encode_record
from xfer.news.overview import STANDARD_FIELDS, OverviewFormat

#: Field orders encoded here: RFC 3977's seven, then INN's usual Xref.
_FAST_FIELDS = (STANDARD_FIELDS, (*STANDARD_FIELDS, "xref"))
_MAX_DIGITS = 19
#: Maps every byte JSON escapes (controls but TAB/CR/LF, quote, backslash) to NUL.
_ESCAPED = bytes(0 if (c < 32 and c not in (9, 10, 13)) or c in (34, 92) else c or 1 for c in range(256))


class OverviewEncoder:
    """Encodes the OVER blocks of one group as JSONL lines."""

    def __init__(self, overview: OverviewFormat, first: Mapping[str, Any]) -> None:
        self.overview = overview
        self.first = dict(first)
        self._fast = overview.fields in _FAST_FIELDS
        self._fields = len(overview.fields)
        self._head = encode_record(self.first)[:-1] + ", " if self.first else "{"
        self._pieces: list[Encoded] = []

    def feed(self, block: bytes) -> None:
        """Encode whole OVER lines (a reply, or a piece of one as it arrives) to bytes
        at once, kept for `take`; garbage lines are skipped."""
        out: list[str] = []
        self._encode(block, out)
        self._pieces.append(Encoded.lines(out))

    def take(self) -> Encoded:
        """The lines fed since the last `take`."""
        pieces, self._pieces = self._pieces, []
        return Encoded(b"".join(piece.data for piece in pieces), sum(piece.count for piece in pieces))

    def _encode(self, block: bytes, out: list[str]) -> None:
        if not self._fast or b"\\" in block:
            self._slow(block, out)
            return
        start = 0
        while start < len(block):  # UTF-8 runs go fast; each line that is not, slow
            try:
                text = block[start:].decode("utf-8")
            except UnicodeDecodeError as exc:
                bad = start + exc.start
                line_start = block.rfind(b"\r\n", start, bad)
                line_start = start if line_start < 0 else line_start + 2
                line_end = block.find(b"\r\n", bad)
                line_end = len(block) if line_end < 0 else line_end + 2
                if line_start > start:
                    self._lines(block[start:line_start], out)
                self._slow(block[line_start:line_end], out)
                start = line_end
                continue
            self._lines(block[start:] if start else block, out, text)
            break

    def _lines(self, block: bytes, out: list[str], text: str | None = None) -> None:
        """UTF-8 lines: no escaping needed (the usual case), or escaped at once."""
        text = block.decode("utf-8") if text is None else text
        clean = b"\0" not in block.translate(_ESCAPED)
        lines = text.split("\r\n")
        if clean and "\r" not in (joined := "".join(lines)) and "\n" not in joined:  # no lone CR or LF
            tab, escaped = "\t", False
        else:  # no backslash in the source: each one of the escaped text starts an escape
            lines = _quote(text)[1:-1].split("\\r\\n")
            tab, escaped = "\\t", True
        fields, head, xref = self._fields, self._head, self._fields > len(STANDARD_FIELDS)
        width = fields + 1
        words = "=?" in text
        raw_lines: list[bytes] | None = None
        append = out.append
        for index, line in enumerate(lines):
            if not line:
                continue
            values = line.split(tab)
            if (
                len(values) != width
                or (words and "=?" in line)
                or (escaped and line.count("\\") != fields and _escapes_matter(values))
            ):
                raw_lines = raw_lines or block.split(b"\r\n")
                self._slow(raw_lines[index], out)
                continue
            if xref:
                number, subject, sender, date, message_id, references, size, count, tail = values
                if tail.startswith("Xref:") or tail[:5].lower() == "xref:":
                    tail = tail[5:]
                tail = f', "xref": "{tail.strip()}"}}'
            else:
                number, subject, sender, date, message_id, references, size, count = values
                tail = "}"
            if not (number.isdigit() and number.isascii() and len(number) <= _MAX_DIGITS):
                continue
            if not (size.isdigit() and size[0] != "0" and size.isascii() and len(size) <= _MAX_DIGITS):
                size = _number(size)  # the rare case, out of line
            if not (count.isdigit() and count[0] != "0" and count.isascii() and len(count) <= _MAX_DIGITS):
                count = _number(count)
            append(
                f'{head}"number": {number if number[0] != "0" else int(number)}, "subject": "{subject}", '
                f'"from": "{sender}", "date": "{date}", "message_id": "{message_id.strip(" ")}", '
                f'"references": {_list(references) if references else "[]"}, "bytes": {size}, "lines": {count}{tail}'
            )

    def _slow(self, block: bytes, out: list[str]) -> None:
        out.extend(map(encode_record, self.overview.parse(block, self.first)))


def _escapes_matter(values: list[str]) -> bool:
    """Whether an escape sits in a field that is stripped, split or read as a number
    (subject, from and date are written as they are, escapes included)."""
    return "\\" in values[0] or any("\\" in value for value in values[4:])


def _list(references: str) -> str:
    """Message-IDs separated by white space as a JSON list of strings. Raw control
    characters never get here (they are escaped), so ASCII text with single inner
    spaces splits exactly where `str.split()` would."""
    if references.isascii() and "  " not in references and references[0] != " " != references[-1]:
        return '["' + references.replace(" ", '", "') + '"]'
    return '["' + '", "'.join(ids) + '"]' if (ids := references.split()) else "[]"


def _number(text: str) -> str:
    """A field as a JSON number, `null` when it is not a plain decimal."""
    if text.isdigit() and text.isascii() and len(text) <= _MAX_DIGITS:
        return text if text[0] != "0" or text == "0" else str(int(text))
    return "null"
