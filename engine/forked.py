"""`xfer run --processes N`: one run over N processes of this machine, so a job set
that keeps one core busy (many FTP sites, many mailboxes) uses them all. The default,
`auto`, deals the jobs out over the usable cores without cutting a lone job into
shares (`plan_shards(split_jobs=False)`, chosen in `cli._shards`).

The jobs are dealt into shards before any event loop exists, and each shard runs in a
forked child with the ordinary scheduler: nothing is imported again, and only events
and connection leases cross between processes:

- jobs that share an endpoint form a group (transitively: a roundtrip's SMTP and IMAP
  servers join two groups), and groups are dealt whole while there are as many as
  processes, so each host's limit holds in one shard as in one process;
- when there are fewer groups than processes, a host's jobs (twenty accounts on one
  IMAP server; with an explicit N, a lone job's shares) are dealt over several shards.
  Its limit is then held across them by a gate in shared memory
  (`engine/forked_gate.py`), and the global `max_connections` with it: a shard may use
  the whole limit while the others leave it room, and hands connections over when
  another waits. Without such a split the global bound is divided between the shards.
- the run's one memory budget of fetched mail is divided between the shards;
- the sockets `xfer run` connected ahead for the first mail sessions
  (`engine/connect_ahead.py`) are dealt too: each child keeps its share, the parent none.

A child sends its events to the parent through a pipe, pickled in batches (every 0.1 s
or 2,000 events); the parent's report, live display and exit code are built from them
as in one process. Children run in their own process groups, so a terminal's Ctrl-C
reaches the parent alone, which passes the signal on once (each child then stops with
the grace period, as a run does); a child whose parent died stops when its pipe breaks.
Each child records its shard's run in the state database."""

from __future__ import annotations

import asyncio
import functools
import gc
import importlib
import os
import pickle
import signal
import struct
import sys
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from xfer import collector, connect_ahead
from xfer.api import JobSet, Run
from xfer.distributed.merge import JobMerger
from xfer.distributed.units import PROCESS_SPLITTERS, Unit, job_units
from xfer.events import Event, EventBus
from xfer.forked_gate import SharedHostGate
from xfer.jobfile import JobFile, global_bound
from xfer.mailbox_store import budget
from xfer.records import Record
from xfer.report import Report
from xfer.urls import Url

FLUSH_SECONDS = 0.1
FLUSH_EVENTS = 2000
#: Seconds past the grace period before children still running are killed.
STOP_SLACK = 1.0
#: How often a child checks that its parent is alive.
PARENT_CHECK_SECONDS = 0.5
_FRAME = struct.Struct("!I")
#: A child's exit code when the shard itself broke (not a job: the report says those).
_CRASHED = 70


@dataclass
class Shard:
    """What one process runs: whole jobs and shares of jobs (`units`), the endpoints it
    shares with other shards (their limits held by the gate), and its global bound."""

    units: list[Unit] = field(default_factory=list)
    shared_hosts: set[str] = field(default_factory=set)
    max_connections: int = 1
    processes: int = 1  # the run's shards, this one included

    @property
    def jobs(self) -> set[str]:
        return {unit.job for unit in self.units}


def plan_shards(
    files: list[JobFile], only: set[str] | None, processes: int, max_connections: int | None, *,
    split_jobs: bool = True,
) -> list[Shard]:
    """At most `processes` shards of the selected jobs (one shard: run in-process).
    Without `split_jobs`, a lone job is never cut into shares."""
    jobs = [(file, spec) for file in files for spec in file.jobs if only is None or spec.name in only]
    total = global_bound(files, max_connections)
    processes = max(1, min(processes, total))
    groups = _host_groups(jobs)
    if len(groups) < processes:
        groups = [piece for group in groups for piece in _split_group(group, processes, split_jobs)]
    shards = [Shard() for _ in range(min(processes, len(groups)))]
    for group in sorted(groups, key=lambda group: -len(group.units)):
        shard = min(shards, key=lambda shard: len(shard.units))
        shard.units += group.units
        shard.shared_hosts |= group.shared_hosts
    gated = any(shard.shared_hosts for shard in shards)
    for index, shard in enumerate(shards):
        shard.max_connections = total if gated else _share(total, len(shards), index)
        shard.processes = len(shards)
    return shards


