"""Leases in object-store replicas (the real S3 and Azure test servers): the protocol holds
there, and a refresh replaces exactly the lease object its holder wrote (if-match)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Final

import anyio
import pytest

from blobrep.engine.leases import hold_lease, leases_prefix
from blobrep.errors import BusyError
from blobrep.storage.object_url import ObjectKind
from blobrep.storage.objects import ObjectStore
from tests.engine.helpers import GALLERY
from tests.object_servers import fresh_prefix, remove_prefix

PUBLISH: Final = "publish of img/versions/1.0.0"
GC: Final = "garbage collection of gallery1"


@pytest.fixture(params=["s3", "azure"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[ObjectStore]:
    kind: ObjectKind = request.param
    url = fresh_prefix(kind)
    yield ObjectStore(url)
    await remove_prefix(url)


async def test_a_shared_lease_keeps_garbage_collection_out_and_is_removed_after(store: ObjectStore) -> None:
    # Object stores tell modification times to the second: a TTL of a few seconds at least.
    async with hold_lease(store, GALLERY, exclusive=False, holder=PUBLISH, ttl=2.4) as lease:
        assert lease.version, "created if absent, its version kept for the refreshes"
        await anyio.sleep(3.5)  # past the ttl: only the refreshes keep it live
        with pytest.raises(BusyError, match=PUBLISH):
            async with hold_lease(store, GALLERY, exclusive=True, holder=GC, wait=0):
                pass
    assert [key async for key in store.list(leases_prefix(GALLERY))] == []


async def test_a_lease_replaced_under_its_holder_stops_the_work_and_is_not_written_back(
    store: ObjectStore,
) -> None:
    seen: list[bytes] = []
    with pytest.raises(BusyError, match=r"lost its lease.*removed.*retry later"):
        async with hold_lease(store, GALLERY, exclusive=False, holder=PUBLISH, ttl=0.6) as lease:
            await store.put(lease.key, b"someone else's")
            with anyio.fail_after(5):
                while True:  # until the refresher stops the work
                    seen.append(await store.get(lease.key))
                    await anyio.sleep(0.05)
    assert seen and set(seen) == {b"someone else's"}, "the holder never wrote over it"


async def test_a_lease_removed_under_its_holder_stops_the_work_and_stays_removed(store: ObjectStore) -> None:
    with pytest.raises(BusyError, match=r"lost its lease.*removed"):
        async with hold_lease(store, GALLERY, exclusive=False, holder=PUBLISH, ttl=0.6) as lease:
            await store.delete(lease.key)
            await anyio.sleep(5)
            pytest.fail("the work must be stopped")
    assert not await store.exists(lease.key)
