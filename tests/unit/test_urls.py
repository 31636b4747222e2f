"""Job URLs: parsing, defaults, credentials, and passwords that never print."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from engine.spec import parse_job_text
from engine.urls import parse_url


def test_url_parts_and_default_ports() -> None:
    url = parse_url("ftps://alice:s3cr%40t@files.example.org/pub/x")
    assert (url.scheme, url.host, url.port, url.path, url.user) == ("ftps", "files.example.org", 21, "/pub/x", "alice")
    assert url.secret() == "s3cr@t"
    assert url.endpoint == "files.example.org:21"
    assert parse_url("imaps://h").port == 993
    assert parse_url("nntp://[::1]:1119").endpoint == "[::1]:1119"


def test_password_never_in_str_or_repr() -> None:
    url = parse_url("smtp://bob:hunter2@mail.example.org:587")
    assert "hunter2" not in str(url)
    assert "hunter2" not in repr(url)
    assert "hunter2" not in f"{url!r} {url}"


@pytest.mark.parametrize(
    "text, message",
    [
        ("http://example.org/", "scheme must be one of"),
        ("ftp:///nohost", "no host"),
        ("ftp://host:99999/", "port must be a number"),
        ("ftp://host/a\nb", "control character"),
    ],
)
def test_bad_urls(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_url(text)


def test_bad_url_in_a_job_file_hides_the_password(probe_kind: object) -> None:
    from engine.errors import SpecError

    with pytest.raises(SpecError) as caught:
        parse_job_text("jobs:\n  - {name: a, kind: test.probe, count: 'ftp://u:topsecret@h/'}\n", "f.yaml")
    assert "topsecret" not in str(caught.value)


def test_credentials_from_host_block_then_netrc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, probe_kind: object) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine other.example.org login carol password fromnetrc\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    file = parse_job_text(
        "hosts:\n  ftp.example.org:\n    user: dave\n    password: fromhost\njobs: []\n", "f.yaml"
    )
    from_host = file.with_credentials(parse_url("ftp://ftp.example.org/"))
    assert (from_host.user, from_host.secret()) == ("dave", "fromhost")
    from_netrc = file.with_credentials(parse_url("ftp://other.example.org/"))
    assert (from_netrc.user, from_netrc.secret()) == ("carol", "fromnetrc")
    explicit = file.with_credentials(parse_url("ftp://erin:inurl@ftp.example.org/"))
    assert (explicit.user, explicit.secret()) == ("erin", "inurl")
    assert isinstance(file.hosts["ftp.example.org"].password, SecretStr)
    assert "fromhost" not in repr(file.hosts)
