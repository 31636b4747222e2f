"""Links as a reader sees them: shown text versus real target."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser

from xfer.inspect.links import Link, html_links, message_links, plain_links


def test_html_anchor_keeps_visible_text_and_href() -> None:
    links = html_links('<p>Go to <a href="http://evil.example/x">https://www.<b>bank</b>.com/login</a> now <a name=top>x</a>')
    assert links == [Link("http://evil.example/x", "https://www.bank.com/login")]
    assert links[0].host == "evil.example"
    assert links[0].text_host == "www.bank.com"


def test_text_that_is_not_an_address_claims_no_host() -> None:
    assert Link("https://a.example/", "Click here").text_host is None
    assert Link("https://a.example/", "Version 2.0").text_host is None
    assert Link("mailto:x@bank.com", "bank.com").host is None


def test_unclosed_anchor_and_broken_markup_still_yield_links() -> None:
    links = html_links('<a href="http://1.2.3.4/">paypal.com<div><a href=http://b.example/>b</a><!-- <a href="x"')
    assert [link.href for link in links] == ["http://1.2.3.4/", "http://b.example/"]
    assert links[0].text_host == "paypal.com"


def test_plain_urls_lose_trailing_punctuation() -> None:
    links = plain_links("see http://3232235777/login, or www.example.org/a. (https://x.example/b)")
    assert [link.href for link in links] == ["http://3232235777/login", "www.example.org/a", "https://x.example/b"]
    assert [link.host for link in links] == ["3232235777", "www.example.org", "x.example"]


def test_links_come_from_inline_text_parts_only() -> None:
    raw = (
        b"Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nhttp://a.example/\n"
        b"--b\nContent-Type: text/html\nContent-Transfer-Encoding: quoted-printable\n\n<a href=3D\"http://b.example/\">b</a>\n"
        b"--b\nContent-Type: text/html\nContent-Disposition: attachment; filename=x.html\n\n<a href='http://c.example/'>c</a>\n--b--\n"
    )
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert [link.host for link in message_links(message)] == ["a.example", "b.example"]  # type: ignore[arg-type]
