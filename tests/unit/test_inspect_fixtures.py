"""The crafted messages in tests/data/inspect: each fires exactly the rules it was built for."""

from __future__ import annotations

from pathlib import Path

import pytest

from xfer.inspect.message import Inspection, inspect_message

DATA = Path(__file__).parents[1] / "data" / "inspect"

#: fixture -> (rules that must fire, and nothing else; evidence fragments that must appear)
EXPECTED: dict[str, tuple[set[str], list[str]]] = {
    "ham.eml": (set(), []),
    "ham_co_uk.eml": (set(), []),
    "phish_link_mismatch.eml": (
        {"suspicious-mailer", "message-id-domain", "return-path-mismatch", "reply-to-mismatch",
         "received-mismatch", "link-text-mismatch"},
        ["X-Mailer: PHPMailer 6.1.4", "Reply-To domain account-help.example vs From domain paypal.com",
         "text shows www.paypal.com, link goes to paypal.com.secure-login.account-help.example"],
    ),
    "phish_raw_ip.eml": (
        {"link-raw-ip"},
        ["http://3232235777/owa/login -> 192.168.1.1 (integer)", "http://0xC0A80001/owa/ -> 192.168.0.1 (hex)",
         "http://0300.0250.0.1/owa/ -> 192.168.0.1 (octal)", "http://192.0.2.10:8080/owa/ -> 192.0.2.10 (dotted)"],
    ),
    "phish_punycode.eml": (
        {"from-display-spoof", "punycode-domain", "mixed-script-domain"},
        ["xn--80ak6aa92e.com is \u0430\u0440\u0440\u04cf\u0435.com", "imitates 'apple'",
         "label \u0430pple (CYRILLIC+LATIN)", "display name shows security@apple.com"],
    ),
    "spam_bulk_malformed.eml": (
        {"malformed-header", "bulk-mailer", "message-id-missing", "return-path-mismatch", "received-mismatch",
         "x-authentication-warning"},
        ["X-Mailer: Atomic Mail Sender 9.0", "Date: InvalidDateDefect", "apache set sender to deals@shop.example"],
    ),
    "bad_message_id.eml": (
        {"malformed-header", "bulk-mailer", "message-id-syntax"},
        ["Message-ID: 20240610070000.digest at example.com (not <left@right>)"],
    ),
    "malformed_headers.eml": (
        {"malformed-header", "message-id-syntax"},
        ["From: InvalidHeaderDefect", "CloseBoundaryNotFoundDefect"],
    ),
}


def inspect_fixture(name: str) -> Inspection:
    return inspect_message(name, (DATA / name).read_bytes())


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(path.name for path in DATA.glob("*.eml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_fires_its_rules_with_evidence(name: str) -> None:
    rules, fragments = EXPECTED[name]
    record = inspect_fixture(name)
    assert {signal.rule for signal in record.signals} == rules
    evidence = "\n".join(signal.evidence for signal in record.signals)
    for fragment in fragments:
        assert fragment in evidence


def test_score_counts_each_rule_once() -> None:
    record = inspect_fixture("phish_raw_ip.eml")
    assert len(record.signals) == 4
    assert record.score == 3


def test_phishing_outscores_ham() -> None:
    hams = [inspect_fixture(name).score for name in ("ham.eml", "ham_co_uk.eml")]
    phish = [inspect_fixture(name).score for name in EXPECTED if name.startswith("phish_")]
    assert max(hams) == 0 < 3 <= min(phish)


def test_listing_fields() -> None:
    record = inspect_fixture("ham.eml").as_dict()
    assert record["from"] == "Alice Example <alice@example.org>"
    assert record["subject"] == "Minutes of Monday's meeting"
    assert record["date"] == "2024-06-04T11:12:00+02:00"
    assert record["attachments"] == [{"name": "minutes.pdf", "size": 48}]
    assert record["size"] == (DATA / "ham.eml").stat().st_size


def test_malformed_message_still_lists_what_it_can() -> None:
    record = inspect_fixture("malformed_headers.eml")
    assert record.date is None
    assert record.subject == "caf\ufffd \ufffd\ufffd invoice"
    assert [item.name for item in record.attachments] == ["%ZZ%"]


def test_many_bad_links_are_capped_not_listed_one_by_one() -> None:
    body = "".join(f"http://10.0.0.{n}/x\n" for n in range(200)).encode()
    record = inspect_message("many", b"From: a@example.com\nMessage-ID: <1@example.com>\n\n" + body)
    ip_signals = [signal for signal in record.signals if signal.rule == "link-raw-ip"]
    assert len(ip_signals) == 11
    assert ip_signals[-1].evidence == "(+190 more)"
    assert record.score == 3
