"""How `xfer run --processes N` deals jobs into shards (engine/forked.py): hosts never
straddle shards unless there are fewer hosts than processes, and then the shards share
the host's limit and the global bound through the gate (engine/forked_gate.py)."""

from __future__ import annotations

from typing import Any

import pytest

import xfer
from xfer.forked import plan_shards
from xfer.mailbox_store import budget


def files(jobs: list[dict[str, Any]], **defaults: Any) -> list[Any]:
    return list(xfer.load({"defaults": defaults, "jobs": jobs}).files)


def mirror(name: str, host: str) -> dict[str, Any]:
    return {"name": name, "kind": "ftp.mirror", "remote": f"ftp://{host}/{name}/", "local": f"out/{name}"}


def test_separate_hosts_are_dealt_whole_and_evenly() -> None:
    shards = plan_shards(files([mirror(f"s{n}", f"h{n % 4}:21") for n in range(8)]), None, 2, None)
    assert len(shards) == 2
    assert sorted(len(shard.jobs) for shard in shards) == [4, 4]
    hosts = [{f"h{int(name[1:]) % 4}" for name in shard.jobs} for shard in shards]
    assert not hosts[0] & hosts[1]
    assert all(not shard.shared_hosts for shard in shards)  # no gate: whole hosts keep their limit
    assert sum(shard.max_connections for shard in shards) == 64  # and the global bound is divided


def test_one_host_is_dealt_over_shards_that_share_its_limit_and_the_global_bound() -> None:
    shards = plan_shards(files([mirror(f"s{n}", "h:21") for n in range(5)], max_connections_per_host=5), None, 2, None)
    assert sorted(len(shard.jobs) for shard in shards) == [2, 3]
    assert [shard.shared_hosts for shard in shards] == [{"h:21"}, {"h:21"}]
    assert [shard.max_connections for shard in shards] == [64, 64]  # held by the gate


def test_a_limit_of_one_is_never_split() -> None:
    shards = plan_shards(files([mirror(f"s{n}", "h:21") for n in range(4)], max_connections_per_host=1), None, 4, None)
    assert len(shards) == 1


def test_jobs_sharing_any_host_stay_together() -> None:
    roundtrip = {"name": "rt", "kind": "mail.roundtrip", "smtp": "smtp://mx:25", "fetch": "imap://u:p@mx:143",
                 "envelope": {"from": "a@example.org", "to": "b@example.org"}}
    jobs = [mirror("s0", "mx:21"), roundtrip, {**roundtrip, "name": "rt2", "fetch": "imap://u:p@other:143"},
            mirror("s1", "other:143")]
    shards = plan_shards(files(jobs), None, 3, None)
    together = [shard.jobs for shard in shards if "rt" in shard.jobs][0]
    assert {"rt", "rt2", "s1"} <= together  # smtp://mx:25 and imap://other:143 join them


def test_processes_are_bounded_by_the_global_limit_and_the_selection() -> None:
    shards = plan_shards(files([mirror(f"s{n}", f"h{n}:21") for n in range(6)]), None, 4, 3)
    assert len(shards) == 3 and [shard.max_connections for shard in shards] == [1, 1, 1]
    assert len(plan_shards(files([mirror(f"s{n}", f"h{n}:21") for n in range(6)]), {"s1"}, 1, None)) == 1
    upload = {**mirror("up", "a:21"), "direction": "upload"}
    assert len(plan_shards(files([upload]), None, 4, None)) == 1  # nothing to split it by


def test_a_lone_mirror_splits_into_shares_of_its_tree() -> None:
    shards = plan_shards(files([mirror("big", "h:21")], max_connections_per_host=8), None, 2, None)
    assert len(shards) == 2
    shares = sorted((unit.share, unit.shares, unit.file.jobs[0].share) for shard in shards for unit in shard.units)
    assert shares == [(0, 2, (1, 2)), (1, 2, (2, 2))]
    assert [shard.shared_hosts for shard in shards] == [{"h:21"}, {"h:21"}]
    archived = {**mirror("big", "h:21"), "archive": "zip"}
    assert len(plan_shards(files([archived]), None, 2, None)) == 1  # an archive needs the whole tree


def test_without_split_jobs_a_lone_job_stays_one_but_a_hosts_jobs_are_dealt() -> None:
    lone = files([mirror("big", "h:21")], max_connections_per_host=8)
    assert len(plan_shards(lone, None, 2, None, split_jobs=False)) == 1
    one_host = files([mirror(f"s{n}", "h:21") for n in range(5)], max_connections_per_host=5)
    assert sorted(len(shard.jobs) for shard in plan_shards(one_host, None, 2, None, split_jobs=False)) == [2, 3]


def test_each_process_holds_its_part_of_the_runs_fetch_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    shards = plan_shards(files([mirror(f"s{n}", "h:21") for n in range(5)]), None, 3, None)
    assert [shard.processes for shard in shards] == [3, 3, 3]
    monkeypatch.setattr(budget, "FETCH_MEMORY", 64 * 1024 * 1024)
    budget.divide(shards[0].processes)  # as each child does before its run
    assert budget.FETCH_MEMORY * 3 <= 64 * 1024 * 1024 < (budget.FETCH_MEMORY + 1) * 3
