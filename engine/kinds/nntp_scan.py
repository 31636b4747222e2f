"""`nntp.scan`: harvest overview headers (and bodies) of news groups into JSONL/SQLite.

Planning: wildcard groups are resolved with LIST ACTIVE (cached in the state DB for
`active_ttl` seconds); then one task per group sends GROUP (a group whose
high-water mark has not moved costs that one command); then each group's range is
cut into chunks, one task per chunk (GROUP if the pooled connection has another
group selected, pipelined OVER, optional pipelined BODY), so a big group is read
by all of the server's connections at once. Chunk results go through a sequencer
and are written in article order; the high-water mark only covers chunks written without
a gap. A chunk fetches only when the sequencer gives it its turn, so at most about
`sequencer.HELD_LIMIT` bytes wait behind a slow or failed chunk. Everything a run wrote is committed at its end (outputs first, then marks):
a stopped or crashed run is redone by the next one, with no duplicates.

Example::

    - name: py-watch
      kind: nntp.scan
      server: nntps://reader@news.example.org
      groups: [comp.lang.python, "comp.lang.python.*"]
      match: {subject: {any: [asyncio, ftp]}, body: {all: [python]}}
      fetch: matched
      excerpt: 20
      threads: true
      jsonl: py.jsonl
      sqlite: news.db
"""

from __future__ import annotations

import abc
import re
from collections import Counter
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from xfer.errors import PermanentError
from xfer.job import Job, Task, TaskContext
from xfer.news.jsonl import Encoded, JsonlOutput
from xfer.news.marks import NewsState
from xfer.news.match import body_passes, headers_pass
from xfer.news.overview import HDR_FIELDS, OverviewFormat, decode_text, records_from_columns
from xfer.news.overview_json import OverviewEncoder
from xfer.news.ranges import as_utc, chunks, dated_since, parse_articles, renumbered, scan_range
from xfer.news.search import register_cli as _register_search
from xfer.news.sequencer import Sequencer
from xfer.protocols.nntp import GroupInfo, NntpConnection, NntpConnector, split_hdr_lines
from xfer.urls import Url

if TYPE_CHECKING:
    from xfer.kinds._spec_nntp_scan import NntpScanSpec
    from xfer.news.database import SqliteOutput
    from xfer.news.threads import ThreadInfo

#: Articles per OVER task, and per task when bodies are fetched too.
HEADER_CHUNK = 2000
BODY_CHUNK = 200

GROUP_NAME = re.compile(r"^[^\s\x00-\x1f\x7f]+$")
_WILDCARD = re.compile(r"[*?\[]")


def incremental(spec: NntpScanSpec) -> bool:
    """Whether the scan goes on from where the last one stopped (no range given)."""
    return spec.first is None and spec.last is None and spec.since is None and spec.articles is None


def needs_bodies(spec: NntpScanSpec) -> bool:
    return spec.fetch != "none" or (spec.match is not None and spec.match.body is not None)


