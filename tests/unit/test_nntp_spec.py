"""nntp.scan job files: contradictions rejected before any connection; error translation."""

from __future__ import annotations

import warnings

import pytest

from xfer.errors import AuthError, ConnectionLimitError, PermanentError, SpecError, TransientError
from xfer.protocols.nntp import NoSuchArticle, NoSuchGroup, translate
from xfer.kinds.nntp_scan import incremental, needs_bodies
from xfer.spec import parse_job_text

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import nntplib

BASE = "jobs:\n  - name: n\n    kind: nntp.scan\n    server: nntp://news.example.org\n    groups: [comp.lang.python]\n"


def test_minimal_job_is_valid() -> None:
    job = parse_job_text(BASE + "    jsonl: out.jsonl\n", "t.yaml").jobs[0]
    assert incremental(job) and not needs_bodies(job) and job.server.port == 119  # type: ignore[arg-type, attr-defined]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("", "give an output"),
        ("    jsonl: a\n    last: 5\n    articles: 1-9\n", "at most one of first, last, since, articles"),
        ("    jsonl: a\n    first: 5\n    last: 5\n", "at most one of first, last, since, articles"),
        ("    jsonl: a\n    first: 0\n", r"t.yaml:7:12: jobs\[0\].first: must be >= 1"),
        ("    jsonl: a\n    fetch: matched\n", "fetch: matched needs a match"),
        ("    jsonl: a\n    fetch: all\n    match: {subject: {any: [x]}}\n", "use fetch: matched"),
        ("    jsonl: a\n    excerpt: 5\n", "excerpt needs bodies"),
        ("    jsonl: a\n    articles: 9-1\n", "first <= last"),
        ("    jsonl: a\n    kill_threads: [nobrackets]\n", "not a Message-ID"),
        ("    jsonl: a\n    match: {subject: {}}\n", "give 'all' or 'any'"),
    ],
)
def test_contradictions_rejected(extra: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        parse_job_text(BASE + extra, "t.yaml")


def test_bad_group_name_and_scheme() -> None:
    with pytest.raises(SpecError, match="no spaces"):
        parse_job_text(BASE.replace("[comp.lang.python]", '["comp lang"]') + "    jsonl: a\n", "t.yaml")
    with pytest.raises(SpecError, match="scheme"):
        parse_job_text(BASE.replace("nntp://", "ftp://") + "    jsonl: a\n", "t.yaml")


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (nntplib.NNTPTemporaryError("400 too many connections from your host"), ConnectionLimitError),
        (nntplib.NNTPPermanentError("502 Too many connections"), ConnectionLimitError),
        (nntplib.NNTPTemporaryError("481 Authentication failed"), AuthError),
        (nntplib.NNTPTemporaryError("480 Authentication required"), AuthError),
        (nntplib.NNTPTemporaryError("411 No such group x"), NoSuchGroup),
        (nntplib.NNTPTemporaryError("430 No such article"), NoSuchArticle),
        (nntplib.NNTPTemporaryError("403 internal fault"), TransientError),
        (nntplib.NNTPPermanentError("500 what?"), PermanentError),
        (EOFError(), TransientError),
        (ConnectionResetError(104, "reset"), TransientError),
    ],
)
def test_translate(exc: BaseException, kind: type) -> None:
    translated = translate(exc, "h:119")
    assert type(translated) is kind
    assert str(translated).startswith("h:119: ")


def test_translate_hides_an_echoed_password() -> None:
    assert "s3cret" not in str(translate(nntplib.NNTPTemporaryError("481 bad password s3cret"), "h:119", "s3cret"))
