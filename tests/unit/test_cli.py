"""The command line as users meet it: subprocesses, exit codes, help."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from xfer import __version__


def xfer(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xfer", *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_version_and_help() -> None:
    assert xfer("--version").stdout.strip() == f"xfer {__version__}"
    help_text = xfer("--help").stdout
    for command in ("run", "validate", "plan"):
        assert command in help_text
    run_help = xfer("run", "--help").stdout
    for option in ("--only", "--dry-run", "--report", "--json", "--max-connections", "--loop"):
        assert option in run_help


def test_invalid_file_exits_2_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text("jobs:\n  - name: x\n    kind: no.such.kind\n")
    result = xfer("validate", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{path}:3:11: jobs[0].kind: unknown kind 'no.such.kind'" in result.stderr


def test_example_job_files_validate_and_plan(monkeypatch: pytest.MonkeyPatch) -> None:
    examples = sorted((Path(__file__).parents[2] / "jobs").glob("*.yaml"))
    assert examples, "jobs/ has no examples"
    for example in examples:  # secrets users must export, e.g. ${XFER_MAIL_PASSWORD}
        for name in re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", example.read_text()):
            monkeypatch.setenv(name, "example-secret")
    result = xfer("validate", *map(str, examples))
    assert result.returncode == 0, result.stderr
    plan = xfer("plan", *map(str, examples))
    assert plan.returncode == 0, plan.stderr
    assert "example-secret" not in plan.stdout + plan.stderr


def test_only_names_an_unknown_job(tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text("jobs: []\n")
    result = xfer("run", str(path), "--only", "nope")
    assert result.returncode == 2
    assert "--only: no job named nope" in result.stderr


def test_processes_takes_a_count_or_auto(tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text("jobs: []\n")
    for bad, message in (("x", "expected a number or 'auto', got 'x'"), ("0", "--processes must be >= 1")):
        result = xfer("run", str(path), "-P", bad)
        assert result.returncode == 2 and message in result.stderr, result.stderr
    assert xfer("run", str(path), "-P", "auto", "--quiet").returncode == 0


def test_empty_run_succeeds_and_reports(tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text("jobs: []\n")
    result = xfer("run", str(path), "--json")
    assert result.returncode == 0, result.stderr
    assert '"exit_code": 0' in result.stdout


def test_run_history_and_report_in_process(probe_kind: object, tmp_path: Path) -> None:
    import json
    import sqlite3

    from xfer.cli import main

    path = tmp_path / "jobs.yaml"
    path.write_text("jobs:\n  - {name: a, kind: test.probe, count: 3, fail: [1]}\n")
    assert main(["run", str(path), "--quiet", "--report", str(tmp_path / "r.json")]) == 1
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["jobs"][0]["tasks"]["failed"] == 1
    assert report["jobs"][0]["errors"] == ["probe-1: 550 no such file"]
    with sqlite3.connect(tmp_path / ".xfer" / "state.db") as db:
        rows = db.execute("SELECT exit_code, summary FROM runs").fetchall()
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [row[0] for row in rows] == [1]
    assert json.loads(rows[0][1])["tasks_failed"] == 1


def test_readme_job_examples_validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, re.S)
    assert blocks
    monkeypatch.setenv("FTP_PASSWORD", "example-secret")
    monkeypatch.setenv("ARCHIVE_PASSWORD", "example-secret")
    for index, block in enumerate(blocks):
        text = block if block.lstrip().startswith(("defaults", "hosts", "jobs")) else "jobs:\n" + block
        path = tmp_path / f"readme{index}.yaml"
        path.write_text(text)
        result = xfer("validate", str(path))
        assert result.returncode == 0, (block, result.stderr)


def test_the_command_says_everything_before_it_exits(tmp_path: Path) -> None:
    """`xfer` leaves without the interpreter's teardown (cli.entry): what it printed
    into a buffered pipe, far more than the buffer holds, must still all arrive."""
    path = tmp_path / "jobs.yaml"
    path.write_text("jobs: []\n")
    buffered = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    result = subprocess.run(
        [sys.executable, "-m", "xfer", "validate", *[str(path)] * 3001], capture_output=True, text=True, timeout=120,
        env=buffered,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": ok, 0 job(s)\n") == 3001


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"cpu.max": "150000 100000\n"}, 2),  # --cpus=1.5: rounded up
        ({"cpu.max": "max 100000\n"}, None),  # no quota: the affinity
        ({"quota": "-1\n", "period": "100000\n"}, None),  # cgroup v1, no quota
        ({"quota": "100000\n", "period": "100000\n"}, 1),  # cgroup v1, one CPU
        ({}, None),  # no cgroup files
    ],
)
def test_auto_processes_count_a_containers_cpu_quota(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: dict[str, str], expected: int | None
) -> None:
    from xfer import cli

    paths = (tmp_path / "cpu.max", tmp_path / "quota", tmp_path / "period")
    for path in paths:
        if path.name in files:
            path.write_text(files[path.name])
    monkeypatch.setattr(cli, "CPU_QUOTA_FILES", paths)
    monkeypatch.setattr(cli.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert cli._usable_cores() == (4 if expected is None else expected)
