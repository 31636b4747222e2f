"""Comparing a sent message with what a mailbox returns: line-end normalisation,
transit headers listed but not counted, real differences caught."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from xfer.mail.compare import BODY_DIFFERS, HEADER_DIFFERS, OK, compare, fingerprint
from xfer.mail.message import TOKEN_HEADER, roundtrip_message, token_for

HEADERS = {"From": "Probe <probe@client.test>", "To": "Monitor <user1@example.test>", "Subject": "check 1"}


def sent(body: str = "Hello,\nline two\n", attachments: list[int] | None = None) -> bytes:
    return roundtrip_message(
        token=token_for("xferabc", 1), envelope_from="probe@client.test", headers=HEADERS,
        body=body, attachments=attachments or [],
    )


def delivered(raw: bytes) -> bytes:
    """What Postfix + Dovecot hand back: transit headers on top, CRLF line ends."""
    return b"Return-Path: <probe@client.test>\r\nDelivered-To: user1@example.test\r\nReceived: from x\r\n\tby y\r\n" + raw


def test_identical_message_is_ok_and_transit_headers_listed() -> None:
    raw = sent(attachments=[2048])
    result = compare(fingerprint(raw), delivered(raw))
    assert result.verdict == OK
    assert result.differences == []
    assert result.transit_headers == ["Return-Path", "Delivered-To", "Received"]


def test_lf_versus_crlf_is_not_a_difference() -> None:
    raw = sent()
    assert compare(fingerprint(raw), raw.replace(b"\r\n", b"\n")).verdict == OK


def test_changed_subject_is_header_differs() -> None:
    raw = sent()
    altered = raw.replace(b"Subject: check 1", b"Subject: [SPAM] check 1")
    result = compare(fingerprint(raw), delivered(altered))
    assert result.verdict == HEADER_DIFFERS
    assert result.differences == ["header Subject: sent 'check 1', got '[SPAM] check 1'"]


def test_dropped_header_is_header_differs() -> None:
    raw = sent()
    altered = b"".join(line for line in raw.splitlines(keepends=True) if not line.startswith(TOKEN_HEADER.encode()))
    result = compare(fingerprint(raw), altered)
    assert result.verdict == HEADER_DIFFERS
    assert result.differences == [f"header {TOKEN_HEADER}: missing"]


def test_changed_attachment_byte_is_body_differs() -> None:
    raw = sent(attachments=[300])
    other = roundtrip_message(
        token=token_for("xferabc", 2), envelope_from="probe@client.test", headers=HEADERS, body="Hello,\nline two\n",
        attachments=[300],
    )
    # Same headers as `raw`, the attachment of another token (other random bytes).
    head, _, _ = raw.partition(b"\r\n\r\n")
    _, _, other_body = other.partition(b"\r\n\r\n")
    boundary_raw = raw.split(b'boundary="')[1].split(b'"')[0]
    boundary_other = other.split(b'boundary="')[1].split(b'"')[0]
    result = compare(fingerprint(raw), head + b"\r\n\r\n" + other_body.replace(boundary_other, boundary_raw))
    assert result.verdict == BODY_DIFFERS
    assert any("part 2" in diff for diff in result.differences)


def test_missing_part_is_body_differs() -> None:
    raw = sent(attachments=[100])
    plain = sent()
    assert compare(fingerprint(raw), plain).verdict in (BODY_DIFFERS,)


@settings(max_examples=50, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF) | st.just("\n"), max_size=300))
def test_any_text_body_survives_line_end_conversion(body: str) -> None:
    raw = sent(body=body)
    assert compare(fingerprint(raw), delivered(raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))).verdict == OK