def _share(total: int, parts: int, index: int) -> int:
    return total // parts + (1 if index < total % parts else 0)


@dataclass
class _Group:
    units: list[Unit]
    endpoints: set[str]
    limit: int  # the smallest host limit of its endpoints
    shared_hosts: set[str] = field(default_factory=set)  # also in other groups' shards


def _host_groups(jobs: list[tuple[JobFile, Any]]) -> list[_Group]:
    """Jobs joined by the endpoints they share (a job without one is a group of its own)."""
    groups: list[_Group] = []
    for file, spec in jobs:
        urls = list(_urls(spec))
        endpoints = {url.endpoint for url in urls}
        limit = min((file.host_limit(url) for url in urls), default=0)
        merged = _Group(job_units(file, spec, [{}], "", {}), endpoints, limit)
        for group in [group for group in groups if group.endpoints & endpoints]:
            groups.remove(group)
            merged.units = group.units + merged.units
            merged.endpoints |= group.endpoints
            merged.limit = min(merged.limit, group.limit)
        groups.append(merged)
    return groups


def _split_group(group: _Group, processes: int, split_jobs: bool) -> list[_Group]:
    """A one-host group over up to `processes` shards that share its limit: its jobs
    dealt out, or a lone job split into shares when its kind can be (`split_jobs`)."""
    parts = min(processes, group.limit) if len(group.endpoints) == 1 else 1
    units = group.units
    if parts > 1 and len(units) == 1 and split_jobs:
        (unit,) = units
        (spec,) = unit.file.jobs
        splitter = PROCESS_SPLITTERS.get(spec.kind)
        if splitter is not None:
            units = job_units(unit.file, spec, splitter(spec, parts), "", {})
    parts = min(parts, len(units))
    if parts <= 1:
        return [group]
    return [_Group(units[index::parts], group.endpoints, group.limit, group.endpoints) for index in range(parts)]


