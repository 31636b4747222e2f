"""Work units: what one queue message asks a worker to run.

A unit is one job, or one *share* of a load test: never one file or one message
(a queue round trip per item would cost more than the item). A `mail.load` splits
into as many shares as there are workers: its count, concurrency and rate divided
among them, its duration kept, so the shares together are the test that was asked
for. Each unit carries its own copy of the job file's records with only its job in
it; the coordinator resolved paths and environment values already."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from xfer.jobfile import JobFile
from xfer.records import Record, model_of


@dataclasses.dataclass(frozen=True)
class Unit:
    run: str
    job: str
    share: int  # 0-based
    shares: int
    file: JobFile
    options: dict[str, Any]  # RunOptions fields: dry_run, force, max_connections
    whole: Any = None  # a share's job spec before it was split (the coordinator's merged report uses it)

    @property
    def id(self) -> str:
        return self.job if self.shares == 1 else f"{self.job}#{self.share + 1}/{self.shares}"


def _split(total: int, parts: int, index: int) -> int:
    return total // parts + (1 if index < total % parts else 0)


def load_shares(spec: Any, workers: int) -> list[dict[str, Any]]:
    """A load test as `workers` shares (fewer when it has fewer sessions or messages)."""
    parts = max(1, min(workers, spec.concurrency, spec.count or spec.concurrency))
    shares = []
    for index in range(parts):
        share: dict[str, Any] = {"concurrency": _split(spec.concurrency, parts, index)}
        if spec.count is not None:
            share["count"] = _split(spec.count, parts, index)
        if spec.rate is not None:
            share["rate"] = spec.rate / parts
        if parts > 1 and spec.report_html is not None:
            share["report_html"] = None  # the coordinator writes the merged one
        shares.append(share)
    return shares


def mirror_shares(spec: Any, parts: int) -> list[dict[str, Any]]:
    """A download mirror as `parts` shares of its top-level directories (`share: I/N`,
    engine/kinds/_tree_share.py), its own connection bound divided; one share when it
    archives, uploads, or is a share already."""
    if spec.direction != "download" or spec.archive or spec.share or not spec.recursive or spec.max_depth == 0:
        return [{}]
    shares: list[dict[str, Any]] = [{"share": (index + 1, parts)} for index in range(parts)]
    if spec.max_connections:
        for index, share in enumerate(shares):
            share["max_connections"] = max(1, _split(spec.max_connections, parts, index))
    return shares


#: Kinds that split into shares: kind -> (spec, workers) -> field overrides per share.
SPLITTERS: dict[str, Callable[[Any, int], list[dict[str, Any]]]] = {"mail.load": load_shares}
#: What `xfer run --processes` may split too: mirrors, by top-level directory. (Not yet
#: for `--workers`, whose fault suite covers one unit per mirror.)
PROCESS_SPLITTERS = {**SPLITTERS, "ftp.mirror": mirror_shares}


def job_units(file: JobFile, spec: Any, shares: list[dict[str, Any]], run: str, options: dict[str, Any]) -> list[Unit]:
    """One unit per share of `spec` (`shares`: each share's field overrides)."""
    units = []
    for index, overrides in enumerate(shares):
        job = Record(model_of(spec), {**vars(spec), **overrides}) if overrides else spec
        copy = dataclasses.replace(file, jobs=[job])
        units.append(Unit(run, spec.name, index, len(shares), copy, options, spec if overrides else None))
    return units


def split(
    files: Iterable[JobFile], only: set[str] | None, run: str, workers: int, options: dict[str, Any]
) -> list[Unit]:
    units = []
    for file in files:
        for spec in file.jobs:
            if only is not None and spec.name not in only:
                continue
            splitter = SPLITTERS.get(spec.kind)
            units += job_units(file, spec, splitter(spec, workers) if splitter else [{}], run, options)
    return units
