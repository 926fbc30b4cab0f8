"""The store contract: behaviour every store kind must show, written against the protocol only.

Each store kind runs the whole suite by subclassing :class:`StoreContract` and providing a
``store`` fixture that yields a fresh, empty store::

    class TestLocalStore(StoreContract):
        @pytest.fixture
        def store(self, tmp_path: Path) -> Store:
            return LocalStore(tmp_path / "root", create=True)

Nothing here may touch a filesystem or an SDK: object-store adapters run the same tests.
"""

from __future__ import annotations

import array
import random
import time

import anyio
import pytest

from blobrep.errors import AlreadyExistsError, InvalidKeyError, NotFoundError
from blobrep.storage.base import ObjectInfo, Store

MIB = 1024 * 1024

INVALID_KEYS = [
    "../x",
    "a/../b",
    "..",
    "/abs",
    "a//b",
    "a/",
    "a\\b",
    "a\x00b",
    "",
    "a" * 2000,
    "a/./b",
    ".",
    "a b",
    "a~b",
]

INVALID_PREFIXES = ["../", "../x", "/abs", "a//b", "a\\b", "a\x00", "a/../b/", "a~"]

# Keys for the listing tests. A key is never also a directory of another key here: a
# filesystem cannot hold both "a" and "a/b", so the contract does not ask for it.
LISTING_KEYS = [
    "a/b/x",
    "a/b/y/z",
    "a/bc",
    "a/bd/e",
    "a/c",
    "ab",
    "b/a/b",
    "top",
]

LISTING_PREFIXES = [
    "",
    "a",
    "a/",
    "a/b",
    "a/b/",
    "a/bc",
    "a/bc/",
    "a/b/y/z",
    "b/a/",
    "t",
    "zz",
    "a/q",
    "nope/deeper/",
]


