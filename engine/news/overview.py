"""Overview records: LIST OVERVIEW.FMT, OVER/XOVER lines and HDR columns as article dicts.

An article record is the dict written to outputs: `number`, `subject`, `from`,
`date`, `message_id`, `references` (a list), `bytes`, `lines`, plus `xref` and any
other extra overview field under `headers`. Servers send bytes in any charset:
UTF-8 is tried first, Latin-1 is the fallback, and RFC 2047 encoded words are
decoded. Malformed lines are skipped, never fatal: a broken server costs a line.
"""

from __future__ import annotations

import email.header
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: The seven fields every overview starts with (RFC 3977 8.4), as record keys.
STANDARD_FIELDS = ("subject", "from", "date", "message-id", "references", "bytes", "lines")
#: Digits of the largest number we read (2**63 has 19).
_MAX_DIGITS = 19


def decode_text(raw: bytes) -> str:
    """Header bytes as text: UTF-8, else Latin-1; RFC 2047 words decoded."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if "=?" in text:  # rare: keep the common path to one decode and one test
        try:
            text = str(email.header.make_header(email.header.decode_header(text)))
        except (ValueError, LookupError, UnicodeError):
            pass
    return text


def _field_name(line: str) -> tuple[str, bool]:
    """'Subject:' -> ('subject', False); 'Xref:full' -> ('xref', True); ':bytes' -> ('bytes', False)."""
    line = line.strip()
    if line.startswith(":"):
        return line[1:].split(":", 1)[0].lower(), False
    name, _, suffix = line.partition(":")
    return name.strip().lower(), suffix.strip().lower() == "full"


@dataclass(frozen=True)
class OverviewFormat:
    """The field order of a server's overview lines."""

    fields: tuple[str, ...] = STANDARD_FIELDS

    @classmethod
    def from_lines(cls, lines: Iterable[str] | None) -> OverviewFormat:
        """From the LIST OVERVIEW.FMT reply (None or empty: the RFC 3977 default)."""
        names = tuple(_field_name(line)[0] for line in lines or () if line.strip())
        return cls(names or STANDARD_FIELDS)

    def parse(self, block: bytes, first: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Records of an OVER/XOVER data block ('number TAB field TAB ...' lines);
        each record starts with the keys of `first` (e.g. server and group)."""
        records = []
        fields = self.fields
        head = dict(first or {})
        for line in block.split(b"\r\n"):
            raw, _, rest = line.partition(b"\t")
            number = parse_number(raw)
            if number is None:
                continue
            values = rest.split(b"\t")
            records.append(_record(number, dict(zip(fields, values)), head))
        return records


def _strip_name(name: str, raw: bytes) -> bytes:
    """Extra fields arrive as 'Xref: value' (':full'); some servers omit the name."""
    prefix = name.encode() + b":"
    if raw[: len(prefix)].lower() == prefix:
        return raw[len(prefix) :].lstrip()
    return raw


def parse_number(raw: bytes | None) -> int | None:
    """A decimal article number or count, None when it is not one. RFC 3977 numbers
    fit in 63 bits; longer digit runs are refused before int() (which raises past
    4,300 digits, so a hostile server could otherwise fail a whole chunk)."""
    return int(raw) if raw and len(raw) <= _MAX_DIGITS and raw.isdigit() else None


def _record(number: int, values: Mapping[str, bytes], head: dict[str, Any] | None = None) -> dict[str, Any]:
    get = values.get
    record: dict[str, Any] = {
        **(head or {}),
        "number": number,
        "subject": decode_text(get("subject", b"")),
        "from": decode_text(get("from", b"")),
        "date": decode_text(get("date", b"")),
        "message_id": get("message-id", b"").strip().decode("utf-8", "replace"),
        "references": get("references", b"").decode("utf-8", "replace").split(),
        "bytes": parse_number(get("bytes")),
        "lines": parse_number(get("lines")),
    }
    if len(values) <= len(STANDARD_FIELDS):
        return record
    headers = {}
    for name, raw in values.items():
        if name not in _STANDARD_SET:
            value = decode_text(_strip_name(name, raw)).strip()
            if name == "xref":
                record["xref"] = value
            elif value:
                headers[name] = value
    if headers:
        record["headers"] = headers
    return record


_STANDARD_SET = frozenset(STANDARD_FIELDS)

#: Headers asked one by one with XHDR when a server has no overview database.
HDR_FIELDS = ("subject", "from", "date", "message-id", "references", "bytes", "lines", "xref")


def records_from_columns(
    columns: Mapping[str, Iterable[tuple[int, bytes]]], first: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Records from XHDR replies: `columns` maps a header to its (number, value) pairs."""
    rows: dict[int, dict[str, bytes]] = {}
    for name, pairs in columns.items():
        for number, value in pairs:
            if value.strip() == b"(none)":
                value = b""
            rows.setdefault(number, {})[name] = value
    head = dict(first or {})
    return [_record(number, rows[number], head) for number in sorted(rows)]
