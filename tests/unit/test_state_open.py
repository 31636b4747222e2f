"""Processes that open the same new state file at once (`xfer run --processes`): SQLite
refuses the switch to WAL with "database is locked" without waiting, and 1 start in
40 failed (its shard's jobs with it) before StateStore retried."""

from __future__ import annotations

import os
from pathlib import Path

from xfer.state import StateStore


def test_many_processes_open_one_new_state_file(tmp_path: Path) -> None:
    failed = 0
    for attempt in range(300):
        path = tmp_path / f"state-{attempt}.db"
        children = []
        for _ in range(2):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    StateStore(path).close()
                    code = 0
                finally:
                    os._exit(code)
            children.append(pid)
        for pid in children:
            failed += os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0
    assert failed == 0
