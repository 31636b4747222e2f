"""The Python API (`xfer.load`, `xfer.run`, `xfer.run_sync`): run job files from code
the way `xfer run` runs them, without assembling the scheduler, event bus and report.

    jobs = xfer.load("jobs.yaml")                      # or a dict; raises xfer.SpecError
    report = await xfer.run(jobs, on_event=callback)   # xfer.Report: .exit_code, .as_dict()

A run records its history in the job files' state databases and stops gracefully on
SIGINT/SIGTERM (the loop's handlers are replaced while it runs), exactly as `xfer run`
does; `engine/cli.py` builds its command on `Run`. This module imports the scheduler
only when a run starts: `import xfer` stays cheap (start-up time is measured)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xfer.errors import SpecError

if TYPE_CHECKING:
    from xfer.events import Event, EventBus
    from xfer.jobfile import JobFile
    from xfer.pool import HostGate, Pools
    from xfer.report import Report
    from xfer.scheduler import Scheduler

#: What `load` reads: a job file's path, or a job file's content as a dict.
Source = str | os.PathLike[str] | Mapping[str, Any]


class JobSet:
    """Validated job files, ready to run (several files run as one, like `xfer run a b`).
    A plain class: a dataclass costs a millisecond at import, on every `xfer run`."""

    __slots__ = ("files",)

    def __init__(self, files: Sequence[JobFile]) -> None:
        self.files = tuple(files)

    def __repr__(self) -> str:
        return f"<JobSet: {len(self.names)} jobs from {len(self.files)} files>"

    @property
    def names(self) -> list[str]:
        """The job names, in file order."""
        return [job.name for file in self.files for job in file.jobs]

    def select(self, only: Collection[str] | None, option: str = "only") -> set[str] | None:
        """The jobs to run (None: all); a name that is not a job raises SpecError.
        One name may be given as a string."""
        if not only:
            return None
        if isinstance(only, str):
            only = (only,)
        names = set(self.names)
        unknown = sorted(set(only) - names)
        if unknown:
            raise SpecError(f"{option}: no job named {', '.join(unknown)} (jobs: {', '.join(sorted(names))})")
        return set(only)


def load(*sources: Source, base_dir: str | os.PathLike[str] | None = None) -> JobSet:
    """Load and validate job files (paths) and job-file dicts into one JobSet.

    Invalid input raises one `SpecError` with a line per problem of every source:
    `file:line:col: key: message` for files, `<dict>: key: message` for a dict.
    A dict's relative paths (`local:`, `state:`) start at `base_dir` (default: the
    current directory); a file's start at the file, and `${VAR}` is expanded in files
    only. An unchanged file comes from the validation cache, as for `xfer run`."""
    from xfer.specload import load_job_file, parse_job_data

    if not sources:
        raise TypeError("load() needs at least one job file or dict")
    root = Path(base_dir) if base_dir is not None else Path.cwd()
    files, problems = [], []
    for index, source in enumerate(sources):
        try:
            if isinstance(source, Mapping):
                label = "<dict>" if len(sources) == 1 else f"<dict {index + 1}>"
                files.append(parse_job_data(dict(source), label, root))
            elif isinstance(source, (str, os.PathLike)):
                files.append(load_job_file(source))
            else:
                raise TypeError(f"load(): a job file's path or a dict, not {type(source).__name__}")
        except SpecError as exc:
            problems.append(str(exc))
    if problems:
        raise SpecError("\n".join(problems))
    return JobSet(files)


class Run:
    """One run of a JobSet: its scheduler, event bus and report. `run()` is the usual
    way in; the CLI uses the steps (`build`, `subscribe`, `pools`, `execute`) to add
    its live display between them."""

    def __init__(
        self,
        jobs: JobSet,
        *,
        only: set[str] | None = None,
        dry_run: bool = False,
        force: bool = False,
        max_connections: int | None = None,
        gate: HostGate | None = None,
    ) -> None:
        """`gate`: per-host leases shared with other processes (a forked run's shards)."""
        from xfer.events import EventBus
        from xfer.report import Report
        from xfer.scheduler import RunOptions, Scheduler

        if max_connections is not None and max_connections < 1:
            raise ValueError("max_connections must be >= 1")
        self.started = time.time()
        self.report = Report()
        self.events: EventBus = EventBus()
        self.events.subscribe(self.report)
        options = RunOptions(dry_run=dry_run, force=force, max_connections=max_connections, gate=gate)
        self.scheduler: Scheduler = Scheduler(list(jobs.files), self.events, options, only)

    @property
    def pools(self) -> Pools:
        return self.scheduler.pools

    def subscribe(self, subscriber: Callable[[Event], None]) -> None:
        """`subscriber` sees every event after the report has counted it."""
        self.events.subscribe(subscriber)

    def build(self) -> None:
        """Create the jobs (before `execute`, for a caller that wants them first)."""
        self.scheduler.build()

    async def execute(self) -> Report:
        """Run every job to its end (or to a stop), record the run, close the state."""
        try:
            await self.scheduler.run()
            self.scheduler.record_run(self.started, self.report.exit_code, self.report.as_dict()["totals"])
        finally:
            self.scheduler.close()
        return self.report


async def run(
    jobs: JobSet,
    *,
    only: Collection[str] | None = None,
    dry_run: bool = False,
    force: bool = False,
    max_connections: int | None = None,
    on_event: Callable[[Event], None] | None = None,
) -> Report:
    """Run the jobs (all, or those named in `only`) and return the report.

    `on_event` is called with every `xfer.Event` (names in `engine/events.py`) as it
    happens, in the loop's thread: it must be quick and must not raise. Options are
    those of `xfer run` (`--dry-run`, `--force`, `--max-connections`). Failed jobs do
    not raise: read `report.exit_code` (0 ok, 1 failed, 130/143 stopped by a signal)."""
    job_run = Run(jobs, only=jobs.select(only), dry_run=dry_run, force=force, max_connections=max_connections)
    if on_event is not None:
        job_run.subscribe(on_event)
    return await job_run.execute()


def run_sync(jobs: JobSet, **options: Any) -> Report:
    """`run` for scripts: runs on a new standard event loop and returns the report."""
    import asyncio  # here: `xfer run` reads its job file before paying for asyncio (connect_ahead)

    return asyncio.run(run(jobs, **options))
