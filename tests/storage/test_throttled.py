"""The bandwidth-limited store: a store like any other, whose reads take bytes / rate seconds."""

from __future__ import annotations

import math
from pathlib import Path

import anyio
import pytest

from blobrep.errors import InvalidParameterError, NotFoundError
from blobrep.storage.base import Store
from blobrep.storage.faulty import FaultyStore
from blobrep.storage.local import LocalStore
from blobrep.storage.throttled import ThrottledStore
from tests.storage.contract import MIB, StoreContract, listed, payload

KIB = 1024
#: Scheduling slack allowed on top of the ideal time, in seconds.
SLACK = 0.1


class TestThrottledStoreAtAHighRate(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Store:
        root = tmp_path / "root"
        root.mkdir()
        return ThrottledStore(LocalStore(root), 4096 * MIB)


class _Held(FaultyStore):
    """A local store whose objects written here are read back from memory: the timing tests
    measure the throttle, which charges after the inner read, and a disk read that stalls
    under another test's writeback would count against it."""

    def __init__(self, inner: Store, held: dict[str, bytes]) -> None:
        super().__init__(inner)
        self.held = held

    async def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        data = self.held.get(key)
        if data is None:
            return await super().get(key, offset, length)
        return data[offset:] if length is None else data[offset : offset + length]


@pytest.fixture
async def inner(tmp_path: Path) -> Store:
    """A store holding ``blob/0`` .. ``blob/9`` of 64 KiB each and ``big`` of 1 MiB."""
    root = tmp_path / "root"
    root.mkdir()
    store = LocalStore(root, name="replica-1")
    held = {f"blob/{index}": payload(64 * KIB, index) for index in range(10)}
    held["big"] = payload(MIB, 99)
    for key, data in held.items():
        await store.put(key, data)
    return _Held(store, held)


class Recording(FaultyStore):
    """Records the tag of each ``get`` as the inner store returns it (the order of charging)."""

    def __init__(self, inner: Store, order: list[str]) -> None:
        super().__init__(inner)
        self.order = order

    async def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        data = await super().get(key, offset, length)
        self.order.append(key)
        return data


async def test_a_sequence_of_reads_takes_their_bytes_over_the_rate(inner: Store) -> None:
    rate = 2 * MIB
    store = ThrottledStore(inner, rate, burst=0)

    start = anyio.current_time()
    for index in range(10):
        assert await store.get(f"blob/{index}") == payload(64 * KIB, index)
    elapsed = anyio.current_time() - start

    ideal = 10 * 64 * KIB / rate
    assert ideal * 0.98 <= elapsed <= ideal + SLACK
    stats = store.statistics()
    assert (stats.bytes_served, stats.requests) == (640 * KIB, 10)
    assert ideal * 0.9 <= stats.waited_seconds <= elapsed


async def test_concurrent_readers_share_the_rate_and_finish_together(inner: Store) -> None:
    rate = 2 * MIB
    store = ThrottledStore(inner, rate, burst=0)
    finished: dict[int, float] = {}

    async def reader(number: int) -> None:
        for round_ in range(4):
            await store.get(f"blob/{(number + round_) % 10}")
        finished[number] = anyio.current_time()

    start = anyio.current_time()
    async with anyio.create_task_group() as group:
        for number in range(5):
            group.start_soon(reader, number)
    elapsed = anyio.current_time() - start

    ideal = 5 * 4 * 64 * KIB / rate
    assert ideal * 0.98 <= elapsed <= ideal + SLACK
    # Served in turn, no reader is done before the last round of every reader has begun.
    assert min(finished.values()) - start >= ideal * 0.75
    assert store.statistics().bytes_served == 20 * 64 * KIB


async def test_waiting_reads_are_served_in_the_order_they_were_charged(inner: Store) -> None:
    charged: list[str] = []
    store = ThrottledStore(Recording(inner, charged), 8 * MIB, burst=0)
    completed: list[str] = []

    async def read(key: str) -> None:
        await store.get(key)
        completed.append(key)

    async with anyio.create_task_group() as group:
        for index in range(10):
            group.start_soon(read, f"blob/{index}")

    assert len(completed) == 10
    assert completed == charged


async def test_a_full_bucket_serves_a_burst_at_once_then_the_rate_applies(inner: Store) -> None:
    store = ThrottledStore(inner, MIB, burst=MIB)

    start = anyio.current_time()
    await store.get("big", 0, 512 * KIB)
    first = anyio.current_time() - start
    await store.get("big")
    second = anyio.current_time() - start - first

    assert first < 0.05
    # Half a MiB was left in the bucket, so the whole MiB costs half a second more.
    assert 0.49 <= second <= 0.5 + SLACK


async def test_a_bucket_refills_while_idle_up_to_the_burst_only(inner: Store) -> None:
    store = ThrottledStore(inner, 4 * MIB, burst=64 * KIB)
    await store.get("big")  # drains the bucket into debt: about 0.25 s
    await anyio.sleep(0.1)  # refills more than the burst, which is the cap

    start = anyio.current_time()
    await store.get("blob/0")
    within_burst = anyio.current_time() - start
    await store.get("blob/1")
    beyond = anyio.current_time() - start - within_burst

    assert within_burst < 0.01
    assert 64 * KIB / (4 * MIB) * 0.98 <= beyond <= 64 * KIB / (4 * MIB) + SLACK


async def test_a_cancelled_read_keeps_its_charge_and_later_reads_still_wait(inner: Store) -> None:
    store = ThrottledStore(inner, 2 * MIB, burst=0)

    with anyio.move_on_after(0.1):
        await store.get("big")
    start = anyio.current_time()
    await store.get("blob/0")
    waited = anyio.current_time() - start

    # The MiB charged first is paid off after half a second; the next read waits behind it.
    assert waited >= 0.5 - 0.1 - 0.05
    assert 0.09 <= store.statistics().waited_seconds - waited <= 0.1 + SLACK


async def test_other_operations_pass_through_uncharged(inner: Store) -> None:
    store = ThrottledStore(inner, 64 * KIB, burst=0)

    start = anyio.current_time()
    await store.put("new", payload(MIB, 5))
    assert await store.exists("new")
    assert (await store.stat("new")).size == MIB
    assert [info.size if info else None for info in await store.stat_many(["new", "none"])] == [MIB, None]
    assert "new" in await listed(store)
    await store.sync()
    assert await store.delete("new")

    assert anyio.current_time() - start < 0.5
    assert store.statistics().bytes_served == 0


async def test_a_missing_key_is_not_found_and_costs_nothing(inner: Store) -> None:
    store = ThrottledStore(inner, 64 * KIB, burst=0)

    with pytest.raises(NotFoundError, match="no/such"):
        await store.get("no/such")

    assert store.statistics().requests == 0


async def test_the_name_defaults_to_the_inner_stores(inner: Store) -> None:
    assert ThrottledStore(inner, MIB).name == "replica-1"
    assert ThrottledStore(inner, MIB, name="slow").name == "slow"


@pytest.mark.parametrize("rate", [0, -1, math.inf, math.nan, True, "fast"])
async def test_a_rate_that_is_not_a_positive_number_is_refused(inner: Store, rate: object) -> None:
    with pytest.raises(InvalidParameterError, match="positive number of bytes per second"):
        ThrottledStore(inner, rate)  # type: ignore[arg-type]


@pytest.mark.parametrize("burst", [-1, 1.5, True])
async def test_a_burst_that_is_not_a_whole_number_of_bytes_is_refused(inner: Store, burst: object) -> None:
    with pytest.raises(InvalidParameterError, match="burst"):
        ThrottledStore(inner, MIB, burst=burst)  # type: ignore[arg-type]
