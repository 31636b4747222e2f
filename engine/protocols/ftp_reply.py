"""FTP control replies (RFC 959 §4.2) as pure code: splitting received bytes into
replies, reading the few reply texts the session needs (EPSV and PASV ports, MDTM
time), and the error for a reply other than the one expected.

No I/O, so the parser is fuzzed against the StreamReader loop it replaced
(tests/unit/test_ftp_control.py). A reply is `(code, info)`: `info[0]` is the text
after the code of the first line (with its `-` for a multi-line reply), then every
further line whole, the last one again without its code (the layout aioftp had):

    "211-Features:\\r\\n MDTM\\r\\n211 End\\r\\n" -> ("211", ["-Features:", " MDTM", " End"])

A multi-line reply ends at the first line that starts with its code not followed by
`-`. Lines lose trailing white space and their CR LF. Undecodable bytes are replaced:
reply text is for people, the codes and numbers we read are ASCII."""

from __future__ import annotations

import functools
import itertools
import re
from datetime import datetime

from xfer.protocols.ftp_listing import ListingError, parse_mdtm

#: A reply as read: (code, [text after the code, continuation lines...]).
Reply = tuple[str, list[str]]

#: Bytes of one reply (or of an unfinished line) beyond which it is garbage, not a reply.
MAX_REPLY = 256 * 1024
#: A 229 reply's port, `(|||port|)` (any delimiter); the last such group counts.
_EPSV_PORT = re.compile(r"\((.)\1\1(\d+)\1\)")
#: A 227 reply's `h1,h2,h3,h4,p1,p2`, in parentheses or not (RFC 1123 §4.1.2.6: scan
#: for the numbers); the first such group counts.
_PASV_ADDRESS = re.compile(r"(\d+), *(\d+), *(\d+), *(\d+), *(\d+), *(\d+)")


class FtpProtocolError(ValueError):
    """What cannot be said on an FTP control channel: a command holding CR or LF."""


class StatusError(Exception):
    """A reply other than the one expected: its code and text, which ftp_errors turns
    into the xfer error (the text is kept out of the message: it may echo a secret)."""

    def __init__(self, expected: tuple[str, ...], code: str, info: list[str]) -> None:
        super().__init__(f"expected {'/'.join(expected)}, got {code}")
        self.expected = expected
        self.code = code
        self.info = info


class ReplyError(FtpProtocolError):
    """The server sent something that is not an FTP reply (too long to be one)."""


class ReplyParser:
    """Received bytes in, complete replies out. `feed` costs time linear in what it is
    given, however the server splits its writes (a reply trickled a byte at a time is
    not parsed again from its start): the unfinished line and the unfinished
    multi-line reply are kept between calls."""

    __slots__ = ("_code", "_encoding", "_info", "_size", "_tail")

    def __init__(self, encoding: str = "utf-8") -> None:
        self._encoding = encoding
        self._tail = b""  # an unfinished line
        self._code: str | None = None  # the multi-line reply under way
        self._info: list[str] = []
        self._size = 0  # bytes of the multi-line reply under way

    def feed(self, data: bytes) -> list[Reply]:
        """The replies that `data` completes, in order; raises ReplyError for a line
        or reply longer than MAX_REPLY."""
        if self._tail:
            data = self._tail + data
        lines = data.split(b"\n")
        self._tail = lines.pop()
        if len(self._tail) > MAX_REPLY:
            raise ReplyError(f"a reply line longer than {MAX_REPLY} bytes")
        replies: list[Reply] = []
        for raw in lines:
            line = raw.decode(self._encoding, "replace").rstrip()
            code = self._code
            if code is None:
                code, rest = line[:3], line[3:]
                if rest.startswith("-") or not code.isdigit():
                    self._code, self._info, self._size = code, [rest], len(raw) + 1
                else:
                    replies.append((code, [rest]))
                continue
            if line[:3] == code and line[3:4] != "-":
                self._info.append(line[3:])
                replies.append((code, self._info))
                self._code, self._info = None, []
                continue
            self._info.append(line)
            self._size += len(raw) + 1
            if self._size > MAX_REPLY:
                raise ReplyError(f"a multi-line reply longer than {MAX_REPLY} bytes")
        return replies

    def end(self) -> list[Reply]:
        """At the end of the stream: an unfinished last line counts as a line (as
        `StreamReader.readline` returns it)."""
        return self.feed(b"\n") if self._tail else []


@functools.cache
def accepted(masks: str | tuple[str, ...]) -> frozenset[str]:
    """The reply codes that fit `masks` ("226", "2xx", "5x0", or a tuple of them): a
    set to look a reply's code up in, made once per mask (a call per reply, four per
    file, was measurable)."""
    codes: set[str] = set()
    for mask in (masks,) if isinstance(masks, str) else masks:
        codes.update(map("".join, itertools.product(*(d if d.isdigit() else "0123456789" for d in mask))))
    return frozenset(codes)


def epsv_port(text: str) -> int:
    """The port in a 229 reply's text; ReplyError when there is none."""
    found = _EPSV_PORT.findall(text)
    if not found:
        raise ReplyError(f"no port in the EPSV reply {text.strip()!r}")
    return int(found[-1][1])


def pasv_port(text: str) -> int:
    """The port in a 227 reply's text (its address is not used: a server must not send
    us elsewhere); ReplyError when there is none."""
    found = _PASV_ADDRESS.search(text)
    if found is None or int(found[5]) > 255 or int(found[6]) > 255:
        raise ReplyError(f"no address in the PASV reply {text.strip()!r}")
    return int(found[5]) << 8 | int(found[6])


def reply_text(info: list[str] | str) -> str:
    """A reply's text on one line, for messages."""
    lines = [info] if isinstance(info, str) else info
    return " ".join(line.strip(" -") for line in lines if line.strip(" -"))


def mdtm_time(reply: Reply | None) -> datetime | None:
    """The time in an MDTM reply; None for a refusal or a reply we cannot read."""
    if reply is None or reply[0] != "213":
        return None
    try:
        return parse_mdtm(reply[1][-1])
    except ListingError:
        return None
