"""The sequencer's bound on what waits: turns, the first wave, a failed chunk."""

from __future__ import annotations

import asyncio

from xfer.news.sequencer import FIRST_WAVE, Sequencer


def _records(size: int) -> list[dict[str, str]]:
    return [{"body": "x" * size}]


def test_later_chunks_wait_while_the_limit_is_used_and_the_next_one_never_waits() -> None:
    async def main() -> None:
        seq: Sequencer[list[dict[str, str]]] = Sequencer(limit=250)
        for index in (1, 2):
            assert await seq.turn("g", index)
            seq.add("g", index, index, _records(100))
            seq.finished()
        assert seq.held_bytes == 200
        later = asyncio.create_task(seq.turn("g", 3))  # 200 + 100 > 250
        await asyncio.sleep(0)
        assert not later.done() and seq.waiting == 1
        assert await seq.turn("g", 0)  # the awaited chunk always may fetch
        released = seq.add("g", 0, 0, _records(100))
        seq.finished()
        assert [high for high, _ in released] == [0, 1, 2] and seq.held_bytes == 0
        assert await later
        assert seq.peak_bytes == 200

    asyncio.run(main())


def test_before_any_chunk_is_measured_only_the_first_wave_fetches() -> None:
    async def main() -> None:
        seq: Sequencer[list[dict[str, str]]] = Sequencer(limit=10**9)
        for index in range(FIRST_WAVE):
            assert await seq.turn("g", index + 1)
        blocked = asyncio.create_task(seq.turn("g", FIRST_WAVE + 1))
        await asyncio.sleep(0)
        assert not blocked.done()
        seq.add("g", 1, 1, _records(10))
        seq.finished()
        assert await blocked

    asyncio.run(main())


def test_a_failed_chunk_drops_what_waits_after_it_and_skips_the_rest() -> None:
    async def main() -> None:
        seq: Sequencer[list[dict[str, str]]] = Sequencer(limit=150)
        for index in (0, 2, 3):
            assert await seq.turn("g", index)
        seq.add("g", 2, 2, _records(100))
        seq.finished()
        waiting = asyncio.create_task(seq.turn("g", 4))
        await asyncio.sleep(0)
        assert not waiting.done()
        seq.failed("g", 1)
        assert await waiting is False  # after the failed chunk: skipped, not fetched
        assert seq.held_bytes == 0 and seq.held_back() == {"g": 1}
        assert seq.add("g", 3, 3, _records(5)) == []  # arriving late: dropped
        assert [high for high, _ in seq.add("g", 0, 0, _records(5))] == [0]  # before the failure: written
        assert seq.held_back() == {"g": 2}

    asyncio.run(main())