def _urls(value: Any) -> Iterator[Url]:
    """Every Url in a job spec (nested blocks and lists included)."""
    if isinstance(value, Url):
        yield value
    elif isinstance(value, Record):
        for item in vars(value).values():
            yield from _urls(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _urls(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _urls(item)


# ------------------------------------------------------------------------- child


class _PipeSender:
    """A child's subscriber: its events, pickled in batches, into the pipe."""

    def __init__(self, fd: int, on_broken: Callable[[], None]) -> None:
        self.fd = fd
        self.on_broken = on_broken
        self._buffer: list[tuple[Any, ...]] = []
        self._timer: asyncio.TimerHandle | None = None

    def __call__(self, event: Event) -> None:
        if event.name.startswith("run."):
            return  # the parent's own
        self._buffer.append((event.name, event.job, event.task, event.host, event.bytes, event.error, event.data, event.time))
        if len(self._buffer) >= FLUSH_EVENTS:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._buffer or self.fd < 0:
            return
        payload = pickle.dumps(self._buffer, protocol=pickle.HIGHEST_PROTOCOL)
        self._buffer = []
        try:
            view = memoryview(_FRAME.pack(len(payload)) + payload)
            while view:
                view = view[os.write(self.fd, view) :]
        except BrokenPipeError:
            self.fd = -1  # the parent is gone: stop this shard like a SIGTERM
            self.on_broken()


def _run_child(shard: Shard, options: dict[str, Any], fd: int, loop_factory: Any) -> int:
    """Run one shard to its end; the exit code says only whether the shard itself broke."""
    os.setpgid(0, 0)  # a terminal's Ctrl-C is the parent's to pass on
    parent = os.getppid()
    budget.divide(shard.processes)
    run = Run(JobSet([unit.file for unit in shard.units]), max_connections=shard.max_connections, **options)
    sender = _PipeSender(fd, lambda: os.kill(os.getpid(), signal.SIGTERM))
    run.subscribe(sender)

    async def main() -> None:
        run.build()
        collector.resume()  # paused by cli.main() before the fork
        watching = asyncio.get_running_loop().create_task(_watch_parent(parent))
        try:
            await run.execute()
        finally:
            watching.cancel()
        sender.flush()

    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(main())
    return 0


async def _watch_parent(parent: int) -> None:
    """A child whose parent died (it is reparented) stops its shard as on SIGTERM: a
    quiet shard would otherwise only notice at its next event."""
    while os.getppid() == parent:
        await asyncio.sleep(PARENT_CHECK_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)


def _ahead_shares(shards: list[Shard]) -> list[Counter[connect_ahead.Address]]:
    """Per shard, the sockets connected ahead it keeps: one a job of its own, within
    its share of a host it shares with other shards."""
    sharing = Counter(endpoint for shard in shards for endpoint in shard.shared_hosts)
    return [
        connect_ahead.wanted(
            [(unit.file, spec) for unit in shard.units for spec in unit.file.jobs],
            shard.max_connections, lambda endpoint: sharing[endpoint] or 1,
        )
        for shard in shards
    ]


def _import_before_fork(jobs: JobSet, shards: list[Shard]) -> None:
    """Import the kinds (and the scheduler) once, in the parent, and freeze what was
    imported: each child then starts with them, and pages shared until written."""
    from xfer.kinds import job_class

    importlib.import_module("xfer.scheduler")
    wanted = set().union(*(shard.jobs for shard in shards))
    for file in jobs.files:
        for spec in file.jobs:
            if spec.name in wanted:
                job_class(spec.kind)
    gc.freeze()


def _fork_child(
    shard: Shard, index: int, gate: SharedHostGate | None, options: dict[str, Any], loop_factory: Any
) -> tuple[int, int]:
    """(pid, read end of its pipe)."""
    read, write = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid:
        os.close(write)
        return pid, read
    code = _CRASHED
    try:
        os.close(read)
        connect_ahead.keep(index)
        if gate is not None:
            gate.join(index)
        code = _run_child(shard, {**options, "gate": gate}, write, loop_factory)
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(code)


# ------------------------------------------------------------------------ parent


class _Reader(asyncio.Protocol):
    """The parent's end of one child's pipe: frames in, events out."""

    def __init__(self, emit: Callable[[Event], None]) -> None:
        self.emit = emit
        self.buffer = bytearray()
        self.closed = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= _FRAME.size:
            (size,) = _FRAME.unpack_from(self.buffer)
            if len(self.buffer) < _FRAME.size + size:
                return
            batch = pickle.loads(self.buffer[_FRAME.size : _FRAME.size + size])
            del self.buffer[: _FRAME.size + size]
            for fields in batch:
                self.emit(Event(*fields))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class ForkedRun:
    """The parent: forks the shards at once (before any event loop runs here), then,
    in `execute`, turns their events into this run's report. The same steps as
    `api.Run`, so `xfer run` shows and writes it the same way."""

    def __init__(self, jobs: JobSet, shards: list[Shard], options: dict[str, Any], loop_factory: Any) -> None:
        self.report = Report()
        self.events = EventBus()
        self.events.subscribe(self.report)
        self.pools: list[Any] = []  # the hosts' pools live in the children
        self.shards = shards
        self.grace = jobs.files[0].defaults.grace_period
        self.stopped_by: signal.Signals | None = None
        self.merger = JobMerger([unit for shard in shards for unit in shard.units], self.events)
        self.gate = SharedHostGate(len(shards), shards[0].max_connections) if any(s.shared_hosts for s in shards) else None
        if self.gate is not None:
            for endpoint in set().union(*(shard.shared_hosts for shard in shards)):
                self.gate.expect(endpoint, [index for index, shard in enumerate(shards) if endpoint in shard.shared_hosts])
        for name in jobs.names:  # the report lists the jobs in file order, as one process does
            if any(name in shard.jobs for shard in shards):
                self.report.job(name)
        _import_before_fork(jobs, shards)
        connect_ahead.deal(_ahead_shares(shards))
        self.children = [_fork_child(shard, index, self.gate, options, loop_factory) for index, shard in enumerate(shards)]
        connect_ahead.close_all()  # this process's copies: each child holds its own
        self.running = {pid for pid, _ in self.children}  # not yet reaped: a zombie still holds its PID

    def subscribe(self, subscriber: Callable[[Event], None]) -> None:
        self.events.subscribe(subscriber)

    def build(self) -> None:
        """Nothing to build here: each child builds its shard's jobs."""

    async def execute(self) -> Report:
        loop = asyncio.get_running_loop()
        self.events.emit("run.started", data={"jobs": sorted(set().union(*(s.jobs for s in self.shards))),
                                              "processes": len(self.shards)})
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.stop, signum)
        try:
            readers = []
            for index, (shard, (_, fd)) in enumerate(zip(self.shards, self.children)):
                forward = functools.partial(self._forward, {unit.job: unit for unit in shard.units}, shard.units[0])
                _, reader = await loop.connect_read_pipe(lambda: _Reader(forward), os.fdopen(fd, "rb", 0))
                if self.gate is not None:  # its pipe closes as it exits: what it held is free
                    reader.closed.add_done_callback(functools.partial(lambda column, _: self.gate.forget(column), index))
                readers.append(reader)
            await asyncio.gather(*(reader.closed for reader in readers))
            codes = [await self._reap(pid) for pid, _ in self.children]
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
        for shard, code in zip(self.shards, codes):
            self._end_shard(shard, code)
        self.events.emit("run.finished", data={"stopped_by": self.stopped_by.name if self.stopped_by else None})
        return self.report

    def _forward(self, units: dict[str, Unit], first: Unit, event: Event) -> None:
        """A child's event, through the merger: the shares of a split job become one job."""
        self.merger.forward(units.get(event.job or "", first), event)

    def _end_shard(self, shard: Shard, code: int) -> None:
        """A shard's units that never finished: failed if its process broke, else cancelled."""
        for unit in shard.units:
            if unit.share in self.merger.finished[unit.job]:
                continue
            if code:
                how = f"signal {signal.Signals(-code).name}" if code < 0 else f"code {code}"
                self.merger.forward(unit, Event("job.error", job=unit.job, error=f"its worker process ended with {how}"))
            status = "failed" if code else "cancelled"
            self.merger.forward(unit, Event("job.finished", job=unit.job, data={"status": status, "summary": {}}))

    def stop(self, signum: signal.Signals | int = signal.SIGTERM) -> None:
        """Pass the signal on (each child stops gracefully; a second one stops them at
        once), and kill what still runs once the grace period is over."""
        first = self.stopped_by is None
        if first:
            self.stopped_by = signal.Signals(signum)
            self.events.emit("run.stopping", data={"signal": self.stopped_by.name, "grace_period": self.grace})
            asyncio.get_running_loop().call_later(self.grace + STOP_SLACK, self._kill)
        for pid in self.running:
            os.kill(pid, signum)

    def _kill(self) -> None:
        for pid in self.running:
            os.kill(pid, signal.SIGKILL)

    async def _reap(self, pid: int) -> int:
        """The child's exit code (negative: the signal that ended it), without blocking
        the loop. A reaped child is signalled no more (its PID may be another's by then)."""
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                self.running.discard(pid)
                return os.waitstatus_to_exitcode(status)
            await asyncio.sleep(0.005)
