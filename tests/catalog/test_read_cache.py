"""The answers a catalog keeps between reads: handed out again only while nothing changed."""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

from blobrep.catalog import Catalog
from blobrep.catalog.read_cache import MAX_ANSWERS, ReadCache
from blobrep.core.gallery import ProvisioningState
from tests.catalog.helpers import v, version


async def _versions(catalog: Catalog) -> list[tuple[str, ProvisioningState]]:
    found = await catalog.read_with(lambda reads: reads.list_versions("g", "img"))
    return [(str(item.version), item.provisioning_state) for item in found]


async def test_a_change_committed_by_another_connection_is_read_at_once(
    with_image: Catalog, db_path: Path
) -> None:
    """As a daemon reads what ``blobrep`` commits beside it, in another process."""
    await with_image.create_version(version("1.0.0"))
    assert await _versions(with_image) == [("1.0.0", ProvisioningState.SUCCEEDED)]
    assert await _versions(with_image) == [("1.0.0", ProvisioningState.SUCCEEDED)]
    async with await Catalog.open(db_path) as other:
        old = await other.get_version("g", "img", v("1.0.0"))
        await other.update_version(dataclasses.replace(old, provisioning_state=ProvisioningState.FAILED))
        await other.create_version(version("1.1.0"))
    assert await _versions(with_image) == [
        ("1.0.0", ProvisioningState.FAILED),
        ("1.1.0", ProvisioningState.SUCCEEDED),
    ]


async def test_a_change_committed_by_the_same_connection_is_read_at_once(with_image: Catalog) -> None:
    await with_image.create_version(version("1.0.0"))
    assert await _versions(with_image) == [("1.0.0", ProvisioningState.SUCCEEDED)]
    await with_image.delete_version("g", "img", v("1.0.0"))
    assert await _versions(with_image) == []


async def test_an_unchanged_catalog_answers_from_what_it_kept_and_a_caller_cannot_spoil_it(
    with_image: Catalog,
) -> None:
    await with_image.create_version(version("1.0.0"))
    first = await with_image.read_with(lambda reads: reads.list_versions("g", "img"))
    first.clear()  # the caller's own list
    misses = with_image_cache(with_image).misses
    again = await with_image.read_with(lambda reads: reads.list_versions("g", "img"))
    assert [str(item.version) for item in again] == ["1.0.0"]
    assert with_image_cache(with_image).misses == misses, "the second read decoded nothing"


def with_image_cache(catalog: Catalog) -> ReadCache:
    return catalog._db.cache


def test_the_cache_is_bounded_and_forgets_another_state_of_the_catalog() -> None:
    cache = ReadCache()
    cache.begin((1, 0))
    computed: list[int] = []

    def compute(n: int) -> int:
        computed.append(n)
        return n

    for n in range(MAX_ANSWERS + 10):
        assert cache.answer(("n", n), functools.partial(compute, n)) == n
    assert cache.answer(("n", MAX_ANSWERS + 9), lambda: compute(-1)) == MAX_ANSWERS + 9
    assert cache.answer(("n", 0), lambda: compute(0)) == 0, "a full cache started again"
    assert computed.count(0) == 2
    cache.begin((1, 1))  # this connection wrote
    assert cache.answer(("n", MAX_ANSWERS + 9), lambda: compute(-2)) == -2
