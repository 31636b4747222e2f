"""The `nntp.scan` spec model (validation only: see `engine/kinds/__init__.py`)."""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from xfer.kinds.nntp_scan import GROUP_NAME
from xfer.news.match_spec import Match
from xfer.news.ranges import parse_articles
from xfer.spec import JobSpec, url_field

_MESSAGE_ID = re.compile(r"^<[^<>\s]+>$")


class NntpScanSpec(JobSpec):
    kind: Literal["nntp.scan"]
    server: url_field("nntp", "nntps")  # type: ignore[valid-type]
    groups: list[str] = Field(min_length=1, description="group names and wildmat patterns (comp.lang.*)")
    first: int | None = Field(None, ge=1, description="only the oldest N article numbers of each group")
    last: int | None = Field(None, ge=1, description="only the newest N article numbers of each group")
    since: datetime | date | None = Field(None, description="only articles dated at or after this")
    articles: str | None = Field(None, description="an explicit 'first-last' number range")
    chunk: int | None = Field(None, ge=1, le=100_000, description="articles per task (default 2000, 200 with bodies)")
    match: Match | None = None
    fetch: Literal["none", "matched", "all"] = "none"
    excerpt: int | None = Field(None, ge=1, description="keep the first N meaningful body lines")
    threads: bool = Field(False, description="write thread id and depth (jwz threading)")
    kill_threads: list[str] = Field(default_factory=list, description="Message-IDs whose threads are dropped")
    jsonl: Path | None = None
    sqlite: Path | None = None
    active_ttl: float = Field(3600.0, ge=0, description="seconds a LIST ACTIVE answer stays cached")

    @field_validator("groups")
    @classmethod
    def _groups(cls, groups: list[str]) -> list[str]:
        for group in groups:
            if not GROUP_NAME.match(group):
                raise ValueError(f"group {group!r}: no spaces or control characters in group names")
        return groups

    @field_validator("articles")
    @classmethod
    def _articles(cls, value: str | None) -> str | None:
        if value is not None:
            parse_articles(value)
        return value

    @field_validator("kill_threads")
    @classmethod
    def _kill(cls, ids: list[str]) -> list[str]:
        for message_id in ids:
            if not _MESSAGE_ID.match(message_id):
                raise ValueError(f"{message_id!r} is not a Message-ID like '<id@host>'")
        return ids

    @model_validator(mode="after")
    def _coherent(self) -> NntpScanSpec:
        if sum(option is not None for option in (self.first, self.last, self.since, self.articles)) > 1:
            raise ValueError("give at most one of first, last, since, articles (none: incremental)")
        if self.jsonl is None and self.sqlite is None:
            raise ValueError("give an output: jsonl, sqlite, or both")
        if self.fetch == "matched" and self.match is None:
            raise ValueError("fetch: matched needs a match filter")
        if self.fetch == "all" and self.match is not None:
            raise ValueError("with a match filter use fetch: matched (fetch: all means every article)")
        if self.excerpt is not None and self.fetch == "none":
            raise ValueError("excerpt needs bodies: set fetch to matched or all")
        return self
