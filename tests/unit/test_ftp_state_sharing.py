"""The FTP state of one job file shared by processes (`xfer run --processes`, workers
of a distributed run): a read never leaves a write transaction open, so another
process's write does not wait for this one's next batch commit (which a long
transfer can put off for minutes: its writes then failed with "database is locked")."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from types import SimpleNamespace

from xfer.kinds._ftp_common import FileState
from xfer.kinds._ftp_settled import SettledDirs
from xfer.state import StateStore


def other_process_can_write(path: Path) -> bool:
    """Whether a second connection (another process) can write right now."""
    other = sqlite3.connect(path, timeout=0.2)
    try:
        with other:
            other.execute("INSERT INTO runs (started, finished, exit_code, summary) VALUES (0, 0, 0, '{}')")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        other.close()


def test_reads_leave_no_write_transaction_open(tmp_path: Path) -> None:
    path = tmp_path / "state.db"
    state = FileState(SimpleNamespace(state=StateStore(path), name="job"), "download")  # type: ignore[arg-type]
    settled = SettledDirs(state, str(tmp_path), marks_seen=True)
    state.store.commit()
    state.seen("dir/a.bin", "file")
    state.record("dir/a.bin", 3, None, None, 1)
    state.rows_in("dir")  # flushes the queued rows
    assert other_process_can_write(path)
    state.seen("dir/b.bin", "file")
    settled.opened("dir", b"digest")
    settled.closed("dir")
    assert settled.lookup("dir", b"digest") is not None  # reads, after flushing the settled row
    assert other_process_can_write(path)
