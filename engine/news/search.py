"""`xfer news search DB "query"`: full-text search of a harvest database.

Query syntax: words (all must occur), `OR` between alternatives, `NOT`, parentheses
and "quoted phrases" — e.g. `asyncio (ftp OR nntp) NOT twisted`. Each word is
quoted before it reaches FTS5, so punctuation in a word (`c++`, `foo-bar`) is
searched for, never parsed as FTS5 syntax."""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import sys
from pathlib import Path
from typing import Any


_TOKEN = re.compile(r'"([^"]*)"|(\()|(\))|([^\s()"]+)')
_OPERATORS = {"AND", "OR", "NOT"}


class QueryError(ValueError):
    """The query cannot be searched (empty, unbalanced, or an operator out of place)."""


def fts_query(text: str) -> str:
    """The FTS5 MATCH expression for a user query."""
    parts: list[str] = []
    depth = 0
    for phrase, opening, closing, word in _TOKEN.findall(text):
        if opening:
            depth += 1
            parts.append("(")
        elif closing:
            depth -= 1
            if depth < 0:
                raise QueryError("unbalanced ')' in query")
            parts.append(")")
        elif word in _OPERATORS:
            parts.append(word)
        else:
            term = phrase or word
            if term.strip():
                parts.append('"' + term.replace('"', '""') + '"')
    if depth:
        raise QueryError("unbalanced '(' in query")
    if not any(part not in _OPERATORS and part not in "()" for part in parts):
        raise QueryError("empty query")
    return " ".join(parts)


def search(db: sqlite3.Connection, query: str, *, limit: int = 20, group: str | None = None) -> list[dict[str, Any]]:
    """Matching articles, best first."""
    sql = """SELECT a.server, a.grp, a.number, a.message_id, a.date, a.sender, a.subject, a.thread_id,
                    snippet(articles_fts, 2, '[', ']', '...', 12)
             FROM articles_fts JOIN articles AS a ON a.id = articles_fts.rowid
             WHERE articles_fts MATCH ?"""
    params: list[Any] = [fts_query(query)]
    if group:
        sql += " AND a.grp GLOB ?"
        params.append(group)
    sql += " ORDER BY rank LIMIT ?"
    params.append(limit)
    try:
        rows = db.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        raise QueryError(f"cannot search: {exc}") from None
    keys = ("server", "group", "number", "message_id", "date", "from", "subject", "thread_id", "snippet")
    return [dict(zip(keys, row)) for row in rows]


def _cmd_search(args: argparse.Namespace) -> int:
    path = Path(args.db)
    if not path.is_file():
        print(f"xfer news search: {path}: no such database", file=sys.stderr)
        return 2
    from xfer.news.database import connect  # not imported by every run that registers this command

    db = connect(path)
    try:
        hits = search(db, args.query, limit=args.limit, group=args.group)
    except QueryError as exc:
        print(f"xfer news search: {exc}", file=sys.stderr)
        return 2
    except sqlite3.DatabaseError as exc:
        print(f"xfer news search: {path}: not a harvest database ({exc})", file=sys.stderr)
        return 2
    finally:
        db.close()
    for hit in hits:
        if args.json:
            print(json.dumps(hit, ensure_ascii=False))
            continue
        print(f"{hit['group']}:{hit['number']}  {hit['date']}  {hit['from']}")
        print(f"    {hit['subject']}")
        if hit["snippet"]:
            print(f"    {' '.join(hit['snippet'].split())}")
    return 0 if hits else 1


def register_cli(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    news = subparsers.add_parser("news", help="work with harvested news (nntp.scan outputs)")
    commands = news.add_subparsers(dest="news_command", metavar="COMMAND", required=True)
    find = commands.add_parser("search", help="full-text search of an nntp.scan SQLite output")
    find.add_argument("db", metavar="DB", help="the SQLite file an nntp.scan job wrote")
    find.add_argument("query", help='words (AND), OR, NOT, (...), "phrases"')
    find.add_argument("--limit", type=int, default=20, metavar="N", help="at most N matches (default 20)")
    find.add_argument("--group", metavar="GLOB", help="only groups matching GLOB, e.g. 'comp.lang.*'")
    find.add_argument("--json", action="store_true", help="one JSON object per match")
    find.set_defaults(handler=_cmd_search)
