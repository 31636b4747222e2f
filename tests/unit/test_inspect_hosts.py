"""Host-name tricks behind the link and sender rules."""

from __future__ import annotations

import ipaddress

import pytest

from xfer.inspect.hosts import latin_skeleton, mixed_script_labels, org_domain, parse_ip, unicode_host


@pytest.mark.parametrize(
    ("host", "address", "form"),
    [
        ("192.168.0.1", "192.168.0.1", "dotted"),
        ("3232235521", "192.168.0.1", "integer"),
        ("0xC0A80001", "192.168.0.1", "hex"),
        ("0300.0250.0.1", "192.168.0.1", "octal"),
        ("0xc0.0250.0.1", "192.168.0.1", "mixed"),
        ("192.168.1", "192.168.0.1", "short dotted"),
        ("[::1]", "::1", "ipv6"),
    ],
)
def test_ip_forms_decode_like_inet_aton(host: str, address: str, form: str) -> None:
    assert parse_ip(host) == (ipaddress.ip_address(address), form)


@pytest.mark.parametrize("host", ["example.com", "1.2.3.4.5", "256.1.1.1", "08.1.1.1", "0x", "4294967296", "1e3", ""])
def test_names_and_impossible_addresses_are_not_ips(host: str) -> None:
    assert parse_ip(host) is None


@pytest.mark.parametrize(
    ("host", "org"),
    [
        ("www.paypal.com", "paypal.com"),
        ("Mail.Example.ORG.", "example.org"),
        ("online.bank.co.uk", "bank.co.uk"),
        ("co.uk", "co.uk"),
        ("a.b.example.com.au", "example.com.au"),
        ("10.1.2.3", "10.1.2.3"),
        # Public Suffix List: private suffixes and registries the old built-in list lacked
        ("alice.github.io", "alice.github.io"),
        ("www.alice.github.io", "alice.github.io"),
        ("github.io", "github.io"),
        ("news.blogspot.com", "news.blogspot.com"),
        ("online.bank.co.at", "bank.co.at"),
        ("localhost", "localhost"),
    ],
)
def test_org_domain(host: str, org: str) -> None:
    assert org_domain(host) == org


def test_punycode_decodes_and_reveals_mixed_scripts() -> None:
    decoded = unicode_host("login.xn--pypal-4ve.com")
    assert decoded == "login.p\u0430ypal.com"
    assert mixed_script_labels(decoded) == ["p\u0430ypal (CYRILLIC+LATIN)"]
    assert unicode_host("paypal.com") is None
    assert unicode_host("xn--\u00ff.com") is None  # not decodable: no crash


def test_whole_script_lookalike_spells_the_latin_word() -> None:
    assert latin_skeleton("\u0430\u0440\u0440\u04cf\u0435") == "apple"
    assert latin_skeleton("apple") is None
    assert latin_skeleton("\u043f\u0440\u0438\u0432\u0435\u0442") is None  # real Russian word: "и" has no twin
