"""The `xfer` command: run, validate and plan job files (kinds may add commands).

Start-up is part of every cron run and every no-op mirror, so each command imports
what it uses when it runs: `validate` of an unchanged file reads one cache entry
(`engine/speccache.py`); rich is imported only to draw on a terminal."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from xfer import __version__, collector
from xfer.errors import SpecError, XferError

if TYPE_CHECKING:
    import asyncio

    from rich.console import Console

    from xfer.jobfile import JobFile
    from xfer.report import Report

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]

#: The most processes `--processes auto` forks: every one holds its own interpreter,
#: and the global connection bound is divided among them.
AUTO_PROCESSES = 8


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when asked or available ('auto'), else the standard loop."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise SystemExit("xfer: --loop uvloop: uvloop is not installed") from None
        return None
    return uvloop.new_event_loop


def cmd_validate(args: argparse.Namespace) -> int:
    """Each file's verdict: `ok` with its job count, or its problems (exit 2)."""
    from xfer.specload import count_jobs

    status = 0
    for path in args.files:
        try:
            jobs = count_jobs(path)
        except SpecError as exc:
            status = _print_problems(exc)
        else:
            print(f"{path}: ok, {jobs} job(s)")
    return status


def _print_problems(exc: XferError) -> int:
    """Print a line per problem; the exit code for bad input."""
    from xfer.report import EXIT_BAD_INPUT

    for line in str(exc).splitlines():
        print(f"xfer: {line}", file=sys.stderr)
    return EXIT_BAD_INPUT


def cmd_plan(args: argparse.Namespace) -> int:
    """What would run, from the files alone: jobs, their servers and host limits."""
    from rich.console import Console

    from xfer.api import load
    from xfer.kinds import job_class

    jobs = load(*args.files)
    only = jobs.select(args.only, "--only")
    console = Console()
    for file in jobs.files:
        console.print(f"[bold]{file.path}[/bold] (state: {file.state_path})", highlight=False)
        for spec in file.jobs:
            if only and spec.name not in only:
                continue
            job = job_class(spec.kind)(spec, _PlanContext(file))
            console.print(f"  {spec.name}  [cyan]{spec.kind}[/cyan]", highlight=False)
            for url in job.endpoints():
                console.print(f"    {url}  (limit {file.host_limit(url)} connections)", highlight=False, markup=False)
    return 0


class _PlanContext:
    """Enough of a JobContext to build a job and ask its endpoints, without a run."""

    def __init__(self, file: JobFile) -> None:
        self.file = file
        self.name = ""
        self.dry_run = True
        self.force = False

    def host_config(self, url: Any) -> Any:
        return self.file.host_config(url)

    def resolve(self, path: Path | str) -> Path:
        return self.file.resolve(path)


def cmd_run(args: argparse.Namespace) -> int:
    import contextlib

    from xfer.api import Run, load

    jobs = load(*args.files)
    only = jobs.select(args.only, "--only")
    with contextlib.ExitStack() as stack:
        if args.broker or args.workers:
            from xfer.distributed.command import coordinator_for

            run: Any = stack.enter_context(coordinator_for(jobs, only, args))
        else:
            _connect_ahead(jobs, only, args)
            if len(shards := _shards(jobs, only, args)) > 1:
                from xfer.forked import ForkedRun

                options = {"dry_run": args.dry_run, "force": args.force}
                run = ForkedRun(jobs, shards, options, loop_factory(args.loop))
            else:
                run = Run(jobs, only=only, dry_run=args.dry_run, force=args.force, max_connections=args.max_connections)
        return _run_and_show(run, args)


def _connect_ahead(jobs: Any, only: set[str] | None, args: argparse.Namespace) -> None:
    """Connect the first mail sessions now, so the servers start them while this
    process imports the engine (`engine/connect_ahead.py`)."""
    from xfer import connect_ahead
    from xfer.jobfile import global_bound

    selected = [(file, spec) for file in jobs.files for spec in file.jobs if only is None or spec.name in only]
    connect_ahead.open_for(connect_ahead.wanted(selected, global_bound(jobs.files, args.max_connections)))


