"""Smoke test of the INN fixture (tests/servers/inn.py) with the stdlib NNTP client:
articles fed through innd must come back through nnrpd with their threading headers,
bodies and overview intact, and the extras (refusals, logins, two servers) must hold."""

from __future__ import annotations

import os
import warnings
from datetime import datetime, timezone
from pathlib import Path

import pytest

with warnings.catch_warnings():  # deprecated since 3.11, removed in 3.13
    warnings.simplefilter("ignore", DeprecationWarning)
    import nntplib

from tests.servers.inn import (  # noqa: F401  (news_server is a fixture)
    NewsServer,
    PostError,
    make_article,
    news_server,
    start_news_server,
)

ALPHA = "xfer.test.alpha"
BETA = "xfer.test.beta"
# Dot-stuffing, an empty line, 8-bit text.
BODY = "line one of {i}\n.starts with a dot\n..two dots\n\nGr\u00fc\u00dfe {i}\n"


def _connect(server: NewsServer, port: int | None = None, **login: str) -> nntplib.NNTP:
    return nntplib.NNTP(server.host, port or server.reader_port, readermode=False,
                        usenetrc=False, timeout=30, **login)


def _thread() -> list[tuple[str, str, list[str], str]]:
    """50 articles as (newsgroups, subject, references, message-id): a 40-article tree
    in alpha (article i answers (i-1)//2) with every tenth crossposted to beta, and a
    10-article chain in beta."""
    out: list[tuple[str, str, list[str], str]] = []
    ids = [f"<alpha.{i}@xfer.test>" for i in range(40)]
    for i in range(40):
        refs: list[str] = []
        parent = i
        while parent:
            parent = (parent - 1) // 2
            refs.insert(0, ids[parent])
        groups = f"{ALPHA},{BETA}" if i % 10 == 9 else ALPHA
        out.append((groups, f"alpha {i}" if i == 0 else f"Re: alpha {i}", refs, ids[i]))
    chain = [f"<beta.{i}@xfer.test>" for i in range(10)]
    for i in range(10):
        out.append((BETA, f"beta {i}", chain[:i], chain[i]))
    return out


def test_articles_fed_to_innd_are_read_back_through_nnrpd(news_server: NewsServer) -> None:  # noqa: F811
    news_server.create_group(ALPHA, "Alpha test group")
    news_server.create_group(BETA)
    spec = _thread()
    old = datetime(2001, 9, 9, 1, 46, 40, tzinfo=timezone.utc)  # artcutoff is off
    articles = [
        make_article(groups, subject, BODY.format(i=n), message_id=mid, references=refs,
                     date=old if n % 2 else None)
        for n, (groups, subject, refs, mid) in enumerate(spec)
    ]
    assert news_server.post_articles(articles) == [mid for *_, mid in spec]

    with _connect(news_server) as client:
        _, count, first, last, _ = client.group(ALPHA)
        assert (count, first, last) == (40, 1, 40)
        _, count, first, last, _ = client.group(BETA)
        assert (count, first, last) == (14, 1, 14)

        # INN still spells the metadata fields the RFC 2980 way ("Bytes:", not ":bytes").
        _, fmt = client._longcmdstring("LIST OVERVIEW.FMT")
        assert fmt == ["Subject:", "From:", "Date:", "Message-ID:", "References:",
                       "Bytes:", "Lines:", "Xref:full"]

        client.group(ALPHA)
        _, overviews = client.over((1, 40))
        alpha = [s for s in spec if ALPHA in s[0]]
        assert [num for num, _ in overviews] == list(range(1, 41))
        assert [ov["subject"] for _, ov in overviews] == [s[1] for s in alpha]
        assert [ov["message-id"] for _, ov in overviews] == [s[3] for s in alpha]
        assert [ov["references"] for _, ov in overviews] == [" ".join(s[2]) for s in alpha]
        assert all(int(ov[":lines"]) == 5 and int(ov[":bytes"]) > 0 for _, ov in overviews)
        crossposted = overviews[9][1]["xref"]
        assert f"{ALPHA}:10" in crossposted and f"{BETA}:" in crossposted

        _, info = client.body("<alpha.3@xfer.test>")
        assert info.lines == BODY.format(i=3).encode().splitlines()
        _, info = client.body("40")  # by number in the current group
        assert info.message_id == "<alpha.39@xfer.test>"

        groups = {g.group: g for g in client.list("xfer.test.*")[1]}
        assert set(groups) == {ALPHA, BETA} and groups[ALPHA].flag == "y"
        assert client.descriptions("xfer.test.*")[1] == {ALPHA: "Alpha test group"}

        # nnrpd hands POSTs to innd too: the slow path, but the one clients use.
        client.post(make_article(BETA, "posted by a reader", "hello\n"))
        assert client.group(BETA)[1] == 15


def test_refusals_logins_and_two_servers_at_once(tmp_path: Path) -> None:
    first = start_news_server(tmp_path)
    second = start_news_server(tmp_path, users={"alice": "s3cret"})
    try:
        assert len({first.feed_port, first.reader_port, second.feed_port,
                    second.reader_port, second.auth_port}) == 5
        assert first.root != second.root
        article = make_article("xfer.test.one", "same id on both", "body\n",
                               message_id="<shared@xfer.test>")
        for server in (first, second):
            server.create_group("xfer.test.one")
            server.post_articles([article])
        with pytest.raises(PostError) as refused:
            first.post_articles([article, make_article("no.such.group", "lost", "x\n")])
        assert list(refused.value.refused.values())[0] == "439 Duplicate"
        assert "Unwanted newsgroup" in list(refused.value.refused.values())[1]

        assert second.auth_port is not None
        with _connect(second, second.auth_port) as anonymous:
            with pytest.raises(nntplib.NNTPTemporaryError, match="^480"):
                anonymous.group("xfer.test.one")
        with pytest.raises(nntplib.NNTPTemporaryError, match="^481"):
            _connect(second, second.auth_port, user="alice", password="wrong")
        with _connect(second, second.auth_port, user="alice", password="s3cret") as alice:
            assert alice.group("xfer.test.one")[1] == 1
    finally:
        first.stop()  # graceful path: ctlinnd shutdown
        second.stop(graceful=False)
    for server in (first, second):
        assert not server.root.exists()
        assert all(proc.returncode is not None for proc in server._procs)
        with pytest.raises(ProcessLookupError):
            os.kill(server._procs[0].pid, 0)
    assert first.log_dir is not None and (first.log_dir / "news").exists()
