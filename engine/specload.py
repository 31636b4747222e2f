"""Reading job files: from the cache when unchanged, else validated.

An unchanged valid file comes from `engine/speccache.py`: no YAML parsing, no
validation, no schema built; `xfer validate` of it imports neither pydantic nor any
kind, and `xfer run` of it no pydantic (runs use records, `engine/records.py`).
Validation itself (`engine/specvalidate.py`: PyYAML, pydantic, the spec models of the
named kinds) is imported only when a file must be parsed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from xfer import speccache
from xfer.errors import SpecError

if TYPE_CHECKING:
    from xfer.jobfile import JobFile


def _read(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
        raw.decode("utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not UTF-8 text") from None
    return raw


def parse_job_text(text: str, source: str, path: Path | None = None) -> JobFile:
    """Validate job-file text (never cached); raise SpecError naming source:line:col and key."""
    from xfer.specvalidate import parse

    return parse(text, source, path)[0]


def parse_job_data(data: dict[str, Any], source: str, base_dir: Path) -> JobFile:
    """Validate a job file given as a dict (never cached; `${VAR}` is not expanded:
    the caller built the values). Errors name `source` and the key path; relative
    paths in it start at `base_dir`."""
    from xfer.specvalidate import validate_data

    return validate_data(data, source, base_dir / source)


def load_job_file(path: Path | str) -> JobFile:
    """Read and validate one job file (from the cache when it has not changed)."""
    path = Path(path)
    raw = _read(path)
    entry = speccache.lookup(raw)
    if entry is not None:
        cached = entry.job_file(path, raw)
        if cached is not None:
            return cached
    from xfer.specvalidate import parse

    env_used: set[str] = set()
    file, data = parse(raw.decode("utf-8"), str(path), path, env_used)
    speccache.store(raw, file, data, env_used)
    return file


def count_jobs(path: Path | str) -> int:
    """Validate one job file and say how many jobs it has: from the cache entry alone
    when the file has not changed."""
    path = Path(path)
    entry = speccache.lookup(_read(path))
    return entry.jobs if entry is not None else len(load_job_file(path).jobs)
