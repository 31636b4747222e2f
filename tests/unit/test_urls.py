"""Job URLs: parsing, defaults, credentials, and passwords that never print."""

from __future__ import annotations

from pathlib import Path

import pytest

from xfer.spec import parse_job_text
from xfer.errors import PermanentError
from xfer.urls import Secret, netrc_credentials, parse_url


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
    from xfer.errors import SpecError

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
    assert isinstance(file.hosts["ftp.example.org"].password, Secret)
    assert "fromhost" not in repr(file.hosts)


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o606], ids=lambda mode: f"{mode:04o}")
def test_netrc_with_passwords_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "netrc"
    path.write_text("machine ftp.example.org login carol password s3cret-netrc\n")
    path.chmod(mode)
    with pytest.raises(PermanentError) as caught:
        netrc_credentials("ftp.example.org", path)
    message = str(caught.value)
    assert f"chmod 600 {path}" in message and f"{mode:04o}" in message
    assert "s3cret-netrc" not in message


def test_private_netrc_and_netrc_without_password_are_used(tmp_path: Path) -> None:
    path = tmp_path / "netrc"
    path.write_text("machine ftp.example.org login carol password s3cret-netrc\nmachine anon.example.org login anonymous\n")
    path.chmod(0o600)
    user, password = netrc_credentials("ftp.example.org", path)
    assert (user, password.get_secret_value() if password else None) == ("carol", "s3cret-netrc")
    path.chmod(0o644)  # a login without a password is no secret
    assert netrc_credentials("anon.example.org", path)[0] == "anonymous"
