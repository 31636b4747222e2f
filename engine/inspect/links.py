"""Links in a message body: every <a href> of the text/html parts with the text a
reader sees, and every URL written out in the text/plain parts. Attachments are
not read."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from html.parser import HTMLParser
from urllib.parse import urlsplit

from xfer.inspect.headers import clean

#: Bodies beyond this many characters are cut: a link 5 MB into a text part is
#: not what a reader clicks, and the HTML parser should not chew through a bomb.
MAX_TEXT_CHARS = 1_000_000

_PLAIN_URL = re.compile(r"""\b(?:https?://|www\.)[^\s<>"'\]\[)]+""", re.IGNORECASE)
#: Visible text that reads as a web address: a scheme or bare host, optionally a path.
_TEXT_HOST = re.compile(
    r"^(?:https?://)?(?:[^\s/@:]+@)?((?:[^\s/:?#.]+\.)+[^\s/:?#.\d][^\s/:?#.]*)\.?(?::\d+)?(?:[/?#]\S*)?$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Link:
    """A link's target and, for an HTML anchor, the text shown in its place (None for a bare URL)."""

    href: str
    text: str | None = None

    @property
    def host(self) -> str | None:
        """The host the link really goes to (None for mailto:, relative links or garbage)."""
        href = self.href.strip()
        if href.lower().startswith("www."):
            href = "http://" + href
        try:
            parts = urlsplit(href)
            if parts.scheme.lower() not in ("http", "https"):
                return None
            return parts.hostname or None
        except ValueError:
            return None

    @property
    def text_host(self) -> str | None:
        """The host the visible text claims, when the text looks like a web address."""
        if not self.text:
            return None
        match = _TEXT_HOST.match(self.text.strip())
        return match.group(1).lower() if match else None


class _AnchorParser(HTMLParser):
    """Collects (href, visible text) for each <a>, and hrefs of <area>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[Link] = []
        self._open: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href")
        if tag == "a":
            self._close()
            if href:
                self._open = (href, [])
        elif tag == "area" and href:
            self.links.append(Link(href))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._close()

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open[1].append(data)

    def _close(self) -> None:
        if self._open is not None:
            href, text = self._open
            self.links.append(Link(href.strip(), " ".join("".join(text).split())))
            self._open = None

    def close(self) -> None:
        super().close()
        self._close()


def html_links(html: str) -> list[Link]:
    """The anchors of an HTML document (a malformed one gives what could be read)."""
    parser = _AnchorParser()
    parser.feed(html[:MAX_TEXT_CHARS])
    parser.close()
    return parser.links


def plain_links(text: str) -> list[Link]:
    """URLs written out in plain text, without trailing punctuation."""
    return [Link(match.group(0).rstrip(".,;:!?")) for match in _PLAIN_URL.finditer(text[:MAX_TEXT_CHARS])]


def message_links(message: EmailMessage) -> list[Link]:
    """Links of every inline text/html and text/plain part."""
    found: list[Link] = []
    for part in _text_parts(message):
        subtype = part.get_content_subtype()
        text = part_text(part)
        found.extend(html_links(text) if subtype == "html" else plain_links(text))
    return found


def _text_parts(message: Message) -> Iterator[Message]:
    for part in message.walk():
        if part.get_content_maintype() == "text" and part.get_content_subtype() in ("plain", "html"):
            if part.get_content_disposition() != "attachment":
                yield part


def part_text(part: Message) -> str:
    """A text part decoded with its charset, or as UTF-8 with replacements when the
    charset is unknown or lies."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charset = part.get_content_charset() or "utf-8"
    try:
        return clean(payload.decode(charset, errors="replace"))
    except (LookupError, UnicodeError, ValueError):  # unknown or non-text codec name
        return payload.decode("utf-8", errors="replace")
