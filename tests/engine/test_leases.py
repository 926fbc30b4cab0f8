"""Leases: shared leases coexist, an exclusive one excludes every other, stale ones do not count,
a lease never outlives its holder's context, and racing acquirers never both win."""

from __future__ import annotations

import builtins
import json
import random
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Final

import anyio
import pytest

from blobrep.core.keys import lease_key
from blobrep.engine.leases import Lease, hold_lease, leases_prefix, list_leases
from blobrep.errors import BusyError, ConflictError, InvalidParameterError, StorageError
from blobrep.storage.base import ObjectInfo, Payload, Store
from blobrep.storage.faulty import Fault, FaultyStore
from blobrep.storage.local import LocalStore
from tests.engine.helpers import GALLERY

PUBLISH: Final = "publish of img/versions/1.0.0"
GC: Final = "garbage collection of gallery1"
HOUR: Final = 3600.0


class AgedStore(FaultyStore):
    """Reports every key containing one of ``aged`` as written ``age`` seconds earlier than it was:
    a crashed holder's lease, or a chunk written long ago, without waiting for either."""

    def __init__(self, inner: Store, age: float, aged: Sequence[str] = ()) -> None:
        super().__init__(inner)
        self.age = age
        self.aged: list[str] = list(aged)

    def _shift(self, info: ObjectInfo) -> ObjectInfo:
        if any(part in info.key for part in self.aged):
            return ObjectInfo(info.key, info.size, info.modified - self.age)
        return info

    async def stat(self, key: str) -> ObjectInfo:
        return self._shift(await super().stat(key))

    async def stat_many(self, keys: Sequence[str]) -> builtins.list[ObjectInfo | None]:
        return [None if info is None else self._shift(info) for info in await super().stat_many(keys)]


class GatedStore(FaultyStore):
    """Pauses at a chosen step until ``resume`` is set, and tells when it got there (``reached``).

    ``stat_many_of``: pause a ``stat_many`` that asks for keys containing it (a publish's chunk
    lookup); ``list_of``: pause a ``list`` of a prefix containing it (garbage collection's sweep).
    Every key put is recorded in ``puts``; ``put_seen`` is set once a key ending in ``put_of``
    has been put.
    """

    def __init__(
        self,
        inner: Store,
        *,
        stat_many_of: str | None = None,
        list_of: str | None = None,
        put_of: str | None = None,
    ) -> None:
        super().__init__(inner)
        self.stat_many_of = stat_many_of
        self.list_of = list_of
        self.put_of = put_of
        self.reached = anyio.Event()
        self.resume = anyio.Event()
        self.put_seen = anyio.Event()
        self.puts: list[str] = []

    async def _pause(self) -> None:
        self.reached.set()
        await self.resume.wait()

    async def stat_many(self, keys: Sequence[str]) -> builtins.list[ObjectInfo | None]:
        if self.stat_many_of is not None and any(self.stat_many_of in key for key in keys):
            await self._pause()
        return await super().stat_many(keys)

    async def list(self, prefix: str = "") -> AsyncIterator[str]:
        if self.list_of is not None and self.list_of in prefix:
            await self._pause()
        async for key in super().list(prefix):
            yield key

    async def put(self, key: str, data: Payload, *, if_absent: bool = False) -> None:
        self.puts.append(key)
        await super().put(key, data, if_absent=if_absent)
        if self.put_of is not None and key.endswith(self.put_of):
            self.put_seen.set()


class JitterStore(FaultyStore):
    """Sleeps a random moment before every call, so that racing tasks interleave in many orders."""

    def __init__(self, inner: Store, seed: int) -> None:
        super().__init__(inner)
        self.random = random.Random(seed)

    async def _jitter(self) -> None:
        await anyio.sleep(self.random.uniform(0, 0.002))

    async def put(self, key: str, data: Payload, *, if_absent: bool = False) -> None:
        await self._jitter()
        await super().put(key, data, if_absent=if_absent)
        await self._jitter()

    async def delete(self, key: str) -> bool:
        await self._jitter()
        return await super().delete(key)

    async def list(self, prefix: str = "") -> AsyncIterator[str]:
        await self._jitter()
        async for key in super().list(prefix):
            yield key

    async def stat(self, key: str) -> ObjectInfo:
        await self._jitter()
        return await super().stat(key)

    async def stat_many(self, keys: Sequence[str]) -> builtins.list[ObjectInfo | None]:
        await self._jitter()
        return await super().stat_many(keys)


