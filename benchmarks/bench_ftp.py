"""FTP mirror speed: xfer vs lftp and rclone against vsftpd on loopback (issues 3, 15).

Every figure is measured in the same run, on the same server and data, destination
on /dev/shm; every tool is a whole process timed from spawn to exit (start-up
included, harness.timed); rounds alternate the tools (the order rotates) and the
table shows medians. Scenarios:

- small: N files of S bytes in D directories, C connections (lftp --parallel=C,
  rclone --transfers C --checkers C); ratio = xfer wall time / lftp wall time.
- noop:  the same mirror again with nothing to do (xfer with its state, lftp
  `mirror --only-newer`, rclone `copy`).
- large: a few big files (MiB/s); rclone gets --multi-thread-streams 0 (its default
  splits files over 250 MiB into streams, which gave 426 aborts and short files).
- sites: 20 vsftpd instances with 250 files each, per-host limit 4: one xfer run
  (20 jobs; by default `--processes auto` deals the 20 hosts out over the cores, and
  `--xfer-processes 1` adds a one-process row) vs 20 lftp processes at once vs lftp
  site after site.
- wan:   the same with 50 files per site, each site behind a userspace delay line
  (benchmarks/delayline.py: 50 ms round trip, both directions, control and data
  connections; kernel netem is not available here): one xfer run vs 20 lftp processes
  at once (lftp site after site, ~86 s a round, only with --include-sequential).
  Each run also gives `round_trips_per_file`: the client's control-channel writes
  (client->server chunks, counted by the delay line) per file transferred.
- rss:   peak RSS of one xfer mirror of a big tree (200,000 files by default).
- lag:   the event loop's worst stall while xfer writes big files (in-process,
  uvloop) to /dev/shm and to a disk directory: the first 4 MiB of each file are
  written in the loop (one write() per received block <= 1 MiB), the rest by a
  thread per transfer splicing socket -> pipe -> file (engine/protocols/ftp_pump.py).

Client CPU and peak RSS come from wait4() on the tool's processes; server CPU is that
of a cpuacct cgroup around each vsftpd (all its session processes; where no cgroup can
be made, the listener's own plus its reaped sessions' time, which misses part of it).
`uptime`'s load is noted with every run: the machine has 2 cores shared with other
work. Every run is written to the JSON file (default
benchmarks/results-ftp-SCENARIOS.json): RESULTS.md cites it.

Full runs (the lead's, on a quiet machine):

    python benchmarks/bench_ftp.py --scenarios small,noop,large --rounds 5
    python benchmarks/bench_ftp.py --scenarios sites --rounds 5
    python benchmarks/bench_ftp.py --scenarios wan --rounds 5
    python benchmarks/bench_ftp.py --scenarios wan --rounds 1 --include-sequential --json benchmarks/results-ftp-wan-sequential.json
    python benchmarks/bench_ftp.py --scenarios rss --rss-files 200000 --rounds 1
    python benchmarks/bench_ftp.py --scenarios lag --rounds 2

Smoke (proves the harness, no figures): `--rounds 1 --sites 3 --site-files 10
--wan-files 10 --files 200 --large-size 4M --json /tmp/smoke.json`.
`--serve small|large|sites` only starts vsftpd on that scenario's data and waits (profiling;
sites prints an xfer job file for its servers).

Needs root, vsftpd, lftp and rclone (bash .ci/install-servers.sh).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from xfer.spec import parse_size  # noqa: E402
from tests.servers.ftp import FtpServer, VSFTPD_BINARY, _children, _vsftpd_pids, start_vsftpd  # noqa: E402

sys.path.insert(0, str(REPO / "benchmarks"))
from harness import XFER, CpuGroup, rotated, timed, tool_env  # noqa: E402
from pool_passes import paired_ratio  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
ENV = tool_env()
TOOLS = ("xfer", "lftp", "rclone")


# ------------------------------------------------------------------ measuring


@dataclass
class Sample:
    """One timed run of one tool (`load`: uptime's 1/5/15-minute averages as it started)."""

    tool: str
    wall: float
    client_cpu: float
    server_cpu: float
    rss_mb: float
    load: list[float]
    ok: bool
    note: str = ""
    round: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _proc_cpu(pid: int) -> float:
    """utime + stime + cutime + cstime of `pid`, in seconds."""
    with open(f"/proc/{pid}/stat") as stat_file:
        fields = stat_file.read().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / CLK_TCK


@dataclass
class Server:
    """A vsftpd instance serving `root` anonymously, with its listener's pid and, where
    the machine allows, a cgroup that counts the CPU of all its processes."""

    ftp: FtpServer
    listener: int
    cgroup: CpuGroup | None = None

    def cpu(self) -> float:
        """CPU seconds so far, once every session of the last run has ended."""
        deadline = time.monotonic() + 5
        while _children(self.listener) and time.monotonic() < deadline:
            time.sleep(0.01)
        if self.cgroup:
            return self.cgroup.cpu()
        return _proc_cpu(self.listener)

    @property
    def url(self) -> str:
        return f"ftp://{self.ftp.host}:{self.ftp.port}"

    def stop(self) -> None:
        self.ftp.stop()
        if self.cgroup:
            self.cgroup.remove()


def start_server(root: Path, work: Path, tag: str = "") -> Server:
    tmp = work / f"vsftpd-{root.name}{tag}"  # vsftpd instances are told apart by their config path
    ftp = start_vsftpd(root, tmp, extra_config={"xferlog_enable": "NO", "log_ftp_protocol": "NO"})
    pids = _vsftpd_pids([VSFTPD_BINARY, str(tmp / "vsftpd.conf")])
    listener = next(pid for pid in pids if pid in _children(os.getpid()))  # we started it
    return Server(ftp, listener, CpuGroup.around(f"{ftp.port}", [listener]))


class DelayLine:
    """benchmarks/delayline.py in a helper process, in front of `servers`: `urls` lead
    through it; `counters()` gives its counts since the last call, and its CPU."""

    def __init__(self, servers: list[Server], rtt_ms: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(REPO / "benchmarks" / "delayline.py"), "--rtt-ms", str(rtt_ms),
             *(str(server.ftp.port) for server in servers)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=ENV,
        )
        assert self.proc.stdin and self.proc.stdout
        self.stdin, self.stdout = self.proc.stdin, self.proc.stdout
        ports = json.loads(self.stdout.readline())["ports"]
        self.urls = [f"ftp://127.0.0.1:{ports[str(server.ftp.port)]}" for server in servers]
        self.cpu = _proc_cpu(self.proc.pid)

    def counters(self) -> dict[str, Any]:
        self.stdin.write("stats\n")
        self.stdin.flush()
        counts = json.loads(self.stdout.readline())
        cpu, self.cpu = self.cpu, _proc_cpu(self.proc.pid)
        counts["delay_line_cpu"] = round(self.cpu - cpu, 3)
        return counts

    def close(self) -> None:
        self.stdin.close()
        self.proc.wait(timeout=10)


def run_process(argvs: list[list[str]], servers: list[Server], cwd: Path) -> tuple[Sample, str]:
    """Run the tools' processes at once, to completion (harness.timed: wall until the
    last exits, client CPU and peak RSS from wait4, summed), the servers' CPU over the
    same span."""
    before = sum(server.cpu() for server in servers)
    log = cwd / "tool.log"
    run = timed(argvs[0][0], 0, argvs, cwd=cwd, env=ENV, log=log)
    server_cpu = sum(server.cpu() for server in servers) - before
    sample = Sample(tool=run.tool, wall=run.wall, client_cpu=run.cpu, server_cpu=server_cpu, rss_mb=run.rss_mb,
                    load=run.load, ok=run.ok)
    return sample, log.read_text(errors="replace")[-2000:]


# ---------------------------------------------------------------------- data


def make_tree(root: Path, files: int, dirs: int, size: int) -> None:
    """`files` files of `size` bytes spread over `dirs` directories (made once)."""
    marker = root.with_name(root.name + ".made")  # outside the served tree
    wanted = f"{files} {dirs} {size}"
    if marker.exists() and marker.read_text() == wanted:
        return
    for child in root.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()
    block = os.urandom(min(size, 1 << 20)) if size else b""
    per_dir = -(-files // dirs)
    for index in range(files):
        directory = root / f"d{index // per_dir:04d}"
        if index % per_dir == 0:
            directory.mkdir()
        with open(directory / f"f{index:06d}.bin", "wb") as out:
            left = size
            while left > 0:
                out.write(block[:left])
                left -= len(block)
    marker.write_text(wanted)


def tree_count(root: Path) -> tuple[int, int]:
    """(files, bytes) under root, state files and .part files excluded."""
    count = total = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            if name.endswith(".part"):
                continue
            count += 1
            total += os.lstat(os.path.join(dirpath, name)).st_size
    return count, total


def data_root(work: Path, name: str) -> Path:
    root = work / "data" / name
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    return root


# --------------------------------------------------------------------- tools


def xfer_job(work: Path, name: str, sites: list[tuple[str, Path]], limit: int) -> Path:
    """A job file mirroring each (url, dest) with `limit` connections per host."""
    lines = [
        "defaults:",
        f"  max_connections_per_host: {limit}",
        f"  max_connections: {max(64, limit * len(sites))}",
        f"  state: {work / (name + '-state.db')}",
        "jobs:",
    ]
    for index, (url, dest) in enumerate(sites):
        lines += [f"  - name: m{index}", "    kind: ftp.mirror", f"    remote: {url}/", f"    local: {dest}"]
    path = work / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def xfer_argv(job: Path, *extra: str) -> list[str]:
    return [*XFER, "run", "--quiet", "--report", str(job.with_suffix(".report.json")), str(job), *extra]


def xfer_failed(job: Path) -> str:
    report = json.loads(job.with_suffix(".report.json").read_text())
    failed = report["totals"]["tasks_failed"] + report["totals"]["jobs_failed"]
    return f"{failed} failed" if failed else ""


def lftp_argv(url: str, dest: Path, parallel: int, only_newer: bool = False) -> list[str]:
    newer = " --only-newer" if only_newer else ""
    return ["lftp", "-c", f"set net:max-retries 2; open {url}; mirror --parallel={parallel}{newer} / {dest}"]


def rclone_argv(server: Server, dest: Path, parallel: int) -> list[str]:
    obscured = subprocess.run(["rclone", "obscure", "anonymous@"], capture_output=True, text=True, check=True).stdout.strip()
    return [
        "rclone", "copy", ":ftp:/", str(dest), "--config", "/dev/null",
        f"--ftp-host={server.ftp.host}", f"--ftp-port={server.ftp.port}", "--ftp-user=anonymous",
        f"--ftp-pass={obscured}", f"--transfers={parallel}", f"--checkers={parallel}",
        "--multi-thread-streams=0", "--ftp-concurrency", str(parallel * 2),
    ]


def clear(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)


# ------------------------------------------------------------------ scenarios


@dataclass
class Results:
    """Samples by scenario and tool, and the run's context."""

    samples: dict[str, dict[str, list[Sample]]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def add(self, scenario: str, label: str, sample: Sample, round_no: int, expect: tuple[int, int] | None = None,
            dest: Path | None = None) -> None:
        sample.tool, sample.round = label, round_no
        if expect is not None and dest is not None:
            got = tree_count(dest)
            if got != expect:
                sample.ok = False
                sample.note = f"got {got[0]} files/{got[1]} bytes, expected {expect[0]}/{expect[1]}"
        if not sample.ok:
            print(f"  !! {scenario} {label}: FAILED {sample.note}", file=sys.stderr)
        print(f"  {scenario:6} {label:16} {sample.wall:8.3f}s  cpu {sample.client_cpu:6.2f}+{sample.server_cpu:5.2f}s"
              f"  rss {sample.rss_mb:6.1f} MB  load {sample.load}"
              + "".join(f"  {key} {value}" for key, value in sample.extra.items()), file=sys.stderr)
        self.samples.setdefault(scenario, {}).setdefault(label, []).append(sample)


def run_xfer(job: Path, servers: list[Server], work: Path, *extra: str) -> Sample:
    """One `xfer run` of the job file; failed items in its report fail the sample."""
    sample, log = run_process([xfer_argv(job, *extra)], servers, cwd=work)
    if sample.ok:
        sample.note = xfer_failed(job)
        sample.ok = not sample.note
    elif not sample.note:
        sample.note = log[-300:]
    return sample


def warm_up(work: Path, url: str) -> None:
    """One untimed xfer mirror (fills the bytecode cache, wakes the server)."""
    dest = work / "dest-warm-up"
    clear(dest)
    (work / "warm-up-state.db").unlink(missing_ok=True)
    run_process([xfer_argv(xfer_job(work, "warm-up", [(url, dest)], 2))], [], cwd=work)
    shutil.rmtree(dest, ignore_errors=True)


def scenario_tree(args: argparse.Namespace, results: Results, name: str, files: int, dirs: int, size: int,
                  noop: bool) -> None:
    """small (and noop) or large: one tree, every tool, `rounds` rounds."""
    work: Path = args.work
    root = data_root(work, name)
    make_tree(root, files, dirs, size)
    server = start_server(root, work)
    expect = (files, files * size)
    tools = list(args.tools) + ([f"xfer-p{args.xfer_processes}"] if args.xfer_processes else [])
    try:
        warm_up(work, server.url)
        for round_no in range(args.rounds):
            for tool in rotated(tools, round_no):
                dest = work / f"dest-{name}-{tool}"
                clear(dest)
                if tool.startswith("xfer"):
                    # xfer-pN: `xfer run --processes N`, the mirror split into shares of its tree
                    extra = ["--processes", tool.removeprefix("xfer-p")] if tool != "xfer" else []
                    (work / f"{name}-state.db").unlink(missing_ok=True)
                    job = xfer_job(work, name, [(server.url, dest)], args.connections)
                    sample = run_xfer(job, [server], work, *extra)
                    results.add(name, tool, sample, round_no, expect, dest)
                    if noop:
                        results.add("noop", tool, run_xfer(job, [server], work, *extra), round_no, expect, dest)
                    shutil.rmtree(dest, ignore_errors=True)
                    continue
                if tool == "lftp":
                    argv = lftp_argv(server.url, dest, args.connections)
                    again = lftp_argv(server.url, dest, args.connections, only_newer=True)
                else:
                    argv = again = rclone_argv(server, dest, args.connections)
                sample, log = run_process([argv], [server], cwd=work)
                sample.note = sample.note if sample.ok else log[-300:]
                results.add(name, tool, sample, round_no, expect, dest)
                if noop:
                    sample, log = run_process([again], [server], cwd=work)
                    results.add("noop", tool, sample, round_no, expect, dest)
                shutil.rmtree(dest, ignore_errors=True)
    finally:
        server.stop()


def scenario_sites(args: argparse.Namespace, results: Results, name: str, files: int, rtt_ms: float | None) -> None:
    """`args.sites` vsftpd servers with `files` files each, `args.site_limit` connections
    per site: one xfer run (one job per site) vs all lftp processes at once vs lftp site
    after site. With `rtt_ms`, every site sits behind the delay line (delayline.py) and
    each sample counts the client's control-channel writes per file (`round_trips_per_file`)."""
    work: Path = args.work
    roots = []
    for index in range(args.sites):
        root = data_root(work, f"{name}{index:02d}")
        make_tree(root, files, 5, args.file_size)
        roots.append(root)
    servers = [start_server(root, work) for root in roots]
    line = DelayLine(servers, rtt_ms) if rtt_ms is not None else None
    urls = line.urls if line else [server.url for server in servers]
    total = files * args.sites
    expect = (total, total * args.file_size)
    base = work / f"dest-{name}"
    tools = ["xfer", "lftp-concurrent"] + (["lftp-sequential"] if line is None or args.include_sequential else [])
    if args.xfer_workers:
        tools.insert(1, f"xfer-w{args.xfer_workers}")  # `xfer run --workers N` (issue 10)
    if args.xfer_processes:
        tools.insert(1, f"xfer-p{args.xfer_processes}")  # `xfer run --processes N` (issue 15)
    try:
        warm_up(work, servers[0].url)
        for round_no in range(args.rounds):
            for tool in rotated(tools, round_no):
                clear(base)
                dests = [base / f"s{index:02d}" for index in range(len(servers))]
                if line:
                    line.counters()  # from zero
                if tool.startswith("xfer"):
                    (work / f"{name}-state.db").unlink(missing_ok=True)
                    extra = {"xfer": [], f"xfer-w{args.xfer_workers}": ["--workers", str(args.xfer_workers)],
                             f"xfer-p{args.xfer_processes}": ["--processes", str(args.xfer_processes)]}[tool]
                    job = xfer_job(work, name, list(zip(urls, dests)), args.site_limit)
                    sample = run_xfer(job, servers, work, *extra)
                elif tool == "lftp-sequential":
                    samples = [run_process([lftp_argv(url, dest, args.site_limit)], [server], cwd=work)[0]
                               for url, dest, server in zip(urls, dests, servers)]
                    sample = Sample(tool, sum(x.wall for x in samples), sum(x.client_cpu for x in samples),
                                    sum(x.server_cpu for x in samples), max(x.rss_mb for x in samples),
                                    samples[0].load, all(x.ok for x in samples))
                else:
                    sample, _ = run_process([lftp_argv(url, dest, args.site_limit) for url, dest in zip(urls, dests)],
                                            servers, cwd=work)
                if line:
                    sample.extra = line.counters()
                    sample.extra["round_trips_per_file"] = round(sample.extra["control_writes"] / total, 3)
                results.add(name, tool, sample, round_no, expect, base)
    finally:
        if line:
            line.close()
        for server in servers:
            server.stop()
        shutil.rmtree(base, ignore_errors=True)


def scenario_rss(args: argparse.Namespace, results: Results) -> None:
    """Peak RSS of one xfer mirror of a big tree (and its time)."""
    work: Path = args.work
    root = data_root(work, "rss")
    make_tree(root, args.rss_files, max(1, args.rss_files // 500), args.rss_size)
    server = start_server(root, work)
    dest = work / "dest-rss"
    expect = (args.rss_files, args.rss_files * args.rss_size)
    try:
        clear(dest)
        (work / "rss-state.db").unlink(missing_ok=True)
        job = xfer_job(work, "rss", [(server.url, dest)], args.connections)
        results.add("rss", "xfer", run_xfer(job, [server], work), 0, expect, dest)
        results.add("rss", "xfer-noop", run_xfer(job, [server], work), 0, expect, dest)
    finally:
        server.stop()
        shutil.rmtree(dest, ignore_errors=True)


def scenario_lag(args: argparse.Namespace, results: Results) -> None:
    """Worst event-loop stall while xfer writes the large files, per destination."""
    from xfer.events import EventBus
    from xfer.report import Report
    from xfer.scheduler import RunOptions, Scheduler
    from xfer.spec import load_job_file
    import uvloop

    work: Path = args.work
    root = data_root(work, "large")
    size = parse_size(args.large_size)
    make_tree(root, args.large_files, 1, size)
    server = start_server(root, work)
    lags: dict[str, Any] = {}
    try:
        for where in [work, args.disk_dir]:
            dest = Path(where) / "xfer-bench-lag-dest"
            for _ in range(args.rounds):
                clear(dest)
                (work / "lag-state.db").unlink(missing_ok=True)
                job = xfer_job(work, "lag", [(server.url, dest)], args.connections)
                stalls: list[float] = []

                async def main() -> None:
                    events = EventBus()
                    events.subscribe(Report())
                    scheduler = Scheduler([load_job_file(job)], events, RunOptions())

                    async def watch() -> None:
                        while True:
                            before = time.perf_counter()
                            await asyncio.sleep(0.001)
                            stalls.append(time.perf_counter() - before - 0.001)

                    watcher = asyncio.create_task(watch())
                    try:
                        await scheduler.run()
                    finally:
                        watcher.cancel()
                        scheduler.close()

                started = time.perf_counter()
                with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                    runner.run(main())
                wall = time.perf_counter() - started
                stalls.sort()
                row = lags.setdefault(str(where), {"max_ms": [], "p99_ms": [], "mib_s": []})
                row["max_ms"].append(round(stalls[-1] * 1000, 2))
                row["p99_ms"].append(round(stalls[int(len(stalls) * 0.99)] * 1000, 2))
                row["mib_s"].append(round(args.large_files * size / wall / 2**20, 1))
                print(f"  lag    {str(where):16} max {row['max_ms'][-1]} ms p99 {row['p99_ms'][-1]} ms "
                      f"{row['mib_s'][-1]} MiB/s load {os.getloadavg()[0]:.2f}", file=sys.stderr)
                os.sync()
            shutil.rmtree(dest, ignore_errors=True)
    finally:
        server.stop()
    results.extra["lag"] = lags


# -------------------------------------------------------------------- report


def summarise(results: Results, args: argparse.Namespace) -> dict[str, Any]:
    """Medians per scenario and tool, with the ratios the issue asks for."""
    out: dict[str, Any] = {}
    for scenario, by_tool in results.samples.items():
        rows = {}
        for tool, samples in by_tool.items():
            good = [s for s in samples if s.ok] or samples
            rows[tool] = {
                "wall": statistics.median(s.wall for s in good),
                "client_cpu": statistics.median(s.client_cpu for s in good),
                "server_cpu": statistics.median(s.server_cpu for s in good),
                "rss_mb": max(s.rss_mb for s in good),
                "load": [s.load[0] for s in samples],
                "runs": [round(s.wall, 3) for s in samples],
                "failed": [s.note for s in samples if not s.ok],
            }
            for key in ("round_trips_per_file", "delay_line_cpu", "late_ms_max"):
                if all(key in s.extra for s in good):
                    rows[tool][key] = statistics.median(s.extra[key] for s in good)
        out[scenario] = rows
    counts = {"small": args.files, "large": args.large_files, "sites": args.sites * args.site_files,
              "wan": args.sites * args.wan_files}
    for scenario, rows in out.items():
        for tool, row in rows.items():
            if scenario in counts:
                row["files_s"] = counts[scenario] / row["wall"]
            if scenario == "large":
                row["mib_s"] = args.large_files * parse_size(args.large_size) / row["wall"] / 2**20
        for reference in ("lftp", "lftp-concurrent", "lftp-sequential"):
            if "xfer" in rows and reference in rows:
                rows["xfer"]["ratio_to_" + reference] = rows["xfer"]["wall"] / rows[reference]["wall"]
                everyone = [sample for samples in results.samples[scenario].values() for sample in samples]
                rows["xfer"]["paired_ratio_to_" + reference] = paired_ratio(everyone, "xfer", reference)
    return out


def print_table(summary: dict[str, Any]) -> None:
    print(f"{'scenario':8} {'tool':16} {'wall s':>8} {'files/s':>8} {'MiB/s':>7} {'cli cpu':>7} {'srv cpu':>7}"
          f" {'RSS MB':>7} {'ratio':>6} {'paired':>6}  load / runs")
    for scenario, rows in summary.items():
        for tool, row in rows.items():
            ratio = next((value for key, value in row.items() if key.startswith("ratio_to_")), None)
            paired = next((value for key, value in row.items() if key.startswith("paired_ratio_to_")), None)
            print(f"{scenario:8} {tool:16} {row['wall']:8.3f} {row.get('files_s', 0):8.0f} {row.get('mib_s', 0):7.0f}"
                  f" {row['client_cpu']:7.2f} {row['server_cpu']:7.2f} {row['rss_mb']:7.1f}"
                  f" {ratio if ratio is None else round(ratio, 2)!s:>6} {paired!s:>6}  {row['load']} {row['runs']}"
                  + (f"  round trips/file {row['round_trips_per_file']}" if "round_trips_per_file" in row else "")
                  + (f"  FAILED: {row['failed']}" if row["failed"] else ""))


def serve(args: argparse.Namespace) -> list[Server]:
    """`--serve`: vsftpd on a scenario's data, for profiling by hand. Prints the URL
    (small, large) or the path of an xfer job file mirroring every site (sites)."""
    if args.serve == "sites":
        roots = [data_root(args.work, f"sites{index:02d}") for index in range(args.sites)]
        for root in roots:
            make_tree(root, args.site_files, 5, args.file_size)
        servers = [start_server(root, args.work) for root in roots]
        dests = [args.work / "dest-serve" / f"s{index:02d}" for index in range(len(servers))]
        print(xfer_job(args.work, "serve-sites", [(server.url, dest) for server, dest in zip(servers, dests)],
                       args.site_limit), flush=True)
        return servers
    root = data_root(args.work, args.serve)
    if args.serve == "small":
        make_tree(root, args.files, args.dirs, args.file_size)
    elif args.serve == "large":
        make_tree(root, args.large_files, 1, parse_size(args.large_size))
    server = start_server(root, args.work, "-serve")
    print(server.url, flush=True)
    return [server]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenarios", default="small,noop,large,sites,lag",
                        help="comma-separated: small,noop,large,sites,wan,rss,lag")
    parser.add_argument("--tools", default=",".join(TOOLS), help="peers for small/noop/large")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--files", type=int, default=5000)
    parser.add_argument("--dirs", type=int, default=50)
    parser.add_argument("--file-size", default="4k")
    parser.add_argument("--large-files", type=int, default=4)
    parser.add_argument("--large-size", default="256M")
    parser.add_argument("--sites", type=int, default=20)
    parser.add_argument("--site-files", type=int, default=250)
    parser.add_argument("--site-limit", type=int, default=4)
    parser.add_argument("--xfer-workers", type=int, default=0,
                        help="sites: also `xfer run --workers N` (a private redis-server and N worker processes)")
    parser.add_argument("--xfer-processes", type=int, default=0,
                        help="also `xfer run --processes N` (sites: the jobs dealt over N forked processes; "
                             "small/noop/large: the mirror split into N shares of its tree)")
    parser.add_argument("--wan-files", type=int, default=50, help="files per site behind the delay line")
    parser.add_argument("--rtt-ms", type=float, default=50.0, help="the delay line's round trip (wan)")
    parser.add_argument("--include-sequential", action="store_true",
                        help="wan: also lftp site after site (about 86 s a round at 20 sites)")
    parser.add_argument("--rss-files", type=int, default=200_000)
    parser.add_argument("--rss-size", default="64")
    parser.add_argument("--disk-dir", type=Path, default=Path("/var/tmp"), help="a directory on a real disk (lag)")
    parser.add_argument("--work", type=Path, default=Path("/dev/shm/xfer-bench-ftp"))
    parser.add_argument("--json", type=Path, help="raw data (default benchmarks/results-ftp-SCENARIOS.json)")
    parser.add_argument("--serve", metavar="SCENARIO", help="only start vsftpd on that scenario's data and wait (small, large, sites)")
    args = parser.parse_args()
    args.tools = args.tools.split(",")
    args.file_size = parse_size(args.file_size)
    args.rss_size = parse_size(args.rss_size)
    args.work.mkdir(parents=True, exist_ok=True)
    os.chmod(args.work, 0o755)
    os.chmod(args.work.parent, os.stat(args.work.parent).st_mode | 0o001)
    wanted = args.scenarios.split(",")
    args.json = args.json or REPO / "benchmarks" / f"results-ftp-{'-'.join(wanted)}.json"

    if args.serve:
        servers = serve(args)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # run the finally: stop vsftpd
        try:
            while True:
                time.sleep(3600)
        finally:
            for server in servers:
                server.stop()

    results = Results()
    steps: list[tuple[str, Callable[[], None]]] = [
        ("small", lambda: scenario_tree(args, results, "small", args.files, args.dirs, args.file_size, "noop" in wanted)),
        ("large", lambda: scenario_tree(args, results, "large", args.large_files, 1, parse_size(args.large_size), False)),
        ("sites", lambda: scenario_sites(args, results, "sites", args.site_files, None)),
        ("wan", lambda: scenario_sites(args, results, "wan", args.wan_files, args.rtt_ms)),
        ("rss", lambda: scenario_rss(args, results)),
        ("lag", lambda: scenario_lag(args, results)),
    ]
    started = time.time()
    for name, step in steps:
        if name in wanted or (name == "small" and "noop" in wanted):
            print(f"== {name}", file=sys.stderr)
            step()
    summary = summarise(results, args)
    print_table(summary)
    if "lag" in results.extra:
        for where, row in results.extra["lag"].items():
            print(f"lag {where}: worst stall {row['max_ms']} ms, p99 {row['p99_ms']} ms, {row['mib_s']} MiB/s")
    document = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "argv": sys.argv,
        "cpus": os.cpu_count(),
        "summary": summary,
        "extra": results.extra,
        "samples": {k: {t: [asdict(s) for s in v] for t, v in by.items()} for k, by in results.samples.items()},
    }
    args.json.write_text(json.dumps(document, indent=2) + "\n")
    print(f"written {args.json}", file=sys.stderr)
    return 0 if all(s.ok for by in results.samples.values() for v in by.values() for s in v) else 1


if __name__ == "__main__":
    sys.exit(main())