class NntpScan(Job):
    kind = "nntp.scan"
    unit, unit_count = "articles", "scanned"  # a chunk item scans many articles

    def __init__(self, spec: NntpScanSpec, ctx: Any) -> None:
        super().__init__(spec, ctx)
        self.spec: NntpScanSpec = spec
        self.url: Url = ctx.file.with_credentials(spec.server)
        host = ctx.host_config(self.url)
        self.connector = NntpConnector(self.url, host)
        self.server = self.url.endpoint
        self.chunk_size = spec.chunk or (BODY_CHUNK if needs_bodies(spec) else HEADER_CHUNK)
        self.since = as_utc(spec.since) if spec.since is not None else None
        self.killed = frozenset(spec.kill_threads)
        self.groups: dict[str, GroupInfo] = {}
        self.sequencer: Sequencer[list[dict[str, Any]] | Encoded] = Sequencer()
        self.written_high: dict[str, int] = {}
        self.commands: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self.thread_input: list[tuple[str, list[str], str]] = []
        self.state: NewsState | None = None
        self.jsonl: JsonlOutput | None = None
        self.sqlite: SqliteOutput | None = None

    def endpoints(self) -> list[Url]:
        return [self.url]

    @property
    def headers_to_jsonl_only(self) -> bool:
        """Whether header records go nowhere but the JSONL file, unfiltered: then OVER
        blocks are encoded straight to JSON lines, with no dict per article."""
        spec = self.spec
        return (
            self.jsonl is not None and self.sqlite is None and not spec.threads and not needs_bodies(spec)
            and spec.match is None and self.since is None and not self.killed
        )

    # -- planning ------------------------------------------------------------------

    async def plan(self) -> AsyncIterator[Task[Any]]:
        self.state = NewsState(self.ctx.state, self.ctx.name, self.server)
        if not self.ctx.dry_run:
            self._open_outputs()
        names = await self._resolve_groups()
        self.counts["groups"] = len(names)
        for name in names:
            yield GroupTask(self, name)
        await self.ctx.barrier()
        overview: OverviewFormat | None = None
        hdr_only = False
        for name in names:
            info = self.groups.get(name)
            if info is None:
                continue  # its GROUP task failed and says why
            span = self._range_for(info)
            if span is None:
                self.counts["groups_unchanged"] += 1
                continue
            if overview is None and not hdr_only:
                lines = await self._with_connection(lambda conn: conn.overview_format(), "LIST OVERVIEW.FMT")
                hdr_only = lines is None
                overview = OverviewFormat.from_lines(lines)
            for index, (low, high) in enumerate(chunks(*span, self.chunk_size)):
                yield ChunkTask(self, name, index, low, high, None if hdr_only else overview)

    async def _with_connection(self, action: Any, label: str) -> Any:
        async def counted(conn: NntpConnection) -> Any:
            before = Counter(conn.commands)
            try:
                return await action(conn)
            finally:
                self.commands.update(conn.commands - before)

        return await self.ctx.with_connection(self.connector, counted, label)

    async def _resolve_groups(self) -> list[str]:
        """Spec order; patterns expand to their groups, sorted; each group once."""
        assert self.state is not None
        names: list[str] = []
        for entry in self.spec.groups:
            if not _WILDCARD.search(entry):
                names.append(entry)
                continue
            cached = self.state.cached_groups(entry, self.spec.active_ttl)
            if cached is None:
                active = await self._with_connection(lambda conn, p=entry: conn.list_active(p), f"LIST ACTIVE {entry}")
                cached = sorted(group.name for group in active if GROUP_NAME.match(group.name))
                self.state.cache_groups(entry, cached)
            if not cached:
                self.ctx.emit("job.note", data={"pattern": entry, "note": "no group matches"})
            names.extend(cached)
        return list(dict.fromkeys(names))

    def _range_for(self, info: GroupInfo) -> tuple[int, int] | None:
        assert self.state is not None
        mark = self.state.mark(info.name) if incremental(self.spec) and not self.ctx.force else None
        if mark is not None and renumbered(mark, info.last):
            self.ctx.emit(
                "job.note",
                data={"group": info.name, "note": f"high-water mark {mark} is above the server's last {info.last}: rescanning"},
            )
        articles = parse_articles(self.spec.articles) if self.spec.articles else None
        return scan_range(info.first, info.last, info.count, mark=mark, first_n=self.spec.first, last_n=self.spec.last, articles=articles)

    def _open_outputs(self) -> None:
        assert self.state is not None
        if self.spec.jsonl is not None:
            self.jsonl = JsonlOutput(self.ctx.resolve(self.spec.jsonl), append=incremental(self.spec))
            if self.jsonl.recover(self.state.output_size(str(self.jsonl.path))):
                self.ctx.emit("job.note", data={"path": str(self.jsonl.path), "note": "cut back to the last committed run"})
            self.jsonl.open()
        if self.spec.sqlite is not None:
            from xfer.news.database import SqliteOutput  # imported only by scans that use it

            self.sqlite = SqliteOutput(self.ctx.resolve(self.spec.sqlite))

    # -- results -------------------------------------------------------------------

    def keep_headers(self, record: dict[str, Any]) -> bool:
        """The filters that need no body: date, killed threads, header keywords."""
        if self.since is not None and not dated_since(record["date"], self.since):
            return False
        if self.killed and (record["message_id"] in self.killed or self.killed.intersection(record["references"])):
            return False
        return self.spec.match is None or headers_pass(self.spec.match, record)

    def add_body(self, record: dict[str, Any], raw: bytes) -> bool:
        """Attach the body (as the spec asks); False when the body filter rejects it."""
        body = decode_text(raw).replace("\r\n", "\n") if raw else ""
        if self.spec.match is not None and not body_passes(self.spec.match, body):
            return False
        if self.spec.fetch != "none":
            record["body"] = body
            if self.spec.excerpt is not None:
                from xfer.news.excerpt import excerpt

                record["excerpt"] = excerpt(body, self.spec.excerpt)
        return True

    def deliver(self, group: str, index: int, high: int, records: list[dict[str, Any]] | Encoded) -> None:
        """A finished chunk: write every chunk now in order, advance the written mark."""
        for chunk_high, chunk_records in self.sequencer.add(group, index, high, records):
            if self.jsonl is not None:
                self.jsonl.write(chunk_records)
            if self.sqlite is not None:
                self.sqlite.write(chunk_records)
            if self.spec.threads and self.sqlite is None:
                self.thread_input.extend((r["message_id"], r["references"], r["subject"]) for r in chunk_records)
            self.written_high[group] = chunk_high
            self.counts["articles_written"] += len(chunk_records)

    async def finish(self) -> None:
        """Commit the run: outputs (with threads) first, then the marks and JSONL size."""
        if self.ctx.dry_run or self.state is None:
            return
        held = self.sequencer.held_back()
        if held:
            self.ctx.emit("job.note", data={"held_back": held, "note": "articles after a failed chunk: the next run reads them again"})
        places = self._threads()
        if self.sqlite is not None:
            if self.killed:
                self.counts["killed_stored"] += self.sqlite.delete_killed(set(self.killed))
            if places is not None:
                self.sqlite.store_threads(places)
            self.sqlite.commit()
            self.sqlite.close()
        if self.jsonl is not None:
            size = self.jsonl.commit(_annotator(places) if places is not None else None)
            if self.jsonl.append:
                self.state.set_output_size(str(self.jsonl.path), size)
        if incremental(self.spec):
            self.state.set_marks(self.written_high)
        self.state.commit()

    def _threads(self) -> dict[str, ThreadInfo] | None:
        if not self.spec.threads:
            return None
        from xfer.news.threads import thread

        source = self.sqlite.thread_input() if self.sqlite is not None else self.thread_input
        places = thread(source)
        self.counts["threads"] = len({info.thread_id for info in places.values()})
        return places

    def summary(self) -> dict[str, Any]:
        held = {"held_peak_bytes": self.sequencer.peak_bytes} if self.sequencer.peak_bytes else {}
        return {**self.counts, **held, "commands": dict(sorted(self.commands.items()))}