async def lease_keys(store: Store, gallery: str = GALLERY) -> list[str]:
    return sorted([key async for key in store.list(leases_prefix(gallery))])


async def plant_lease(store: Store, *, exclusive: bool, holder: str, ttl: float = 600.0) -> str:
    """Write a lease as another process would have (and then perhaps crashed)."""
    key = lease_key(GALLERY, "ab" * 16, exclusive=exclusive)
    body = {
        "holder": holder,
        "exclusive": exclusive,
        "pid": 4242,
        "host": "elsewhere",
        "created": 0,
        "ttl": ttl,
    }
    await store.put(key, json.dumps(body).encode())
    return key


# --- conflicts ------------------------------------------------------------------------


async def test_two_shared_leases_coexist(store: LocalStore) -> None:
    async with (
        hold_lease(store, GALLERY, exclusive=False, holder=PUBLISH) as first,
        hold_lease(store, GALLERY, exclusive=False, holder="replication", wait=0) as second,
    ):
        assert first.key != second.key
        assert not first.exclusive and not second.exclusive
        leases = await list_leases(store, GALLERY)
        assert sorted(lease.holder for lease in leases) == sorted([PUBLISH, "replication"])
    assert await lease_keys(store) == []


async def test_an_exclusive_lease_is_refused_while_a_shared_one_is_held(store: LocalStore) -> None:
    async with hold_lease(store, GALLERY, exclusive=False, holder=PUBLISH) as shared:
        with pytest.raises(BusyError) as raised:
            async with hold_lease(store, GALLERY, exclusive=True, holder=GC, wait=0):
                pytest.fail("the exclusive lease must not be granted")
        assert raised.value.retryable, "busy: retry later"
        assert not isinstance(raised.value, ConflictError), "a conflict is never retried as is"
        message = str(raised.value)
        for part in ("replica-1", "busy", "'gallery1'", PUBLISH, shared.lease_id, "retry later", "expires"):
            assert part in message
        assert await lease_keys(store) == [shared.key], "the refused lease is gone again"


async def test_a_shared_lease_waits_for_an_exclusive_one_then_gives_up(store: LocalStore) -> None:
    async with hold_lease(store, GALLERY, exclusive=True, holder=GC) as exclusive:
        started = anyio.current_time()
        with pytest.raises(BusyError, match=rf"replica-1 is busy for 0\.3s.*{GC}") as raised:
            async with hold_lease(store, GALLERY, exclusive=False, holder=PUBLISH, wait=0.3):
                pytest.fail("the shared lease must not be granted")
        assert anyio.current_time() - started >= 0.3
        assert exclusive.lease_id in str(raised.value)
        assert await lease_keys(store) == [exclusive.key]


async def test_a_shared_lease_is_granted_once_the_exclusive_one_is_released(store: LocalStore) -> None:
    granted: list[Lease] = []

    async def publish() -> None:
        async with hold_lease(store, GALLERY, exclusive=False, holder=PUBLISH, wait=10) as lease:
            granted.append(lease)

    async with anyio.create_task_group() as group, hold_lease(store, GALLERY, exclusive=True, holder=GC):
        group.start_soon(publish)
        await anyio.sleep(0.3)
        assert granted == []
    assert [lease.holder for lease in granted] == [PUBLISH]


async def test_two_exclusive_leases_exclude_each_other(store: LocalStore) -> None:
    async with hold_lease(store, GALLERY, exclusive=True, holder=GC):
        with pytest.raises(BusyError, match=GC):
            async with hold_lease(store, GALLERY, exclusive=True, holder="another gc", wait=0):
                pytest.fail("two exclusive leases at once")


