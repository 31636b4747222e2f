"""FileState's queued writes (engine/kinds/_ftp_common.py): a file recorded within the
batch it was seen in is written by its record alone, one row statement instead of
three, and leaves the row the three would have left."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from xfer.kinds._ftp_common import FileState
from xfer.state import StateStore


def test_a_file_recorded_in_the_batch_is_written_by_its_record_alone(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    state = FileState(SimpleNamespace(state=store, name="job"), "download")  # type: ignore[arg-type]
    store.commit()
    statements: list[str] = []
    store.db.set_trace_callback(statements.append)
    state.seen("d/a.bin", "file")
    state.set_pending("d/a.bin", "size 3")
    state.record("d/a.bin", 3, "20240101000000", "second", 7)
    state.seen("d/b.bin", "file")  # still on its way when the batch is written
    state.set_pending("d/b.bin", "size 5")
    state.seen("d/e", "dir")
    store.commit()
    store.db.set_trace_callback(None)
    writes = [sql for sql in statements if sql.lstrip().startswith(("INSERT", "UPDATE"))]
    assert len(writes) == 4  # a: its record; b: seen and pending; e: seen

    rows = state.rows_in("d")
    assert rows["a.bin"] == ("file", 3, "20240101000000", "second", 7, None, state.run)
    assert (rows["b.bin"].type, rows["b.bin"].pending, rows["b.bin"].run) == ("file", "size 5", state.run)
    assert (rows["e"].type, rows["e"].run) == ("dir", state.run)