def _annotator(places: dict[str, ThreadInfo]) -> Any:
    def annotate(record: dict[str, Any]) -> dict[str, Any]:
        info = places.get(record.get("message_id", ""))
        record["thread_id"] = info.thread_id if info else record.get("message_id")
        record["depth"] = info.depth if info else 0
        return record

    return annotate


class _NewsTask(Task[NntpConnection]):
    def __init__(self, job: NntpScan) -> None:
        self.job = job
        self.connector = job.connector

    async def _counted(self, conn: NntpConnection, ctx: TaskContext) -> dict[str, Any] | None:
        before = Counter(conn.commands)
        try:
            return await self.work(conn, ctx)
        finally:
            self.job.commands.update(conn.commands - before)

    async def run(self, conn: NntpConnection | None, ctx: TaskContext) -> dict[str, Any] | None:
        assert conn is not None  # every news task names a connector
        return await self._counted(conn, ctx)

    @abc.abstractmethod
    async def work(self, conn: NntpConnection, ctx: TaskContext) -> dict[str, Any] | None:
        """The task's commands on its pooled connection."""


class GroupTask(_NewsTask):
    """GROUP: the group's current numbers, which decide what its chunks read."""

    def __init__(self, job: NntpScan, group: str) -> None:
        super().__init__(job)
        self.group = group

    @property
    def label(self) -> str:
        return f"GROUP {self.group}"

    async def work(self, conn: NntpConnection, ctx: TaskContext) -> dict[str, Any]:
        info = await conn.group(self.group)
        self.job.groups[self.group] = info
        return {"count": info.count, "first": info.first, "last": info.last}


