"""The cyclic garbage collector around start-up.

Loading the modules of a run allocates some 100,000 objects that live as long as the
process; with the collector on, every burst of allocations triggers collections that
scan them again and again (~8 % of the CPU of a no-op mirror run). A command turns
the collector off while it loads (`paused`); once a run's modules, models and jobs are
built, `resume` moves everything alive into the permanent generation (never scanned
again, and not copied by forked children writing refcounts into it) and turns the
collector back on for the run's own garbage."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Off until `resume`, and on again at the end whatever happened (a command run
    in-process, by a test or the API, leaves the collector as it found it: on)."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def resume() -> None:
    gc.freeze()
    gc.enable()
