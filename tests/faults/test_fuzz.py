"""Item 9: fuzzing the parsers that read what users and servers send: the job-file
loader (YAML + spec), FTP listing lines (LIST, MLSD, MDTM) and NNTP overview blocks.

Each target runs hypothesis for a time budget: `XFER_FUZZ_SECONDS` (default 60 when
CI=true, which the CI runner's environment sets, not `.ci/run`: by hand, run
`CI=true bash .ci/run` for the same budget; else 5). Examples are drawn fresh in every
round (no example database). The promise tested: no crash, no hang, only the
parser's own clean error (SpecError, ListingError; the overview parser skips bad
lines and never raises)."""

from __future__ import annotations

import os
import string
import time
from collections.abc import Callable
from datetime import datetime

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from xfer.errors import SpecError
from xfer.news.overview import OverviewFormat
from xfer.protocols.nntp import split_hdr_lines
from xfer.protocols.ftp_listing import ListingError, parse_list_line, parse_mdtm, parse_mlsd_line
from xfer.spec import parse_job_text

#: Digit runs long enough for int()'s 4,300-digit limit (hypothesis rarely draws them).
_LONG_DIGITS = st.integers(1, 6000).map(lambda n: "7" * n)

BUDGET = float(os.environ.get("XFER_FUZZ_SECONDS", "60" if os.environ.get("CI") == "true" else "5"))
#: No single input may take this long (a hang, or super-linear work).
SLOW = 2.0

pytestmark = pytest.mark.timeout(int(BUDGET * 3 + 120))


def fuzz_for(seconds: float, test: Callable[[], None]) -> int:
    """Run a @given test round after round until `seconds` have passed; rounds."""
    rounds = 0
    deadline = time.monotonic() + seconds
    while rounds == 0 or time.monotonic() < deadline:
        test()
        rounds += 1
    return rounds


def _timed(call: Callable[[], object]) -> None:
    started = time.monotonic()
    try:
        call()
    finally:
        assert time.monotonic() - started < SLOW, "one input took too long"


ROUND = settings(
    max_examples=200, deadline=None, database=None, derandomize=False,
    suppress_health_check=list(HealthCheck),
)

# ------------------------------------------------------------------- job files

_KEYS = ["jobs", "defaults", "hosts", "name", "kind", "remote", "local", "server", "groups", "smtp",
         "max_connections", "retries", "task_timeout", "include", "exclude", "delete", "files",
         "envelope", "from", "to", "count", "jsonl", "state", "password", "tls_verify", "size"]
_KINDS = ["ftp.mirror", "ftp.pull", "nntp.scan", "mail.load", "mail.roundtrip", "nope"]
_SCALARS = st.one_of(
    st.sampled_from(_KINDS), st.integers(-2**70, 2**70), st.floats(allow_nan=True), st.booleans(), st.none(),
    st.sampled_from(["ftp://h/p", "ftps://u:p@h:99999/", "nntp://[::1]:119", "smtp://h", "${HOME}", "${NOPE}",
                     "$${X}", "64k", "-1M", "1e400", "", "a" * 300, "\u202e", "\x85"]),
    st.text(max_size=20),
)
#: Glob patterns, invalid ones included: each must be a clean SpecError, never a crash.
_PATTERNS = st.one_of(
    st.sampled_from(["[z-a]", "[", "[]", "[!]", "**/[b-a]*", "a/[", "!keep", "#x", "\\!x", "/", "//", "**",
                     "***", "tmp/", "/top", "a/**/b", "\\", "[[:alpha:]]", "*.tar.gz", " ", ""]),
    st.text(alphabet="*?[]!^-/\\{}abz.#", max_size=12),
)
_GLOB_JOBS = st.builds(
    lambda kind, include, exclude: {"jobs": [{"name": "g", "kind": kind, "remote": "ftp://h/", "local": "out",
                                              ("files" if kind == "ftp.pull" else "include"): include,
                                              "exclude": exclude}]},
    st.sampled_from(["ftp.mirror", "ftp.pull"]), st.lists(_PATTERNS, max_size=3), st.lists(_PATTERNS, max_size=3),
)
_DATA = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(_KEYS) | st.text(max_size=8), inner, max_size=5),
    max_leaves=30,
)


def _document(data: object) -> str:
    return yaml.safe_dump(data, allow_unicode=True, default_flow_style=False)


_YAML_TEXT = st.one_of(
    st.text(max_size=300),
    st.text(alphabet=":-[]{}&*!|>'\"%@`#,? \n\t" + string.ascii_letters, max_size=200),
    _DATA.map(_document),
    st.builds(lambda data, cut, junk: (_document(data)[:cut] + junk), _DATA, st.integers(0, 400), st.text(max_size=20)),
    _GLOB_JOBS.map(_document),
)


@given(_YAML_TEXT)
@ROUND
def _job_file_round(text: str) -> None:
    def parse() -> None:
        try:
            parse_job_text(text, "fuzz.yaml")
        except SpecError as exc:  # a line per problem, each naming the file
            assert all(line.startswith("fuzz.yaml") for line in str(exc).splitlines()), str(exc)

    _timed(parse)


def test_fuzz_job_files() -> None:
    assert fuzz_for(BUDGET, _job_file_round) >= 1


@given(_GLOB_JOBS)
@ROUND
def _glob_round(data: dict[str, object]) -> None:
    try:
        parse_job_text(_document(data), "fuzz.yaml")
    except SpecError as exc:
        assert all(line.startswith("fuzz.yaml:") for line in str(exc).splitlines()), str(exc)


