"""The byte budget every download takes its chunks from: bounded, first come first served,
and nothing lost to a download that is cancelled."""

from __future__ import annotations

import anyio
import pytest

from blobrep.daemon.budget import ByteBudget
from blobrep.errors import InvalidParameterError


async def test_requests_past_the_budget_wait_and_are_served_in_the_order_they_came() -> None:
    budget = ByteBudget(10)
    order: list[str] = []
    assert await budget.acquire(6) == 6

    async def take(name: str, size: int) -> None:
        await budget.acquire(size)
        order.append(name)

    async with anyio.create_task_group() as group:
        group.start_soon(take, "big", 8)
        await anyio.wait_all_tasks_blocked()
        group.start_soon(take, "small", 1)  # fits now, but comes after "big"
        await anyio.wait_all_tasks_blocked()
        assert order == [] and budget.held == 6 and budget.waits == 2
        budget.release(6)
    assert order == ["big", "small"] and budget.held == 9


async def test_a_request_larger_than_the_budget_takes_all_of_it_once_free() -> None:
    budget = ByteBudget(4)
    assert await budget.acquire(100) == 4
    assert budget.held == 4
    budget.release(4)
    assert budget.held == 0


async def test_a_cancelled_wait_takes_nothing_and_lets_the_next_in_line_go() -> None:
    budget = ByteBudget(10)
    await budget.acquire(10)
    served: list[int] = []
    first = anyio.CancelScope()

    async def take(size: int, scope: anyio.CancelScope) -> None:
        with scope:
            served.append(await budget.acquire(size))

    with anyio.fail_after(5):
        async with anyio.create_task_group() as group:
            group.start_soon(take, 10, first)  # first in line, then its client goes away
            await anyio.wait_all_tasks_blocked()
            group.start_soon(take, 3, anyio.CancelScope())
            await anyio.wait_all_tasks_blocked()
            first.cancel()
            await anyio.wait_all_tasks_blocked()
            budget.release(10)
    assert served == [3] and budget.held == 3


def test_a_budget_must_hold_something() -> None:
    with pytest.raises(InvalidParameterError, match="holds nothing"):
        ByteBudget(0)
