"""The cache of validated job files: a hit skips validation, never holds a secret in
clear, and misses whenever the file, an environment value it reads or the code changes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from xfer import speccache
from xfer.specload import count_jobs, load_job_file

JOB = """\
hosts:
  "ftp.example.org:2121":
    password: ${XFER_TEST_PW}
jobs:
  - name: a
    kind: ftp.mirror
    remote: ftp://user:${XFER_TEST_URL_PW}@ftp.example.org:2121/${XFER_TEST_DIR:-pub}/
    local: mirror
"""


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("XFER_TEST_PW", "host-secret-4711")
    monkeypatch.setenv("XFER_TEST_URL_PW", "url-secret-0815")
    monkeypatch.delenv("XFER_TEST_DIR", raising=False)
    monkeypatch.delenv("XFER_CACHE", raising=False)
    return tmp_path / "cache" / "xfer" / "jobs"


def _entries(directory: Path) -> list[Path]:
    return [path for path in directory.iterdir() if path.name != "key"]


def test_second_load_is_a_hit_with_the_secrets_read_again(cache_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(JOB)
    first = load_job_file(path)
    assert speccache.lookup(path.read_bytes()) is not None
    second = load_job_file(path)
    assert second.jobs == first.jobs and second.hosts == first.hosts
    assert second.hosts["ftp.example.org:2121"].password.get_secret_value() == "host-secret-4711"  # type: ignore[union-attr]
    assert second.jobs[0].remote.secret() == "url-secret-0815"  # type: ignore[attr-defined]
    for entry in cache_dir.iterdir():
        data = entry.read_bytes()
        assert b"host-secret-4711" not in data and b"url-secret-0815" not in data
        assert entry.stat().st_mode & 0o077 == 0


def test_a_changed_environment_value_is_a_miss(cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(JOB)
    assert load_job_file(path).jobs[0].remote.path == "/pub/"  # type: ignore[attr-defined]
    monkeypatch.setenv("XFER_TEST_DIR", "gnu")
    assert speccache.lookup(path.read_bytes()) is None
    assert load_job_file(path).jobs[0].remote.path == "/gnu/"  # type: ignore[attr-defined]


def test_an_edited_file_is_validated_again(cache_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(JOB)
    load_job_file(path)
    path.write_text(JOB.replace("local: mirror", "local: mirror\n    max_conections: 2"))
    with pytest.raises(Exception, match="did you mean 'max_connections'"):
        load_job_file(path)


def test_an_edited_module_is_a_miss(cache_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(JOB)
    load_job_file(path)
    entry = _entries(cache_dir)[0]
    import pickle

    header = pickle.loads(entry.read_bytes())
    code_path, size, mtime = header["code"][0]
    header["code"][0] = (code_path, size, mtime - 1)  # as if the module changed since
    entry.write_bytes(pickle.dumps(header))
    assert speccache.lookup(path.read_bytes()) is None


def test_invalid_files_are_not_cached(cache_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text("jobs:\n  - name: a\n    kind: ftp.mirror\n")
    for _ in range(2):
        with pytest.raises(Exception, match=r"jobs\[0\]\.remote: required key is missing"):
            count_jobs(path)
    assert not cache_dir.exists() or not _entries(cache_dir)


def test_a_directory_others_can_write_is_not_used(cache_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(JOB)
    load_job_file(path)
    cache_dir.chmod(0o777)
    assert speccache.lookup(path.read_bytes()) is None


def _twice(tmp_path: Path, code: str) -> list[subprocess.CompletedProcess[str]]:
    """`code` run in two fresh interpreters on JOB (`sys.argv[1]`): validated, then from the cache."""
    path = tmp_path / "jobs.yaml"
    path.write_text(JOB)
    return [subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60) for _ in range(2)]


def test_validate_from_the_cache_imports_neither_pydantic_nor_yaml_nor_kinds(cache_dir: Path, tmp_path: Path) -> None:
    code = (
        "import sys; from xfer.cli import main; status = main(['validate', sys.argv[1]]);"
        "loaded = [m for m in sys.modules if m.split('.')[0] in ('pydantic', 'yaml', 'rich') or m.startswith('xfer.kinds.')];"
        "print(status, sorted(loaded))"
    )
    runs = _twice(tmp_path, code)
    verdicts = [run.stdout.splitlines() for run in runs]
    assert verdicts[0][0] == verdicts[1][0] == f"{tmp_path / 'jobs.yaml'}: ok, 1 job(s)"
    assert "'pydantic'" in verdicts[0][1]  # validated
    assert verdicts[1][1] == "0 []", runs[1].stderr  # from the cache


def test_a_hit_reads_secrets_back_without_a_yaml_parser(cache_dir: Path, tmp_path: Path) -> None:
    code = (
        "import sys; from xfer.specload import load_job_file; file = load_job_file(sys.argv[1]);"
        "print(file.hosts['ftp.example.org:2121'].password.get_secret_value(), file.jobs[0].remote.secret(),"
        " 'yaml' in sys.modules)"
    )
    runs = _twice(tmp_path, code)
    assert runs[0].stdout.split() == ["host-secret-4711", "url-secret-0815", "True"], runs[0].stderr  # validated
    assert runs[1].stdout.split() == ["host-secret-4711", "url-secret-0815", "False"], runs[1].stderr  # from the cache


@pytest.mark.parametrize(
    ("written", "password", "cached"),
    [
        ("plain-pw", "plain-pw", True),
        ("'it''s quoted'", "it's quoted", True),
        ('"double # quoted"', "double # quoted", True),
        ('"tab\\there"', "tab\there", False),  # an escape: its text is not its value
        ("folded\n      over lines", "folded over lines", False),
    ],
)
def test_how_a_secret_is_written_decides_whether_its_file_is_cached(
    cache_dir: Path, tmp_path: Path, written: str, password: str, cached: bool
) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(JOB.replace("${XFER_TEST_PW}", written))
    for _ in range(2):  # validated, then (when cacheable) from the cache
        assert load_job_file(path).hosts["ftp.example.org:2121"].password.get_secret_value() == password  # type: ignore[union-attr]
    assert (speccache.lookup(path.read_bytes()) is not None) == cached
