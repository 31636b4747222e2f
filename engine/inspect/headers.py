"""Header access that survives any message: each header is parsed on its own, a
header the `email` package cannot parse keeps its raw text, and every defect or
parse failure is written down in `problems` (the 'malformed' signal reads it)."""

from __future__ import annotations

import re
from datetime import datetime
from email.headerregistry import Address
from email.message import EmailMessage
from typing import Any

_SURROGATES = re.compile(r"[\ud800-\udfff]")
_ANGLE_ADDRESS = re.compile(r"<([^<>]*)>")
_DOMAIN_AFTER_AT = re.compile(r"@\[?([A-Za-z0-9.\-:]+)\]?")


def clean(text: str) -> str:
    """Text with undecodable bytes (surrogate escapes) shown as U+FFFD."""
    return _SURROGATES.sub("\ufffd", text)


def address_domain(text: str) -> str | None:
    """The domain of the address in `text`: inside the last <...> if any, else after the last '@'."""
    angles = _ANGLE_ADDRESS.findall(text)
    target = angles[-1] if angles else text
    found = _DOMAIN_AFTER_AT.findall(target)
    return found[-1].rstrip(".").lower() if found else None


class Headers:
    """A message's headers, parsed one by one with the message's policy."""

    def __init__(self, message: EmailMessage) -> None:
        self.problems: list[str] = [_describe(defect) for defect in message.defects]
        self._parsed: dict[str, list[Any]] = {}
        for name, raw in message.raw_items():
            key = name.lower()
            try:
                header = message.policy.header_fetch_parse(name, raw)
                self.problems.extend(f"{name}: {_describe(defect)}" for defect in getattr(header, "defects", ()))
            except Exception as exc:  # the header parser raises assorted types on hostile input
                self.problems.append(f"{name}: unparsable ({type(exc).__name__})")
                header = clean(str(raw))
            self._parsed.setdefault(key, []).append(header)

    def all(self, name: str) -> list[str]:
        """Every value of header `name`, decoded (raw text when it would not parse)."""
        return [clean(str(header)) for header in self._parsed.get(name.lower(), [])]

    def get(self, name: str) -> str | None:
        """The first value of header `name`, or None when absent."""
        values = self.all(name)
        return values[0] if values else None

    def addresses(self, name: str) -> list[Address]:
        """The addresses of an address header; empty when absent or unparsable."""
        found: list[Address] = []
        for header in self._parsed.get(name.lower(), []):
            try:
                found.extend(getattr(header, "addresses", ()))
            except Exception as exc:  # lazily parsed groups can still fail
                self.problems.append(f"{name}: unparsable address ({type(exc).__name__})")
        return found

    def domain(self, name: str) -> str | None:
        """The domain of the (first) address in header `name`, parsed or, failing that, guessed."""
        for address in self.addresses(name):
            if address.domain:
                return clean(address.domain).rstrip(".").lower()
        value = self.get(name)
        return address_domain(value) if value else None

    def date(self) -> datetime | None:
        """The Date header as a datetime, None when absent or unparsable."""
        for header in self._parsed.get("date", []):
            value = getattr(header, "datetime", None)
            if isinstance(value, datetime):
                return value
        return None


def _describe(defect: Exception) -> str:
    """A defect's class name and message, e.g. 'InvalidHeaderDefect: invalid date'."""
    text = str(defect.args[0]) if defect.args else ""
    return clean(f"{type(defect).__name__}: {text}" if text else type(defect).__name__)
