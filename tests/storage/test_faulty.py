"""The fault-injecting store: transparent without faults, and each fault does what it says."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from blobrep.errors import InvalidKeyError, NotFoundError, StorageError, StorageFullError
from blobrep.storage.base import Store
from blobrep.storage.faulty import Fault, FaultyStore, Operation
from blobrep.storage.local import LocalStore
from tests.storage.contract import StoreContract, listed, payload


class TestFaultyStoreWithoutFaults(StoreContract):
    @pytest.fixture
    def store(self, tmp_path: Path) -> Store:
        root = tmp_path / "root"
        root.mkdir()
        return FaultyStore(LocalStore(root))


@pytest.fixture
async def inner(tmp_path: Path) -> LocalStore:
    """A store holding ``g/chunks/c1``, ``g/chunks/c2`` and ``g/manifest.json``."""
    root = tmp_path / "root"
    root.mkdir()
    store = LocalStore(root, name="inner")
    await store.put("g/chunks/c1", payload(1000, 1))
    await store.put("g/chunks/c2", payload(1000, 2))
    await store.put("g/manifest.json", b'{"chunks": 2}')
    return store


Call = Callable[[Store], Awaitable[object]]

CALLS: dict[Operation, Call] = {
    "get": lambda store: store.get("g/chunks/c1"),
    "put": lambda store: store.put("g/chunks/c3", b"new"),
    "exists": lambda store: store.exists("g/chunks/c1"),
    "list": lambda store: listed(store, "g/"),
    "stat": lambda store: store.stat("g/chunks/c1"),
    "sync": lambda store: store.sync(),
    "delete": lambda store: store.delete("g/chunks/c1"),  # last: the others read what it removes
}


# --- kinds ----------------------------------------------------------------------------


@pytest.mark.parametrize("op", CALLS.keys())
async def test_an_error_fault_raises_storage_error_on_its_operation(inner: LocalStore, op: Operation) -> None:
    store = FaultyStore(inner, [Fault(op, "error")], name="replica-3")

    with pytest.raises(StorageError, match=r"replica-3.*injected fault") as raised:
        await CALLS[op](store)

    assert type(raised.value) is StorageError
    assert await listed(inner) == ["g/chunks/c1", "g/chunks/c2", "g/manifest.json"]
    for other, call in CALLS.items():
        if other != op:
            await call(store)


async def test_a_missing_fault_hides_a_key_that_exists(inner: LocalStore) -> None:
    store = FaultyStore(
        inner,
        [Fault(op, "missing", key_contains="c1") for op in ("get", "exists", "stat", "delete")],
    )

    with pytest.raises(NotFoundError, match="g/chunks/c1"):
        await store.get("g/chunks/c1")
    with pytest.raises(NotFoundError, match="g/chunks/c1"):
        await store.get("g/chunks/c1", 10, 10)
    assert await store.exists("g/chunks/c1") is False
    with pytest.raises(NotFoundError, match="g/chunks/c1"):
        await store.stat("g/chunks/c1")
    assert await store.delete("g/chunks/c1") is False

    assert await inner.get("g/chunks/c1") == payload(1000, 1)
    assert await store.get("g/chunks/c2") == payload(1000, 2)
    assert await store.exists("g/chunks/c2") is True


async def test_a_missing_fault_on_list_lists_nothing(inner: LocalStore) -> None:
    store = FaultyStore(inner, [Fault("list", "missing", key_contains="chunks")])

    assert await listed(store, "g/chunks/") == []
    assert await listed(store, "g/") == ["g/chunks/c1", "g/chunks/c2", "g/manifest.json"]


async def test_a_corrupt_fault_returns_bytes_differing_in_exactly_one_byte(inner: LocalStore) -> None:
    store = FaultyStore(inner, [Fault("get", "corrupt", key_contains="c1")])
    original = payload(1000, 1)

    for offset, length in [(0, None), (100, 50), (999, None)]:
        expected = original[offset:] if length is None else original[offset : offset + length]
        corrupted = await store.get("g/chunks/c1", offset, length)
        assert len(corrupted) == len(expected)
        assert sum(a != b for a, b in zip(corrupted, expected, strict=True)) == 1

    assert await store.get("g/chunks/c2") == payload(1000, 2)
    assert await inner.get("g/chunks/c1") == original


async def test_a_full_fault_raises_storage_full_and_writes_nothing(inner: LocalStore) -> None:
    store = FaultyStore(inner, [Fault("put", "full")], name="replica-1")

    with pytest.raises(StorageFullError, match=r"replica-1.*g/chunks/c3"):
        await store.put("g/chunks/c3", b"new")
    with pytest.raises(StorageFullError):
        await store.put("g/chunks/c1", b"overwrite")
    with pytest.raises(StorageFullError):
        await store.put("g/other", b"new", if_absent=True)

    assert await listed(inner) == ["g/chunks/c1", "g/chunks/c2", "g/manifest.json"]
    assert await inner.get("g/chunks/c1") == payload(1000, 1)


# --- which calls ----------------------------------------------------------------------


async def test_key_contains_limits_a_fault_to_matching_keys(inner: LocalStore) -> None:
    store = FaultyStore(inner, [Fault("get", "error", key_contains="chunks/")])

    with pytest.raises(StorageError):
        await store.get("g/chunks/c1")
    with pytest.raises(StorageError):
        await store.get("g/chunks/c2")
    assert await store.get("g/manifest.json") == b'{"chunks": 2}'


async def test_a_fault_only_affects_its_own_operation(inner: LocalStore) -> None:
    store = FaultyStore(inner, [Fault("put", "error")])

    assert await store.get("g/chunks/c1") == payload(1000, 1)
    assert await store.exists("g/chunks/c1") is True
    with pytest.raises(StorageError):
        await store.put("g/chunks/c1", b"x")


async def test_after_lets_that_many_matching_calls_pass_first(inner: LocalStore) -> None:
    store = FaultyStore(inner, [Fault("get", "error", after=2)])

    assert await store.get("g/chunks/c1") == payload(1000, 1)
    assert await store.get("g/chunks/c2") == payload(1000, 2)
    for _ in range(3):
        with pytest.raises(StorageError):
            await store.get("g/chunks/c1")


async def test_after_counts_only_calls_with_matching_keys(inner: LocalStore) -> None:
    store = FaultyStore(inner, [Fault("get", "error", key_contains="c1", after=1)])

    for _ in range(3):
        await store.get("g/chunks/c2")
    assert await store.get("g/chunks/c1") == payload(1000, 1)
    with pytest.raises(StorageError):
        await store.get("g/chunks/c1")


async def test_times_limits_how_often_a_fault_fires(inner: LocalStore) -> None:
    store = FaultyStore(inner, [Fault("put", "full", times=2)])

    for _ in range(2):
        with pytest.raises(StorageFullError):
            await store.put("g/chunks/c3", b"new")
    assert await inner.exists("g/chunks/c3") is False

    await store.put("g/chunks/c3", b"new")
    assert await inner.get("g/chunks/c3") == b"new"


async def test_after_and_times_together_fail_a_window_of_calls(inner: LocalStore) -> None:
    fault = Fault("exists", "missing", after=1, times=2)
    store = FaultyStore(inner, [fault])

    results = [await store.exists("g/chunks/c1") for _ in range(5)]

    assert results == [True, False, False, True, True]
    assert fault.seen == 5
    assert fault.fired == 2


async def test_a_fault_added_later_takes_effect(inner: LocalStore) -> None:
    store = FaultyStore(inner)
    assert await store.get("g/chunks/c1") == payload(1000, 1)

    store.faults.append(Fault("get", "missing"))

    with pytest.raises(NotFoundError):
        await store.get("g/chunks/c1")


# --- bookkeeping ----------------------------------------------------------------------


async def test_calls_are_counted_per_operation_including_failed_ones(inner: LocalStore) -> None:
    store = FaultyStore(inner, [Fault("get", "error", key_contains="c2")])

    await store.get("g/chunks/c1")
    with pytest.raises(StorageError):
        await store.get("g/chunks/c2")
    with pytest.raises(NotFoundError):
        await store.get("g/absent")
    await store.put("g/new", b"x")
    await store.put("g/new", b"y")
    with pytest.raises(InvalidKeyError):
        await store.put("../x", b"y")
    await store.exists("g/new")
    await store.delete("g/new")
    await listed(store)
    await store.stat("g/chunks/c1")
    await store.sync()
    await store.sync()

    assert store.calls == Counter(get=3, put=3, exists=1, delete=1, list=1, stat=1, sync=2)


async def test_the_name_defaults_to_the_inner_stores(inner: LocalStore) -> None:
    assert FaultyStore(inner).name == "inner"
    assert FaultyStore(inner, name="flaky").name == "flaky"


async def test_stat_many_applies_stat_faults_key_by_key(inner: LocalStore) -> None:
    await inner.put("c/one", b"1")
    await inner.put("c/two", b"22")
    hidden = FaultyStore(inner, [Fault("stat", "missing", key_contains="two")])

    infos = await hidden.stat_many(["c/one", "c/two"])

    assert [None if info is None else info.size for info in infos] == [1, None]
    failing = FaultyStore(inner, [Fault("stat", "error", key_contains="one")])
    with pytest.raises(StorageError, match="c/one"):
        await failing.stat_many(["c/two", "c/one"])
