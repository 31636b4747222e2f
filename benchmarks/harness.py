"""What every benchmark here measures the same way: whole processes, alternating order, raw data.

A tool is timed from spawn to exit (start-up included), its CPU (user + sys) and peak RSS
come from wait4(); the 1/5/15-minute load (`uptime`) is read as each run starts. Rounds
rotate the order of the tools, so none always runs first on a warm or a cold machine.
Each script writes every run to a JSON file in benchmarks/ that RESULTS.md rows cite.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

#: Where the benchmarks install xfer as a user would have it (see `installed_xfer`).
BENCH_ENV = Path("/dev/shm/xfer-bench-env")


def installed_xfer() -> list[str]:
    """`xfer` as a user runs it: installed from a wheel of this checkout into a venv of
    its own (its dependencies taken from the development venv through a .pth line), so
    no run pays the editable install's import hook (~17 ms a start, ~20 % of `import
    asyncio` here). Built afresh by every benchmark run, so it is the checkout's code.
    XFER_BENCH_EDITABLE=1 uses the development venv's `xfer` instead."""
    script = Path(sys.executable).with_name("xfer")
    if os.environ.get("XFER_BENCH_EDITABLE"):
        return [str(script)] if script.exists() else [sys.executable, "-m", "xfer"]
    repo = Path(__file__).resolve().parents[1]
    python = BENCH_ENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(BENCH_ENV)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                    "--force-reinstall", str(repo)], check=True)
    site = next((BENCH_ENV / "lib").glob("python3*/site-packages"))
    (site / "_xfer_dependencies.pth").write_text(next(Path(sys.prefix, "lib").glob("python3*/site-packages")).as_posix() + "\n")
    return [str(BENCH_ENV / "bin" / "xfer")]


XFER = installed_xfer()


#: Where the tools' Python bytecode is cached, kept from run to run.
PYCACHE = Path("/dev/shm/xfer-bench-pycache")


def tool_env(pycache: Path = PYCACHE) -> dict[str, str]:
    """The tools' environment. Python bytecode is cached (in `pycache`, outside the repo):
    an installed xfer has its .pyc files, and PYTHONDONTWRITEBYTECODE=1, set on these
    machines, would otherwise add ~0.1 s of compiling to every xfer run. The first run
    into an empty cache still compiles: each benchmark warms up with an untimed run."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


class CpuGroup:
    """A CPU-accounting cgroup around a server's processes and every process they fork
    from now on. A forking server's own accounting misses sessions its master does not
    reap (vsftpd: half of its time on the small mirror, a different part per client)."""

    def __init__(self, usage: Path) -> None:
        self.usage = usage

    @classmethod
    def around(cls, name: str, pids: Sequence[int]) -> CpuGroup | None:
        """The group `xfer-bench-NAME` holding `pids`, or None where none can be made
        (no root, no cpuacct controller)."""
        for root, usage in ((Path("/sys/fs/cgroup/cpuacct"), "cpuacct.usage"), (Path("/sys/fs/cgroup"), "cpu.stat")):
            if (root / usage).exists() or (root / "cgroup.procs").exists() and (root / "cgroup.controllers").exists():
                group = root / f"xfer-bench-{name}"
                try:
                    group.mkdir(exist_ok=True)
                    for pid in pids:
                        with contextlib.suppress(ProcessLookupError):  # a helper that has just ended
                            (group / "cgroup.procs").write_text(str(pid))
                except OSError:
                    continue
                return cls(group / usage)
        return None

    def cpu(self) -> float:
        """CPU seconds the group has used (v1 cpuacct.usage in ns, v2 cpu.stat usage_usec)."""
        text = self.usage.read_text()
        if self.usage.name == "cpu.stat":
            return int(text.split("usage_usec", 1)[1].split()[0]) / 1e6
        return int(text) / 1e9

    def remove(self) -> None:
        """Remove the group (a process of it may still be exiting: then it stays)."""
        with contextlib.suppress(OSError):
            self.usage.parent.rmdir()


def load() -> list[float]:
    """`uptime`'s load averages (1, 5, 15 minutes)."""
    return [round(value, 2) for value in os.getloadavg()]


@dataclass
class Run:
    """One whole-process run of one tool (or several processes started together)."""

    tool: str
    round: int
    wall: float
    cpu: float
    rss_mb: float
    load: list[float]
    exit_code: int
    ok: bool = True
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def timed(tool: str, round_no: int, argvs: Sequence[Sequence[str]], *, cwd: Path | None = None,
          env: dict[str, str] | None = None, log: Path | None = None) -> Run:
    """Start every argv at once and wait for all: wall until the last exits, CPU summed,
    RSS summed (each process's peak), exit code the first non-zero one."""
    before = load()
    out = open(log, "wb") if log else subprocess.DEVNULL
    try:
        started = time.perf_counter()
        procs = [subprocess.Popen(list(argv), cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT) for argv in argvs]
        cpu = rss = 0.0
        code = 0
        for proc in procs:
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            cpu += usage.ru_utime + usage.ru_stime
            rss += usage.ru_maxrss / 1024
            code = code or proc.returncode
        wall = time.perf_counter() - started
    finally:
        if log:
            out.close()  # type: ignore[union-attr]
    return Run(tool, round_no, wall, cpu, rss, before, code, ok=code == 0,
               note="" if code == 0 or not log else log.read_text(errors="replace")[-300:])


def rotated(items: Sequence[T], round_no: int) -> list[T]:
    """`items` starting at position round_no (mod len): each goes first in turn."""
    shift = round_no % len(items)
    return list(items[shift:]) + list(items[:shift])


def median_of(runs: list[Run], key: str = "wall") -> float:
    """Median over the successful runs (all of them if none succeeded)."""
    good = [run for run in runs if run.ok] or runs
    return statistics.median(getattr(run, key) for run in good)


def median_extra(runs: list[Run], key: str) -> float | None:
    """Median of `run.extra[key]` over the successful runs that have it (None if none)."""
    values = [run.extra[key] for run in runs if run.ok and key in run.extra]
    return round(statistics.median(values), 3) if values else None


def write_raw(path: Path, runs: dict[str, list[Run]], summary: dict[str, Any], started: float,
              **context: Any) -> None:
    """The raw per-run data and the summary, with the machine and the command line."""
    document = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
        "argv": sys.argv,
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        **context,
        "summary": summary,
        "runs": {scenario: [asdict(run) for run in items] for scenario, items in runs.items()},
    }
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(f"written {path}", file=sys.stderr)