def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes, so a misplaced byte cannot hide in a pattern."""
    return random.Random(seed * 1_000_003 + size).randbytes(size)


async def listed(store: Store, prefix: str = "") -> list[str]:
    """Every key ``list(prefix)`` yields, sorted; duplicates are kept so they show."""
    return sorted([key async for key in store.list(prefix)])


class StoreContract:
    """Tests every store kind must pass; subclasses provide the ``store`` fixture."""

    # --- put / get round trips --------------------------------------------------------

    @pytest.mark.parametrize("size", [0, 1, 255, 3 * MIB + 7])
    async def test_put_then_get_returns_the_same_bytes(self, store: Store, size: int) -> None:
        value = payload(size)
        await store.put("blobs/value", value)

        assert await store.get("blobs/value") == value
        assert (await store.stat("blobs/value")).size == size

    async def test_large_value_ranged_get_returns_the_exact_slice(self, store: Store) -> None:
        value = payload(3 * MIB + 7)
        await store.put("big", value)

        assert await store.get("big", MIB + 3, MIB) == value[MIB + 3 : 2 * MIB + 3]
        assert await store.get("big", 3 * MIB) == value[3 * MIB :]

    async def test_put_accepts_bytearray(self, store: Store) -> None:
        value = bytearray(payload(1000))
        await store.put("k", value)

        assert await store.get("k") == bytes(value)

    async def test_put_accepts_memoryview(self, store: Store) -> None:
        value = payload(1000)
        await store.put("k", memoryview(value))

        assert await store.get("k") == value

    async def test_put_accepts_a_memoryview_slice_of_a_larger_buffer(self, store: Store) -> None:
        buffer = payload(4096)
        await store.put("k", memoryview(buffer)[100:1100])

        assert await store.get("k") == buffer[100:1100]

    async def test_put_of_several_buffers_stores_them_back_to_back(self, store: Store) -> None:
        value = payload(2 * MIB + 11)
        pieces = (value[:MIB], bytearray(value[MIB : MIB + 5]), memoryview(value)[MIB + 5 :])
        await store.put("k", pieces)

        assert await store.get("k") == value
        assert (await store.stat("k")).size == len(value)
        assert await store.get("k", MIB - 2, 9) == value[MIB - 2 : MIB + 7]

    async def test_put_of_several_buffers_with_if_absent_conflicts_and_keeps_the_old_value(
        self, store: Store
    ) -> None:
        await store.put("k", b"old")
        with pytest.raises(AlreadyExistsError):
            await store.put("k", (b"new", b" value"), if_absent=True)

        assert await store.get("k") == b"old"

    async def test_put_of_a_wide_item_memoryview_stores_its_raw_bytes(self, store: Store) -> None:
        numbers = array.array("I", range(1000))
        await store.put("k", memoryview(numbers))

        assert await store.get("k") == numbers.tobytes()

    async def test_changing_the_buffer_after_put_does_not_change_the_stored_value(self, store: Store) -> None:
        value = bytearray(b"original value")
        await store.put("k", value)
        value[:] = b"changed!"

        assert await store.get("k") == b"original value"

    async def test_the_longest_valid_key_round_trips(self, store: Store) -> None:
        # Four segments of the longest allowed segment length: 4 * 255 + 3 = 1023 characters.
        key = "/".join(letter * 255 for letter in "abcd")
        await store.put(key, b"long")

        assert await store.get(key) == b"long"
        assert await store.exists(key)
        assert (await store.stat(key)).size == 4
        assert await listed(store) == [key]
        assert await store.delete(key)
        assert not await store.exists(key)

    async def test_keys_using_every_allowed_character_round_trip(self, store: Store) -> None:
        keys = ["AZaz09._-/x", "...", ".hidden/-dash/_under", "v1.2.3/manifest.json"]
        for index, key in enumerate(keys):
            await store.put(key, payload(10, index))

        for index, key in enumerate(keys):
            assert await store.get(key) == payload(10, index)
        assert await listed(store) == sorted(keys)

    # --- ranged get -------------------------------------------------------------------

    async def test_ranged_get_returns_the_requested_slice(self, store: Store) -> None:
        value = bytes(range(256)) * 4
        await store.put("r", value)

        assert await store.get("r", 10) == value[10:]
        assert await store.get("r", 10, 20) == value[10:30]
        assert await store.get("r", length=5) == value[:5]
        assert await store.get("r", 0, len(value)) == value
        assert await store.get("r", 1023, 1) == value[1023:]

    async def test_ranged_get_with_zero_length_returns_nothing(self, store: Store) -> None:
        await store.put("r", b"abcdef")

        assert await store.get("r", 0, 0) == b""
        assert await store.get("r", 3, 0) == b""

    async def test_ranged_get_from_the_end_or_past_it_returns_nothing(self, store: Store) -> None:
        await store.put("r", b"abcdef")

        assert await store.get("r", 6) == b""
        assert await store.get("r", 7) == b""
        assert await store.get("r", 1000, 10) == b""

    async def test_ranged_get_with_length_past_the_end_returns_the_rest(self, store: Store) -> None:
        await store.put("r", b"abcdef")

        assert await store.get("r", 2, 100) == b"cdef"
        assert await store.get("r", 0, 7) == b"abcdef"

    # --- missing keys -----------------------------------------------------------------

    async def test_get_of_a_missing_key_raises_not_found_naming_the_key(self, store: Store) -> None:
        with pytest.raises(NotFoundError, match="no/such/key"):
            await store.get("no/such/key")

    async def test_ranged_get_of_a_missing_key_raises_not_found(self, store: Store) -> None:
        with pytest.raises(NotFoundError, match="missing"):
            await store.get("missing", 10)
        with pytest.raises(NotFoundError, match="missing"):
            await store.get("missing", 0, 0)

    async def test_a_prefix_of_other_keys_is_not_itself_a_key(self, store: Store) -> None:
        await store.put("dir/child", b"child")

        assert not await store.exists("dir")
        for offset, length in [(0, None), (0, 0), (10**6, None), (5, 10)]:
            with pytest.raises(NotFoundError, match="dir"):
                await store.get("dir", offset, length)
        with pytest.raises(NotFoundError, match="dir"):
            await store.stat("dir")
        assert await store.delete("dir") is False
        assert await store.get("dir/child") == b"child"

    # --- overwrite --------------------------------------------------------------------

    async def test_put_overwrites_with_the_new_value_whole(self, store: Store) -> None:
        await store.put("k", payload(5000, 1))
        await store.put("k", b"short")

        assert await store.get("k") == b"short"
        assert (await store.stat("k")).size == 5

    async def test_put_overwrite_with_a_longer_value(self, store: Store) -> None:
        await store.put("k", b"short")
        await store.put("k", payload(5000, 2))

        assert await store.get("k") == payload(5000, 2)

    async def test_readers_during_overwrites_see_one_whole_value(self, store: Store) -> None:
        first = payload(256 * 1024, 1)
        second = payload(128 * 1024, 2)
        await store.put("k", first)
        seen: list[bytes] = []
        done = anyio.Event()

        async def writer() -> None:
            for round_ in range(12):
                await store.put("k", second if round_ % 2 == 0 else first)
            done.set()

        async def reader() -> None:
            while not done.is_set():
                seen.append(await store.get("k"))

        async with anyio.create_task_group() as tg:
            tg.start_soon(writer)
            tg.start_soon(reader)

        assert seen
        torn = [len(data) for data in seen if data not in (first, second)]
        assert torn == []
        assert await store.get("k") == first

    # --- put if absent ----------------------------------------------------------------

    async def test_put_if_absent_creates_a_new_key(self, store: Store) -> None:
        await store.put("m", b"first", if_absent=True)

        assert await store.get("m") == b"first"

    async def test_put_if_absent_on_an_existing_key_conflicts_and_keeps_the_old_value(
        self, store: Store
    ) -> None:
        await store.put("m", b"first")

        with pytest.raises(AlreadyExistsError, match="m"):
            await store.put("m", b"second", if_absent=True)

        assert await store.get("m") == b"first"
        assert await listed(store) == ["m"]

    async def test_put_if_absent_after_delete_succeeds(self, store: Store) -> None:
        await store.put("m", b"first")
        await store.delete("m")

        await store.put("m", b"second", if_absent=True)

        assert await store.get("m") == b"second"

    async def test_concurrent_puts_if_absent_let_exactly_one_win(self, store: Store) -> None:
        winners: list[int] = []
        conflicts: list[int] = []

        async def create(index: int) -> None:
            try:
                await store.put("once", payload(4096, index), if_absent=True)
            except AlreadyExistsError:
                conflicts.append(index)
            else:
                winners.append(index)

        async with anyio.create_task_group() as tg:
            for index in range(16):
                tg.start_soon(create, index)

        assert len(winners) == 1
        assert len(conflicts) == 15
        assert await store.get("once") == payload(4096, winners[0])
        assert await listed(store) == ["once"]

    # --- exists / delete --------------------------------------------------------------

    async def test_exists_is_true_only_for_stored_keys(self, store: Store) -> None:
        assert await store.exists("k") is False
        await store.put("k", b"")

        assert await store.exists("k") is True
        assert await store.exists("k2") is False
        assert await store.exists("k/child") is False

    async def test_delete_returns_true_then_false_and_the_key_is_gone(self, store: Store) -> None:
        await store.put("d/k", b"value")
        await store.put("d/other", b"other")

        assert await store.delete("d/k") is True
        assert await store.delete("d/k") is False
        assert await store.exists("d/k") is False
        with pytest.raises(NotFoundError, match="d/k"):
            await store.get("d/k")
        assert await listed(store) == ["d/other"]
        assert await store.get("d/other") == b"other"

    async def test_delete_of_a_key_never_written_returns_false(self, store: Store) -> None:
        assert await store.delete("never/written") is False

    # --- stat -------------------------------------------------------------------------

    async def test_stat_gives_the_size_and_a_recent_modified_time(self, store: Store) -> None:
        before = time.time()
        await store.put("s/k", payload(1234))
        after = time.time()

        info = await store.stat("s/k")

        assert isinstance(info, ObjectInfo)
        assert info.key == "s/k"
        assert info.size == 1234
        # Seconds since the epoch, close to now; the slack allows coarse clocks and a
        # server clock a little apart from ours.
        assert before - 10 <= info.modified <= after + 10

    async def test_stat_follows_an_overwrite(self, store: Store) -> None:
        await store.put("k", b"12345")
        await store.put("k", b"12")

        assert (await store.stat("k")).size == 2

    async def test_stat_of_an_empty_value_has_size_zero(self, store: Store) -> None:
        await store.put("k", b"")

        assert (await store.stat("k")).size == 0

    async def test_stat_of_a_missing_key_raises_not_found_naming_the_key(self, store: Store) -> None:
        with pytest.raises(NotFoundError, match="no/such"):
            await store.stat("no/such")

    async def test_stat_many_answers_each_key_in_order_with_none_for_missing(self, store: Store) -> None:
        await store.put("m/a", payload(10))
        await store.put("m/c", payload(30))

        infos = await store.stat_many(["m/c", "m/b", "m/a", "m/c"])

        assert [None if info is None else (info.key, info.size) for info in infos] == [
            ("m/c", 30),
            None,
            ("m/a", 10),
            ("m/c", 30),
        ]

    async def test_stat_many_of_no_keys_is_empty(self, store: Store) -> None:
        assert await store.stat_many([]) == []

    async def test_stat_many_rejects_an_invalid_key(self, store: Store) -> None:
        await store.put("m/a", b"x")
        with pytest.raises(InvalidKeyError):
            await store.stat_many(["m/a", "../escape"])

    # --- list -------------------------------------------------------------------------

    async def test_an_empty_store_lists_nothing(self, store: Store) -> None:
        assert await listed(store) == []
        assert await listed(store, "a") == []
        assert await listed(store, "a/") == []

    @pytest.mark.parametrize("prefix", LISTING_PREFIXES)
    async def test_list_returns_every_key_under_the_prefix_once(self, store: Store, prefix: str) -> None:
        for index, key in enumerate(LISTING_KEYS):
            await store.put(key, payload(3, index))

        expected = sorted(key for key in LISTING_KEYS if key.startswith(prefix))
        assert await listed(store, prefix) == expected

    async def test_list_does_not_show_deleted_keys(self, store: Store) -> None:
        for key in ["x/1", "x/2", "x/3"]:
            await store.put(key, b"v")
        await store.delete("x/2")

        assert await listed(store, "x/") == ["x/1", "x/3"]

    async def test_list_shows_an_overwritten_key_once(self, store: Store) -> None:
        for round_ in range(3):
            await store.put("x/k", payload(100, round_))

        assert await listed(store) == ["x/k"]

    async def test_list_of_many_keys_in_many_directories_returns_each_once(self, store: Store) -> None:
        keys = [f"g/chunks/{d:02x}/k{n:03d}" for d in range(20) for n in range(15)]
        limiter = anyio.CapacityLimiter(16)

        async def put(key: str) -> None:
            async with limiter:
                await store.put(key, key.encode())

        async with anyio.create_task_group() as tg:
            for key in keys:
                tg.start_soon(put, key)

        assert await listed(store) == sorted(keys)
        assert await listed(store, "g/chunks/0") == sorted(k for k in keys if k.startswith("g/chunks/0"))

    @pytest.mark.parametrize("prefix", INVALID_PREFIXES)
    async def test_list_with_an_invalid_prefix_raises_invalid_key(self, store: Store, prefix: str) -> None:
        with pytest.raises(InvalidKeyError):
            await listed(store, prefix)

    # --- invalid keys -----------------------------------------------------------------

    @pytest.mark.parametrize("key", INVALID_KEYS, ids=repr)
    async def test_an_invalid_key_is_refused_by_every_operation(self, store: Store, key: str) -> None:
        with pytest.raises(InvalidKeyError):
            await store.put(key, b"value")
        with pytest.raises(InvalidKeyError):
            await store.put(key, b"value", if_absent=True)
        with pytest.raises(InvalidKeyError):
            await store.get(key)
        with pytest.raises(InvalidKeyError):
            await store.get(key, 1, 1)
        with pytest.raises(InvalidKeyError):
            await store.exists(key)
        with pytest.raises(InvalidKeyError):
            await store.delete(key)
        with pytest.raises(InvalidKeyError):
            await store.stat(key)

        assert await listed(store) == []

    # --- concurrency ------------------------------------------------------------------

    async def test_concurrent_puts_of_different_keys_all_land(self, store: Store) -> None:
        keys = [f"c/{n % 4}/{n // 4 % 4}/key{n}" for n in range(64)]

        async with anyio.create_task_group() as tg:
            for index, key in enumerate(keys):
                tg.start_soon(store.put, key, payload(2048 + index, index))

        for index, key in enumerate(keys):
            assert await store.get(key) == payload(2048 + index, index)
        assert await listed(store) == sorted(keys)

    async def test_concurrent_puts_of_one_key_leave_one_written_value_whole(self, store: Store) -> None:
        values = [payload(64 * 1024 + index, index) for index in range(32)]

        async with anyio.create_task_group() as tg:
            for value in values:
                tg.start_soon(store.put, "same/key", value)

        final = await store.get("same/key")
        assert final in values
        assert (await store.stat("same/key")).size == len(final)
        assert await listed(store) == ["same/key"]

    async def test_list_during_puts_shows_only_keys_that_were_put(self, store: Store) -> None:
        keys = [f"p/{n % 8}/key{n}" for n in range(48)]
        observed: set[str] = set()
        done = anyio.Event()

        async def writer() -> None:
            async with anyio.create_task_group() as tg:
                for key in keys:
                    tg.start_soon(store.put, key, payload(8192))
            done.set()

        async def lister() -> None:
            while not done.is_set():
                observed.update(await listed(store))

        async with anyio.create_task_group() as tg:
            tg.start_soon(writer)
            tg.start_soon(lister)

        assert observed <= set(keys)
        assert await listed(store) == sorted(keys)

    # --- sync -------------------------------------------------------------------------

    async def test_sync_succeeds_and_can_be_repeated(self, store: Store) -> None:
        await store.sync()
        await store.put("s/a", b"a")
        await store.put("s/b/c", b"c")
        await store.sync()
        await store.sync()
        await store.delete("s/a")
        await store.sync()

        assert await store.get("s/b/c") == b"c"
        assert await listed(store) == ["s/b/c"]

    # --- temporaries ------------------------------------------------------------------

    async def test_sweeping_a_store_of_finished_puts_finds_nothing_and_keeps_every_key(
        self, store: Store
    ) -> None:
        await store.put("a/b/chunk", b"one")
        await store.put("a/manifest.json", b"two", if_absent=True)
        await store.put("top", b"three")

        assert await store.sweep_temporaries(older_than=0, dry_run=True) == []
        assert await store.sweep_temporaries(older_than=0) == []
        assert await store.sweep_temporaries("a/", older_than=0) == []

        assert await listed(store) == ["a/b/chunk", "a/manifest.json", "top"]
        assert await store.get("a/b/chunk") == b"one"

    @pytest.mark.parametrize("prefix", INVALID_PREFIXES)
    async def test_sweeping_with_an_invalid_prefix_raises_invalid_key(
        self, store: Store, prefix: str
    ) -> None:
        with pytest.raises(InvalidKeyError):
            await store.sweep_temporaries(prefix, older_than=0)