async def test_leases_on_other_galleries_do_not_conflict(store: LocalStore) -> None:
    async with (
        hold_lease(store, "other", exclusive=False, holder=PUBLISH),
        hold_lease(store, GALLERY, exclusive=True, holder=GC, wait=0),
    ):
        pass


# --- staleness ------------------------------------------------------------------------


async def test_a_stale_lease_does_not_block(store: LocalStore) -> None:
    planted = await plant_lease(store, exclusive=True, holder="a crashed gc")
    aged = AgedStore(store, HOUR, [planted])

    async with hold_lease(aged, GALLERY, exclusive=False, holder=PUBLISH, wait=0):
        pass
    async with hold_lease(aged, GALLERY, exclusive=True, holder=GC, wait=0):
        pass
    assert await lease_keys(store) == [planted], "stale leases are left for gc to remove"


async def test_liveness_uses_the_ttl_the_holder_wrote(store: LocalStore) -> None:
    planted = await plant_lease(store, exclusive=True, holder="a long gc", ttl=2 * HOUR)
    aged = AgedStore(store, HOUR, [planted])

    with pytest.raises(BusyError, match="a long gc"):
        async with hold_lease(aged, GALLERY, exclusive=False, holder=PUBLISH, ttl=60, wait=0):
            pass


async def test_a_lease_nobody_can_read_still_blocks(store: LocalStore) -> None:
    await store.put(lease_key(GALLERY, "cd" * 16, exclusive=False), b"\xff not json")

    with pytest.raises(BusyError, match="an unknown holder"):
        async with hold_lease(store, GALLERY, exclusive=True, holder=GC, wait=0):
            pass


async def test_other_keys_under_the_leases_prefix_are_ignored(store: LocalStore) -> None:
    await store.put(f"{leases_prefix(GALLERY)}README", b"not a lease")
    await store.put(f"{leases_prefix(GALLERY)}nested/{'ef' * 16}.exclusive", b"{}")

    async with hold_lease(store, GALLERY, exclusive=True, holder=GC, wait=0):
        assert len(await list_leases(store, GALLERY)) == 1


# --- lifetime -------------------------------------------------------------------------


async def test_the_lease_is_removed_on_normal_exit(store: LocalStore) -> None:
    async with hold_lease(store, GALLERY, exclusive=False, holder=PUBLISH) as lease:
        assert await lease_keys(store) == [lease.key]
        assert lease.key == lease_key(GALLERY, lease.lease_id, exclusive=False)
        assert (lease.replica, lease.gallery, lease.holder) == ("replica-1", GALLERY, PUBLISH)
    assert await lease_keys(store) == []


async def test_the_lease_is_removed_on_error_and_the_error_passes_unchanged(store: LocalStore) -> None:
    with pytest.raises(ValueError, match="boom") as raised:
        async with hold_lease(store, GALLERY, exclusive=True, holder=GC):
            raise ValueError("boom")
    assert type(raised.value) is ValueError
    with pytest.raises(StorageError, match="disk on fire"):
        async with hold_lease(store, GALLERY, exclusive=False, holder=PUBLISH):
            raise StorageError("disk on fire")
    assert await lease_keys(store) == []


async def test_the_lease_is_removed_on_cancellation(store: LocalStore) -> None:
    entered = False
    with anyio.move_on_after(0.2) as scope:
        async with hold_lease(store, GALLERY, exclusive=False, holder=PUBLISH):
            entered = True
            await anyio.sleep(30)
    assert entered and scope.cancelled_caught
    assert await lease_keys(store) == []


async def test_a_cancelled_wait_leaves_no_lease_behind(store: LocalStore) -> None:
    async with hold_lease(store, GALLERY, exclusive=True, holder=GC) as exclusive:
        with anyio.move_on_after(0.3) as scope:
            async with hold_lease(store, GALLERY, exclusive=False, holder=PUBLISH, wait=30):
                pytest.fail("the shared lease must not be granted")
        assert scope.cancelled_caught
        assert await lease_keys(store) == [exclusive.key]


