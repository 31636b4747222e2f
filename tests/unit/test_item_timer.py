"""`retry.ItemTimer`: `task_timeout` for the items one worker runs one after the other,
on one timer handle that re-arms for the item running when it fires."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from xfer.retry import ItemTimer


async def _sleep(seconds: float, result: Any = "done") -> Any:
    await asyncio.sleep(seconds)
    return result


def test_quick_items_pass_though_together_they_outlast_the_timeout() -> None:
    async def main() -> list[Any]:
        timer = ItemTimer(0.2, asyncio.current_task())  # type: ignore[arg-type]
        try:
            return [await timer.run(_sleep(0.05, n)) for n in range(8)]  # 0.4 s in all
        finally:
            timer.close()

    assert asyncio.run(main()) == list(range(8))


def test_a_slow_item_after_quick_ones_times_out_and_the_worker_goes_on() -> None:
    async def main() -> tuple[str, Any, int]:
        task: asyncio.Task[Any] = asyncio.current_task()  # type: ignore[assignment]
        timer = ItemTimer(0.2, task)
        try:
            for _ in range(5):
                await timer.run(_sleep(0.05))
            with pytest.raises(TimeoutError) as caught:
                await timer.run(_sleep(5))
            after = await timer.run(_sleep(0.01, "next item"))
            return str(caught.value), after, task.cancelling()
        finally:
            timer.close()

    assert asyncio.run(main()) == ("task took over 0.2s", "next item", 0)


def test_a_stop_is_not_taken_for_a_timeout() -> None:
    async def worker(timer_box: list[ItemTimer]) -> None:
        timer = ItemTimer(30, asyncio.current_task())  # type: ignore[arg-type]
        timer_box.append(timer)
        try:
            await timer.run(_sleep(5))
        finally:
            timer.close()

    async def main() -> None:
        box: list[ItemTimer] = []
        task = asyncio.ensure_future(worker(box))
        await asyncio.sleep(0.05)
        task.cancel()  # a stop
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