class ChunkTask(_NewsTask):
    """One article range of one group: headers, filters, bodies; then hand it on in order.

    It holds no connection while it waits for its turn (`Sequencer.turn`), then takes
    one with the job's retry policy: so the chunk that the others wait for can always
    get a connection, and a failure is known to be final."""

    def __init__(self, job: NntpScan, group: str, index: int, low: int, high: int, overview: OverviewFormat | None):
        super().__init__(job)
        self.group, self.index, self.low, self.high = group, index, low, high
        self.overview = overview
        self.connector = None

    @property
    def label(self) -> str:
        return f"{self.group}:{self.low}-{self.high}"

    async def run(self, conn: NntpConnection | None, ctx: TaskContext) -> dict[str, Any] | None:
        job = self.job
        if job.ctx.dry_run:  # say what would be read
            return {"articles": self.high - self.low + 1, "dry_run": True}
        sequencer = job.sequencer
        if not await sequencer.turn(self.group, self.index):
            return {"skipped": "an earlier chunk of the group failed: the next run reads this one"}
        try:
            return await job.ctx.with_connection(job.connector, lambda conn: self._counted(conn, ctx), self.label)
        except Exception:
            sequencer.failed(self.group, self.index)
            raise
        finally:
            sequencer.finished()

    async def work(self, conn: NntpConnection, ctx: TaskContext) -> dict[str, Any]:
        job = self.job
        await conn.select(self.group)
        if self.overview is not None and job.headers_to_jsonl_only:
            encoded = await self._encoded_headers(conn, ctx, self.overview)
            job.counts["articles_scanned"] += encoded.count
            job.deliver(self.group, self.index, self.high, encoded)
            return {"scanned": encoded.count, "kept": encoded.count}
        records = await self._headers(conn, ctx)
        scanned = len(records)
        records = [record for record in records if job.keep_headers(record)]
        if needs_bodies(job.spec) and records:
            bodies = await conn.bodies([record["number"] for record in records])
            ctx.progress(sum(len(body) for body in bodies.values()))
            job.counts["bodies"] += len(bodies)
            records = [r for r in records if r["number"] in bodies and job.add_body(r, bodies[r["number"]])]
        job.counts["articles_scanned"] += scanned
        job.deliver(self.group, self.index, self.high, records)
        return {"scanned": scanned, "kept": len(records)}

    @property
    def _first(self) -> dict[str, Any]:
        return {"server": self.job.server, "group": self.group}  # leading keys: JSONL lines read well

    async def _encoded_headers(self, conn: NntpConnection, ctx: TaskContext, overview: OverviewFormat) -> Encoded:
        encoder = OverviewEncoder(overview, self._first)
        ctx.progress(await conn.over(self.low, self.high, encoder.feed))
        return encoder.take()

    async def _headers(self, conn: NntpConnection, ctx: TaskContext) -> list[dict[str, Any]]:
        first = self._first
        if self.overview is not None:
            parse = self.overview.parse
            records: list[dict[str, Any]] = []
            ctx.progress(await conn.over(self.low, self.high, lambda piece: records.extend(parse(piece, first))))
            return records
        columns = {}
        for header in HDR_FIELDS:
            block = await conn.hdr(header, self.low, self.high)
            ctx.progress(len(block))
            columns[header] = list(split_hdr_lines(block))
        if not any(columns.values()):
            return []
        if not columns["message-id"]:
            raise PermanentError(f"{self.job.server}: the server has neither OVER nor XHDR Message-ID")
        return records_from_columns(columns, first)


register_cli = _register_search
