"""The per-file time limit of FTP data connections (protocols/_deadline.within): a
wait that outlives it is a TimeoutError, a cancellation from outside stays one, and
the task can be cancelled and time-limited again afterwards."""

from __future__ import annotations

import asyncio

import pytest

from xfer.protocols._deadline import within


async def _never() -> None:
    await asyncio.get_running_loop().create_future()


def test_result_within_the_limit() -> None:
    async def main() -> int:
        async def quick() -> int:
            await asyncio.sleep(0)
            return 7

        return await within(asyncio.get_running_loop(), 30, quick())

    assert asyncio.run(main()) == 7


def test_expired_wait_is_a_timeout_and_the_task_is_not_left_cancelled() -> None:
    async def main() -> str:
        with pytest.raises(TimeoutError):
            await within(asyncio.get_running_loop(), 0.01, _never())
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0
        await asyncio.sleep(0)  # no cancellation left pending
        return "went on"

    assert asyncio.run(main()) == "went on"


def test_cancellation_from_outside_stays_a_cancellation() -> None:
    async def main() -> None:
        task = asyncio.ensure_future(within(asyncio.get_running_loop(), 30, _never()))
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())


def test_errors_pass_through() -> None:
    async def failing() -> None:
        raise ConnectionRefusedError("refused")

    async def main() -> None:
        await within(asyncio.get_running_loop(), 30, failing())

    with pytest.raises(ConnectionRefusedError):
        asyncio.run(main())