async def test_the_refresher_keeps_the_lease_live_past_its_ttl(store: LocalStore) -> None:
    ttl = 0.3
    async with hold_lease(store, GALLERY, exclusive=False, holder=PUBLISH, ttl=ttl) as lease:
        await anyio.sleep(3 * ttl)
        refreshed = (await store.stat(lease.key)).modified
        assert refreshed > lease.acquired
        # Without refreshes the lease would be stale by now; it still blocks.
        with pytest.raises(BusyError, match=PUBLISH):
            async with hold_lease(store, GALLERY, exclusive=True, holder=GC, wait=0):
                pass
    assert await lease_keys(store) == []


async def test_a_lease_removed_under_its_holder_stops_the_work(store: LocalStore) -> None:
    with pytest.raises(BusyError, match=r"lost its lease.*removed.*retry later"):
        async with hold_lease(store, GALLERY, exclusive=False, holder=PUBLISH, ttl=0.3) as lease:
            await store.delete(lease.key)
            await anyio.sleep(5)
            pytest.fail("the work must be stopped")


async def test_a_lease_that_cannot_be_refreshed_stops_the_work_within_its_ttl(store: LocalStore) -> None:
    failing = FaultyStore(store, [Fault("put", "error", key_contains="/leases/", after=1)])
    started = anyio.current_time()

    with pytest.raises(BusyError, match=r"lost its lease.*could not be refreshed.*injected fault"):
        async with hold_lease(failing, GALLERY, exclusive=False, holder=PUBLISH, ttl=0.3):
            await anyio.sleep(5)
    assert anyio.current_time() - started < 2
    assert await lease_keys(store) == []


@pytest.mark.parametrize(("ttl", "wait"), [(0, 1), (-1, 1), (float("inf"), 1), (1, -1), (1, float("nan"))])
async def test_nonsense_ttl_or_wait_is_refused(store: LocalStore, ttl: float, wait: float) -> None:
    with pytest.raises(InvalidParameterError):
        async with hold_lease(store, GALLERY, exclusive=False, holder=PUBLISH, ttl=ttl, wait=wait):
            pass
    assert await lease_keys(store) == []


# --- racing acquirers -----------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
async def test_racing_acquirers_never_hold_an_exclusive_lease_alongside_another(
    tmp_path: Path, seed: int
) -> None:
    store = JitterStore(LocalStore(tmp_path / "replica", name="replica", create=True), seed)
    rng = random.Random(seed)
    holders: set[tuple[int, bool]] = set()
    held = {"exclusive": 0, "shared": 0, "refused": 0}

    def check(me: tuple[int, bool]) -> None:
        others = holders - {me}
        if me[1]:
            assert not others, f"exclusive holder {me} overlaps {others}"
        else:
            assert not any(exclusive for _, exclusive in others), f"{me} overlaps {others}"

    async def acquirer(number: int, exclusive: bool, wait: float, pause: float) -> None:
        await anyio.sleep(pause)
        me = (number, exclusive)
        try:
            async with hold_lease(store, GALLERY, exclusive=exclusive, holder=f"worker {number}", wait=wait):
                check(me)
                holders.add(me)
                await anyio.sleep(rng.uniform(0, 0.004))
                check(me)
                holders.discard(me)
        except BusyError:
            held["refused"] += 1
            return
        held["exclusive" if exclusive else "shared"] += 1

    async with anyio.create_task_group() as group:
        for number in range(40):
            exclusive = number % 4 == 0
            wait = 0.0 if number % 5 == 0 else 20.0
            group.start_soon(acquirer, number, exclusive, wait, rng.uniform(0, 0.01))

    assert held["exclusive"] > 0 and held["shared"] > 0
    assert sum(held.values()) == 40
    assert await lease_keys(store) == []
