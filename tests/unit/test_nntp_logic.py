"""Pure logic of nntp.scan: overview parsing, filters, excerpts, ranges, ordering, search syntax."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from xfer.news.database import SqliteOutput
from xfer.news.excerpt import excerpt
from xfer.news.jsonl import JsonlOutput
from xfer.news.match import body_passes, headers_pass
from xfer.news.match_spec import Match
from xfer.news.overview import OverviewFormat, decode_text, records_from_columns
from xfer.news.ranges import chunks, dated_since, parse_articles, scan_range
from xfer.news.search import QueryError, fts_query, search
from xfer.news.sequencer import Sequencer
from xfer.specvalidate import to_record

INN_FORMAT = ["Subject:", "From:", "Date:", "Message-ID:", "References:", "Bytes:", "Lines:", "Xref:full"]


def test_overview_with_extra_full_field() -> None:
    fmt = OverviewFormat.from_lines(INN_FORMAT + ["X-Trace:full"])
    block = (
        b"7\tHello =?utf-8?q?w=C3=B6rld?=\tA <a@x>\tMon, 1 Jan 2024 10:00:00 +0000\t<m7@x>\t<r1@x> <r2@x>\t321\t4"
        b"\tXref: host comp.lang.python:7\tX-Trace: abc\r\n"
        b"8\tcaf\xe9\tB <b@x>\t\t<m8@x>\t\t\t\tXref: host g:8\t\r\n"
    )
    first, second = fmt.parse(block)
    assert first["number"] == 7 and first["subject"] == "Hello wörld"
    assert first["references"] == ["<r1@x>", "<r2@x>"]
    assert (first["bytes"], first["lines"]) == (321, 4)
    assert first["xref"] == "host comp.lang.python:7"
    assert first["headers"] == {"x-trace": "abc"}
    assert second["subject"] == "café"  # Latin-1 fallback
    assert second["bytes"] is None and "headers" not in second


def test_overview_skips_garbage_lines() -> None:
    fmt = OverviewFormat.from_lines(None)
    assert [r["number"] for r in fmt.parse(b"junk\r\n\r\n12\ts\tf\td\t<i>\t\t1\t1\r\n")] == [12]


def test_metadata_names_in_format() -> None:
    fmt = OverviewFormat.from_lines(["Subject:", "From:", "Date:", "Message-ID:", "References:", ":bytes", ":lines"])
    assert fmt.fields[-2:] == ("bytes", "lines")


def test_records_from_hdr_columns() -> None:
    records = records_from_columns(
        {"subject": [(2, b"b"), (1, b"a")], "message-id": [(1, b"<1@x>"), (2, b"<2@x>")], "references": [(2, b"(none)")]}
    )
    assert [(r["number"], r["subject"], r["references"]) for r in records] == [(1, "a", []), (2, "b", [])]


def test_decode_text_survives_bad_encoded_words() -> None:
    assert decode_text(b"=?x-unknown?q?abc?=") == "=?x-unknown?q?abc?="


def test_match_all_any_case_insensitive() -> None:
    model = Match.model_validate({"subject": {"any": ["AsyncIO", "ftp"]}, "from": {"all": ["alice"]}, "body": {"all": ["python", "loop"]}})
    match = to_record(model)  # what a run filters with
    assert headers_pass(match, {"subject": "Re: asyncio tips", "from": "Alice <a@x>"})
    assert not headers_pass(match, {"subject": "Re: asyncio tips", "from": "Bob <b@x>"})
    assert not headers_pass(match, {"subject": "perl", "from": "Alice"})
    assert body_passes(match, "PYTHON event LOOP")
    assert not body_passes(match, "python only")


@pytest.mark.parametrize("bad", [{}, {"subject": {}}, {"subject": {"any": [" "]}}, {"title": {"any": ["x"]}}])
def test_match_rejects_empty_or_unknown(bad: dict) -> None:
    with pytest.raises(ValidationError):
        Match.model_validate(bad)


def test_excerpt_rules() -> None:
    body = (
        "\n\nIn article <abc@x>, Bob <b@x> wrote:\n> quoted\n| also quoted\n"
        "First line.\n\n\n\n> more quote\n\nSecond line.\n>>> import asyncio\n>>>\n"
        ">>>> deeply quoted\nThird.\nFourth.\n-- \nsignature\n"
    )
    assert excerpt(body, 20) == ["First line.", "", "Second line.", ">>> import asyncio", ">>>", "Third.", "Fourth."]
    assert excerpt(body, 2) == ["First line.", "", "Second line."]
    assert excerpt("> only quotes\n", 5) == []


@given(st.text(alphabet=st.sampled_from(["a", " ", ">", "\n", "|", "-"]), max_size=200), st.integers(1, 10))
def test_excerpt_invariants(body: str, limit: int) -> None:
    lines = excerpt(body, limit)
    assert len([line for line in lines if line]) <= limit
    assert not lines or (lines[0] and lines[-1])
    assert all(not (a == "" and b == "") for a, b in zip(lines, lines[1:]))
    assert not any(line.startswith(("|", "> ")) for line in lines)


def test_scan_range_modes() -> None:
    assert scan_range(10, 100, 91) == (10, 100)
    assert scan_range(10, 100, 91, mark=100) is None  # nothing new: no OVER at all
    assert scan_range(10, 100, 91, mark=50) == (51, 100)
    assert scan_range(10, 100, 91, mark=5) == (10, 100)  # expired below the mark
    assert scan_range(10, 100, 91, mark=500) == (10, 100)  # renumbered server
    assert scan_range(10, 100, 91, last_n=1) == (100, 100)
    assert scan_range(10, 100, 91, last_n=1000) == (10, 100)
    assert scan_range(10, 100, 91, first_n=1) == (10, 10)
    assert scan_range(10, 100, 91, first_n=5, mark=50) == (10, 14)  # a range, not incremental
    assert scan_range(10, 100, 91, first_n=1000) == (10, 100)
    assert scan_range(10, 100, 91, articles=(1, 20)) == (10, 20)
    assert scan_range(10, 100, 91, articles=(200, 300)) is None
    assert scan_range(1, 0, 0) is None


def test_chunks_cover_range_exactly() -> None:
    assert chunks(5, 14, 4) == [(5, 8), (9, 12), (13, 14)]
    assert chunks(3, 3, 100) == [(3, 3)]


@pytest.mark.parametrize("text", ["5", "9-3", "a-b", "0-4", "-"])
def test_parse_articles_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_articles(text)


def test_dated_since() -> None:
    since = datetime(2024, 1, 1, tzinfo=timezone.utc)
    assert dated_since("Mon, 01 Jan 2024 00:00:00 +0000", since)
    assert not dated_since("Sun, 31 Dec 2023 23:59:59 +0000", since)
    assert not dated_since("not a date", since)


def test_sequencer_releases_in_order_and_ignores_repeats() -> None:
    seq = Sequencer()
    assert seq.add("g", 1, 20, [{"n": 2}]) == []
    assert seq.add("g", 2, 30, [{"n": 3}]) == []
    assert seq.add("g", 0, 10, [{"n": 1}]) == [(10, [{"n": 1}]), (20, [{"n": 2}]), (30, [{"n": 3}])]
    assert seq.add("g", 1, 20, [{"n": 2}]) == []
    assert seq.add("g", 4, 50, [{"n": 5}]) == []
    assert seq.held_back() == {"g": 1}


@given(st.permutations(range(12)))
def test_sequencer_any_order(order: list[int]) -> None:
    seq = Sequencer()
    out = [high for index in order for high, _ in seq.add("g", index, index * 10, [])]
    assert out == [index * 10 for index in range(12)]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("asyncio ftp", '"asyncio" "ftp"'),
        ("asyncio OR ftp", '"asyncio" OR "ftp"'),
        ('(c++ OR "foo bar") NOT x', '( "c++" OR "foo bar" ) NOT "x"'),
        ('say "hi"', '"say" "hi"'),
    ],
)
def test_fts_query(query: str, expected: str) -> None:
    assert fts_query(query) == expected


@pytest.mark.parametrize("query", ["", "OR", "(a", "a)"])
def test_fts_query_rejects(query: str) -> None:
    with pytest.raises(QueryError):
        fts_query(query)


def _record(number: int, subject: str, body: str | None = None) -> dict:
    record = {"server": "h:119", "group": "g", "number": number, "message_id": f"<{number}@x>", "subject": subject,
              "from": "A <a@x>", "date": "", "references": [], "bytes": 1, "lines": 1}
    if body is not None:
        record["body"] = body
    return record


def test_sqlite_upsert_keeps_body_and_fts_follows(tmp_path: Path) -> None:
    out = SqliteOutput(tmp_path / "n.db")
    out.write([_record(1, "asyncio news", "python loop"), _record(2, "ftp mirror", "lftp")])
    out.write([_record(1, "asyncio news again")])  # a rescan without bodies
    out.commit()
    db = sqlite3.connect(tmp_path / "n.db")
    assert db.execute("SELECT COUNT(*), MAX(body) FROM articles WHERE number = 1").fetchone() == (1, "python loop")
    assert [h["number"] for h in search(db, "again python")] == [1]
    assert [h["number"] for h in search(db, "news OR lftp")] == [1, 2] or [h["number"] for h in search(db, "news OR lftp")] == [2, 1]
    assert search(db, "asyncio ftp") == []
    out.close()


def test_jsonl_append_commit_and_recovery(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    out = JsonlOutput(path, append=True)
    out.recover(None)
    out.open()
    out.write([_record(1, "one")])
    size = out.commit()
    assert not out.staging.exists()
    # a later run appended but died before its marks (and this size) were committed
    with open(path, "a") as f:
        f.write(json.dumps(_record(2, "two")) + "\n")
    out.staging.write_text("half")
    again = JsonlOutput(path, append=True)
    assert again.recover(size) is True
    assert not again.staging.exists()
    assert [json.loads(line)["number"] for line in path.read_text().splitlines()] == [1]


def test_jsonl_replace_mode_and_annotation(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text("old\n")
    out = JsonlOutput(path, append=False)
    out.open()
    out.write([_record(1, "keep"), _record(2, "drop")])
    assert path.read_text() == "old\n"  # nothing visible before commit
    out.commit(lambda r: None if r["subject"] == "drop" else {**r, "depth": 0})
    assert [json.loads(line)["subject"] for line in path.read_text().splitlines()] == ["keep"]
