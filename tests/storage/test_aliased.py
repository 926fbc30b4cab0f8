"""The read-only view a version's copy reads its source through: the source's manifest and
objects under the new version's keys, nothing else of the replica, and no writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from blobrep.core.keys import chunk_key, manifest_key, pack_key
from blobrep.core.names import BlobName
from blobrep.errors import NotFoundError, StorageError
from blobrep.storage.aliased import AliasedStore
from blobrep.storage.local import LocalStore

SOURCE = BlobName.parse("ubuntu/versions/1.0.0")
SHOWN = BlobName.parse("web/versions/2.0.0")
PACK, CHUNK = "ab" * 16, "cd" * 16


@pytest.fixture
async def inner(tmp_path: Path) -> LocalStore:
    """A replica of gallery ``src`` holding a manifest, a pack, a chunk, another version's
    manifest and a lease."""
    store = LocalStore(tmp_path / "replica-1", create=True, name="westcentralus/replica-1")
    await store.put(manifest_key("src", SOURCE), b"the manifest")
    await store.put(manifest_key("src", BlobName.parse("ubuntu/versions/1.0.1")), b"another")
    await store.put(pack_key("src", PACK), b"a pack")
    await store.put(chunk_key("src", CHUNK), b"a chunk")
    await store.put("galleries/src/leases/x.shared", b"{}")
    return store


@pytest.fixture
def view(inner: LocalStore) -> AliasedStore:
    return AliasedStore(inner, "src", SOURCE, "dst", SHOWN)


async def test_the_view_shows_the_source_under_the_new_keys(view: AliasedStore) -> None:
    assert view.name == "westcentralus/replica-1", "messages name the replica the bytes are in"
    assert await view.get(manifest_key("dst", SHOWN)) == b"the manifest"
    assert await view.get(pack_key("dst", PACK), 2, 4) == b"pack"
    assert (await view.stat(chunk_key("dst", CHUNK))).key == chunk_key("dst", CHUNK)
    infos = await view.stat_many(
        [pack_key("dst", PACK), manifest_key("dst", BlobName.parse("web/versions/9.9.9"))]
    )
    assert infos[0] is not None and infos[0].size == len(b"a pack") and infos[1] is None
    assert sorted([key async for key in view.list("galleries/dst/")]) == [
        chunk_key("dst", CHUNK),
        pack_key("dst", PACK),
    ]


async def test_nothing_else_of_the_replica_shows(view: AliasedStore) -> None:
    for hidden in (
        manifest_key("src", SOURCE),
        manifest_key("dst", BlobName.parse("ubuntu/versions/1.0.1")),
        "galleries/src/leases/x.shared",
        pack_key("src", PACK),
    ):
        assert not await view.exists(hidden), hidden
        with pytest.raises(NotFoundError):
            await view.get(hidden)


async def test_nothing_is_written_through_the_view(view: AliasedStore, inner: LocalStore) -> None:
    with pytest.raises(StorageError, match="read-only view"):
        await view.put(pack_key("dst", PACK), b"repaired")
    with pytest.raises(StorageError, match="read-only view"):
        await view.delete(manifest_key("dst", SHOWN))
    assert await inner.get(pack_key("src", PACK)) == b"a pack"
    assert await view.sweep_temporaries(older_than=0) == []