def _shards(jobs: Any, only: set[str] | None, args: argparse.Namespace) -> list[Any]:
    """The shards to fork (none or one: run in this process). `--processes auto` deals
    two or more selected jobs out over the usable cores (the jobs of one host too, which
    then share its limit through `forked_gate`); it never cuts a lone job into shares,
    which an explicit N does where the kind can be split."""
    processes = args.processes
    if processes is None:
        selected = len(only) if only is not None else len(jobs.names)
        processes = min(_usable_cores(), AUTO_PROCESSES) if selected > 1 else 1
    if processes == 1:
        return []
    from xfer.forked import plan_shards

    return plan_shards(list(jobs.files), only, processes, args.max_connections, split_jobs=args.processes is not None)


#: A container's CPU quota: cgroup v2's "QUOTA PERIOD" (or "max"), else v1's two files.
CPU_QUOTA_FILES = (Path("/sys/fs/cgroup/cpu.max"),
                   Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us"), Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us"))


def _usable_cores() -> int:
    """The cores this process may run on (its affinity), within a CPU quota (a
    container's `--cpus`, which the affinity does not show), rounded up."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    v2, v1_quota, v1_period = CPU_QUOTA_FILES
    try:
        quota, period = v2.read_text().split()
    except (OSError, ValueError):
        try:
            quota, period = v1_quota.read_text().strip(), v1_period.read_text().strip()
        except OSError:
            return cores
    if not (quota.isdigit() and period.isdigit() and int(period)):  # "max", or v1's -1: none
        return cores
    return max(1, min(cores, -(-int(quota) // int(period))))


def _processes(value: str) -> int | None:
    """`--processes`: a count, or `auto` (None)."""
    if value == "auto":
        return None
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {value!r}") from None


def _run_and_show(run: Any, args: argparse.Namespace) -> int:
    """Run (locally or through a coordinator: the same steps) and show the outcome."""
    import asyncio

    report = run.report
    shown = not (args.json or args.quiet)
    # rich is for drawing on a terminal: --quiet/--json runs and logs (cron, CI) skip it.
    live = shown and sys.stderr.isatty()
    console = None
    if live:
        from rich.console import Console

        from xfer.outputs.progress import LiveProgress

        console = Console(stderr=True)

    async def main() -> None:
        run.build()
        collector.resume()  # paused by main() while the run's modules loaded
        if live:
            with LiveProgress(report, run.pools, console) as progress:
                run.subscribe(progress)
                await run.execute()
        else:
            if shown:
                from xfer.outputs.plain import PlainLog

                run.subscribe(PlainLog(report))
            await run.execute()

    with asyncio.Runner(loop_factory=loop_factory(args.loop)) as runner:
        runner.run(main())
    report = run.report  # a distributed run rebuilds it when a unit ran twice
    if args.report:
        report.write(Path(args.report))
    if args.json:
        import json

        print(json.dumps(report.as_dict(), indent=2, default=str))
    elif shown:
        _print_summary(report, console)
    return report.exit_code


def _print_summary(report: Report, console: Console | None) -> None:
    """The end-of-run summary (rich on `console`, else plain text on stdout) from the
    figures the JSON report holds, as written (times in ms): `xfer report` of that
    file prints the very same text."""
    from xfer.outputs.report_file import report_from_dict

    saved = report_from_dict(report.as_dict())
    if console is not None:
        from xfer.outputs.progress import print_summary

        print_summary(saved, console)
    else:
        from xfer.outputs.plain import print_plain_summary

        print_plain_summary(saved, sys.stdout)


def cmd_ls(args: argparse.Namespace) -> int:
    from xfer.ls.command import run

    return run(args)


def cmd_report(args: argparse.Namespace) -> int:
    """A past run's summary (as `run` printed it) and, with --html, its page; exit 2
    when the file is not a report, 1 when the page cannot be written."""
    from xfer.outputs.report_file import read_report, report_from_dict
    from xfer.report import EXIT_FAILED

    path = Path(args.file)
    try:
        report = report_from_dict(read_report(path), path)
    except XferError as exc:
        return _print_problems(exc)
    if args.html:
        from xfer.outputs.html_report import write_html

        try:
            write_html(report, Path(args.html))
        except OSError as exc:
            print(f"xfer: {args.html}: cannot write: {exc.strerror or exc}", file=sys.stderr)
            return EXIT_FAILED
    console = None
    if sys.stdout.isatty():
        from rich.console import Console

        console = Console()
    _print_summary(report, console)
    return 0


def _add_run(commands: Subparsers) -> None:
    run = commands.add_parser("run", help="run the jobs in job files")
    run.add_argument("files", nargs="+", metavar="FILE", help="YAML job file(s)")
    run.add_argument("--only", nargs="+", metavar="NAME", help="run only these jobs")
    run.add_argument("--dry-run", action="store_true", help="connect and list, but change nothing")
    run.add_argument("--force", action="store_true", help="transfer even what looks up to date")
    run.add_argument("--report", metavar="FILE", help="write the JSON report to FILE")
    run.add_argument("--json", action="store_true", help="print the JSON report on stdout")
    run.add_argument("--quiet", "-q", action="store_true", help="no progress or summary, only the exit code")
    run.add_argument("--max-connections", type=int, metavar="N", help="connections in use across all hosts")
    run.add_argument("--processes", "-P", type=_processes, default=None, metavar="N|auto",
                     help="share the jobs out over N processes of this machine (by host; limits hold across them); "
                     f"default auto: two or more jobs over the usable cores, at most {AUTO_PROCESSES}")
    run.add_argument("--loop", choices=("auto", "uvloop", "asyncio"), default="auto", help="event loop (default: uvloop if installed)")
    from xfer.distributed.command import add_run_options

    add_run_options(run)
    run.set_defaults(handler=cmd_run)


def _add_validate(commands: Subparsers) -> None:
    validate = commands.add_parser("validate", help="check job files and exit (2 when invalid)")
    validate.add_argument("files", nargs="+", metavar="FILE")
    validate.set_defaults(handler=cmd_validate)


def _add_plan(commands: Subparsers) -> None:
    plan = commands.add_parser("plan", help="show what would run, without connecting")
    plan.add_argument("files", nargs="+", metavar="FILE")
    plan.add_argument("--only", nargs="+", metavar="NAME")
    plan.set_defaults(handler=cmd_plan)


def _add_report(commands: Subparsers) -> None:
    report = commands.add_parser("report", help="a past run's summary from its --report file; --html for a page")
    report.add_argument("file", metavar="REPORT.json", help="the JSON written by 'xfer run --report'")
    report.add_argument("--html", metavar="FILE", help="also write the run as a self-contained HTML page")
    report.set_defaults(handler=cmd_report)


def _add_ls(commands: Subparsers) -> None:
    ls = commands.add_parser("ls", help="list a server: an FTP tree, news groups, mail folders")
    ls.add_argument("url", metavar="URL", help="ftp(s)://host/path, nntp(s)://host[/pattern], imap(s)://user@host, pop3(s)://user@host")
    ls.add_argument("-R", "--recursive", action="store_true", help="FTP: list the tree below, as a mirror walks it")
    ls.add_argument("--depth", type=int, metavar="N", help="FTP: directory levels below the top (implies -R)")
    ls.add_argument("--include", action="append", default=[], metavar="PATTERN", help="FTP: show only files a mirror with this include takes")
    ls.add_argument("--exclude", action="append", default=[], metavar="PATTERN", help="FTP: leave out what a mirror with this exclude leaves out")
    ls.add_argument("--symlinks", choices=("skip", "follow"), default="skip", help="FTP: as the mirror's symlinks option")
    ls.add_argument("--jobs", metavar="FILE", help="a job file whose hosts block gives credentials and settings")
    ls.add_argument("--insecure", action="store_true", help="do not verify the server's TLS certificate")
    ls.add_argument("--json", action="store_true", help="print a JSON list of entries")
    ls.set_defaults(handler=cmd_ls)


def _add_worker(commands: Subparsers) -> None:
    from xfer.distributed.command import register

    register(commands)


#: The commands of this module, in `xfer --help` order. Only the one named is built
#: when it is one of these: the others' parsers (and the kinds' own commands, which
#: import every kind) would be a few ms of every start.
CORE_COMMANDS: dict[str, Callable[[Subparsers], None]] = {
    "run": _add_run, "validate": _add_validate, "plan": _add_plan, "report": _add_report, "ls": _add_ls,
    "worker": _add_worker,
}


class _Formatter(argparse.HelpFormatter):
    """argparse's, told the terminal's width: argparse makes a formatter for each
    argument added, and one that must find the width itself imports shutil (with bz2
    and lzma), a few ms of every start. The width as shutil.get_terminal_size finds it."""

    def __init__(self, prog: str) -> None:
        try:
            columns = int(os.environ.get("COLUMNS", 0)) or os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (ValueError, OSError, AttributeError):
            columns = 80
        super().__init__(prog, width=columns - 2)


class _Parser(argparse.ArgumentParser):
    """ArgumentParser with `_Formatter`, for the commands' parsers too (subparsers are
    made of their parent's class)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(formatter_class=_Formatter, **kwargs)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser: every command, or only `only` (a core command; none for
    `--version`)."""
    parser = _Parser(
        prog="xfer",
        description="Run FTP, NNTP and mail transfer jobs from YAML job files, all at once, "
        "within per-host connection limits.",
        epilog="Exit codes: 0 all succeeded, 1 a task or job failed, 2 bad input, 130/143 stopped by SIGINT/SIGTERM.",
    )
    parser.add_argument("--version", action="version", version=f"xfer {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    if only in CORE_COMMANDS:
        CORE_COMMANDS[only](commands)
        return parser
    if only == "--version":
        return parser  # printed before any command is looked for
    for add in CORE_COMMANDS.values():
        add(commands)
    from xfer.inspect.cli import register as register_mail_inspect
    from xfer.kinds import register_cli

    register_mail_inspect(commands)
    register_cli(commands)
    return parser


def entry() -> NoReturn:
    """The `xfer` command (console script and `python -m xfer`): `main`, then out
    without the interpreter's teardown of every module and object (~9 ms of a no-op
    mirror run), once what was printed and logged is flushed. A run has closed its
    connections, state and report by then, and its threads are idle. `main` returns
    instead, for tests and the Python API."""
    code = main()
    if "logging" in sys.modules:
        import logging

        logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more to say there
            pass
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    with collector.paused():
        parser = build_parser(argv[0] if argv else None)
        args = parser.parse_args(argv)
        _check_options(parser, args)
        if args.command == "run":
            return _handle(args)  # resumes it once the run is built (_run_and_show)
    return _handle(args)  # with it on: `xfer worker` and `ls -R` may run for long


def _handle(args: argparse.Namespace) -> int:
    try:
        return int(args.handler(args))
    except SpecError as exc:
        return _print_problems(exc)
    except KeyboardInterrupt:
        return 130


def _check_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if getattr(args, "max_connections", None) is not None and args.max_connections < 1:
        parser.error("--max-connections must be >= 1")
    if getattr(args, "workers", None) is not None and args.workers < 1:
        parser.error("--workers must be >= 1")
    processes = getattr(args, "processes", None)
    if processes is not None and processes < 1:
        parser.error("--processes must be >= 1")
    if processes is not None and processes > 1 and (args.broker or args.workers):
        parser.error("--processes is for one machine without a broker; with --broker/--workers the workers share the jobs")


if __name__ == "__main__":
    sys.exit(main())