def test_fuzz_glob_patterns() -> None:
    assert fuzz_for(BUDGET, _glob_round) >= 1


def test_alias_bomb_is_refused_quickly() -> None:
    """A 'billion laughs' file: aliases nest so the expanded tree would be huge."""
    lines = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for level in "bcdefghi":
        previous = chr(ord(level) - 1)
        lines.append(f"{level}: &{level} [" + ", ".join([f"*{previous}"] * 9) + "]")
    text = "\n".join(lines) + "\njobs: [{name: x, kind: ftp.mirror, remote: 'ftp://h/', local: out, include: *i}]\n"
    _timed(lambda: pytest.raises(SpecError, parse_job_text, text, "bomb.yaml"))


# ------------------------------------------------------------- FTP listings

_NOW = datetime(2024, 6, 1, 12, 0)
_LIST_LIKE = st.builds(
    lambda perm, ids, size, date, name: f"{perm} {ids} {size} {date} {name}",
    st.text(alphabet="-dlrwxsStT?bcp", min_size=10, max_size=11),
    st.text(alphabet=" \t1 user group" + string.digits, max_size=30),
    st.one_of(st.integers(0, 10**30).map(str), st.just("12, 3"), _LONG_DIGITS),
    st.sampled_from(["Jan  1 12:00", "Feb 30 2024", "Dec 31 99:99", "2024-02-30 25:61", "Foo 1 1:1"]),
    st.text(max_size=40),
)
_DOS_LIKE = st.builds(
    lambda date, time_, size, name: f"{date}  {time_}  {size} {name}",
    st.sampled_from(["01-23-24", "13-45-2024", "02/29/2023", "00-00-00"]),
    st.sampled_from(["03:04PM", "25:99AM", "12:00", "00:00pm"]),
    st.one_of(st.just("<DIR>"), st.integers(0, 10**25).map(lambda n: f"{n:,}"), _LONG_DIGITS),
    st.text(max_size=30),
)
_MLSD_LIKE = st.builds(
    lambda facts, name: ";".join(facts) + "; " + name,
    st.lists(
        st.one_of(
            st.sampled_from(["type=file", "type=dir", "type=cdir", "type=OS.unix=slink:/x", "perm=r", "unique=1"]),
            st.builds("size={}".format, st.one_of(st.integers(-5, 10**25), _LONG_DIGITS)),
            st.builds("modify={}".format, st.sampled_from(["20240230120000", "99999999999999", "2024", "20240101120000.5"])),
            st.text(max_size=15),
        ),
        max_size=6,
    ),
    st.text(max_size=30),
)


@given(st.one_of(_LIST_LIKE, _DOS_LIKE, _MLSD_LIKE, st.text(max_size=200)))
@ROUND
def _listing_round(line: str) -> None:
    for parse in (lambda: parse_list_line(line, now=_NOW), lambda: parse_mlsd_line(line), lambda: parse_mdtm(line)):
        def call(parse: Callable[[], object] = parse) -> None:
            try:
                parse()
            except ListingError:
                pass

        _timed(call)


def test_fuzz_ftp_listing_lines() -> None:
    assert fuzz_for(BUDGET, _listing_round) >= 1


# ------------------------------------------------------------ NNTP overview

_FIELD = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"=?utf-8?q?caf=C3=A9?=", b"=?bogus?x?zz?=", b"<a@b> <c@d>", b"Xref: h g:1", b"\xff\xfe"]),
    _LONG_DIGITS.map(str.encode),
)
_OVER_LINE = st.builds(
    lambda number, fields: number + b"\t" + b"\t".join(fields),
    st.one_of(st.integers(0, 10**20).map(lambda n: str(n).encode()), _LONG_DIGITS.map(str.encode), st.binary(max_size=6)),
    st.lists(_FIELD, max_size=12),
)
_FORMATS = st.one_of(
    st.none(),
    st.lists(st.one_of(st.sampled_from(["Subject:", "From:", "Xref:full", ":bytes", ":lines", "Date:"]), st.text(max_size=12)), max_size=10),
)


@given(_FORMATS, st.lists(_OVER_LINE, max_size=20), st.binary(max_size=50))
@example(None, [b"7" * 5000 + b"\ts\tf\td\t<i>\t\t" + b"9" * 5000 + b"\t1"], b"")  # was a ValueError
@ROUND
def _overview_round(fmt: list[str] | None, lines: list[bytes], junk: bytes) -> None:
    def parse() -> None:
        records = OverviewFormat.from_lines(fmt).parse(b"\r\n".join(lines) + junk, {"group": "g"})
        assert all(isinstance(record["number"], int) for record in records)

    _timed(parse)


def test_fuzz_overview_blocks() -> None:
    assert fuzz_for(BUDGET, _overview_round) >= 1


def test_huge_numbers_are_skipped_not_fatal() -> None:
    """int() refuses over 4,300 digits: such a line (or XHDR line) is skipped."""
    block = b"7" * 5000 + b"\ts\tf\td\t<i>\t\t12\t1\r\n5\ts\tf\td\t<j>\t\t" + b"9" * 5000 + b"\t1"
    records = OverviewFormat().parse(block)
    assert [(r["number"], r["message_id"], r["bytes"]) for r in records] == [(5, "<j>", None)]
    assert list(split_hdr_lines(b"9" * 5000 + b" x\r\n7 y")) == [(7, b"y")]
