"""Which chunks a gallery already holds in packs, for a publish to reuse rather than write.

A chunk stored as its own object is found by its key alone; a chunk in a pack is found
through a manifest that says where it is, or through the table of contents at the end of
its pack (:mod:`blobrep.core.packs`). Before a publish cuts its first chunk, the gallery's
manifests in the first replica are read and every packed chunk they place is collected; then
the packs no manifest names (left by a publish killed before its commit, or by deleted
versions) are read whole, checked against their names and their tables, and every frame in
them decoded and checked against its digest, since nothing vouches for them. That is what
lets a killed publish resume, and a deleted version be published again, without writing its
chunks twice. A chunk is kept only where every replica of the publish holds its pack at the
recorded size.

A manifest that cannot be read or does not parse is passed over: it is another version's
damage, for scrub to report, and must not fail this publish. Where two manifests disagree on
a pack's size, that pack is not reused. What a reused location holds is checked as much as a
reused chunk object is (present, at the recorded size): every read of the new version checks
each chunk against its digest, and scrub checks each pack against its own.

The cost is one read of each manifest in the gallery per publish, a few at a time (the
manifests of a gallery are small next to the images they describe), a listing of its packs,
and a whole read of each pack no manifest names, one at a time, until garbage collection
removes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Final

import anyio
import anyio.to_thread

from blobrep.core.codec import decode_chunk, digest_of
from blobrep.core.keys import blob_of_manifest_key, is_digest, manifests_prefix, pack_key, packs_prefix
from blobrep.core.manifest import ChunkRef
from blobrep.core.packs import MAX_PACK_SIZE, PackRef, read_table
from blobrep.engine._concurrency import task_group, thread_decompressor
from blobrep.engine.manifests import read_manifest
from blobrep.errors import BlobrepError

if TYPE_CHECKING:
    from blobrep.core.manifest import Manifest
    from blobrep.storage.base import Store

#: Manifests read at once while the index is built.
_READS: Final = 4


async def _manifests(store: Store, gallery: str) -> list[Manifest]:
    """Every manifest of ``gallery`` in ``store`` that reads and parses."""
    blobs = [
        blob
        async for key in store.list(manifests_prefix(gallery))
        if (blob := blob_of_manifest_key(gallery, key)) is not None
    ]
    found: list[Manifest] = []
    limiter = anyio.CapacityLimiter(_READS)

    async def read(position: int) -> None:
        async with limiter:
            try:
                found.append(await read_manifest(store, gallery, blobs[position]))
            except BlobrepError:
                return

    async with task_group() as group:
        for position in range(len(blobs)):
            group.start_soon(read, position)
    return found


def _placements(manifests: Sequence[Manifest]) -> tuple[dict[str, ChunkRef], dict[str, PackRef]]:
    """The packed chunks the manifests place (first place kept), and the packs they name
    with one size (a pack named with two sizes is left out)."""
    chunks: dict[str, ChunkRef] = {}
    packs: dict[str, PackRef] = {}
    disputed: set[str] = set()
    for manifest in manifests:
        for pack in manifest.packs:
            if packs.setdefault(pack.digest, pack) != pack:
                disputed.add(pack.digest)
        for digest, chunk in manifest.stored_digests().items():
            if chunk.pack is not None:
                chunks.setdefault(digest, chunk)
    for digest in disputed:
        del packs[digest]
    return chunks, packs


def _unnamed_chunks(name: str, data: bytes, where: str) -> list[ChunkRef]:
    """The chunks of the pack ``data`` found under ``name``, each frame decoded and checked;
    none if the pack is not what its name says (CPU work: run on a thread)."""
    if digest_of(data) != name:
        return []
    pack = PackRef(name, len(data))
    try:
        entries = read_table(data, where)
        for entry in entries:
            decode_chunk(
                data[entry.offset : entry.offset + entry.stored_length],
                digest=entry.digest,
                length=entry.length,
                stored_length=entry.stored_length,
                decompressor=thread_decompressor(),
                replica=where,
            )
    except BlobrepError:
        return []
    return [
        ChunkRef(entry.digest, entry.length, entry.stored_length, pack, entry.offset) for entry in entries
    ]


async def _unnamed(
    store: Store, gallery: str, named: set[str]
) -> tuple[dict[str, ChunkRef], dict[str, PackRef]]:
    """The chunks in the packs of ``store`` that no manifest names, read one pack at a time."""
    chunks: dict[str, ChunkRef] = {}
    packs: dict[str, PackRef] = {}
    async for key in store.list(packs_prefix(gallery)):
        name = key.rsplit("/", 1)[-1]
        if name in named or not is_digest(name) or pack_key(gallery, name) != key:
            continue
        try:
            data = await store.get(key, 0, MAX_PACK_SIZE + 1)
        except BlobrepError:
            continue
        if len(data) > MAX_PACK_SIZE:
            continue
        found = await anyio.to_thread.run_sync(_unnamed_chunks, name, data, f"{key} in {store.name}")
        for chunk in found:
            assert chunk.digest is not None and chunk.pack is not None
            chunks.setdefault(chunk.digest, chunk)
            packs[name] = chunk.pack
    return chunks, packs


async def packed_chunks(stores: Sequence[Store], gallery: str) -> dict[str, ChunkRef]:
    """The chunks of ``gallery`` held in packs that every one of ``stores`` holds, by digest."""
    if not stores:
        return {}
    chunks, packs = _placements(await _manifests(stores[0], gallery))
    unnamed_chunks, unnamed_packs = await _unnamed(stores[0], gallery, set(packs))
    for digest, chunk in unnamed_chunks.items():
        chunks.setdefault(digest, chunk)
    packs.update(unnamed_packs)
    if not packs:
        return {}
    names = list(packs)
    keys = [pack_key(gallery, digest) for digest in names]
    held = set(names)
    for store in stores:
        infos = await store.stat_many(keys)
        for digest, info in zip(names, infos, strict=True):
            if info is None or info.size != packs[digest].size:
                held.discard(digest)
    return {
        digest: chunk
        for digest, chunk in chunks.items()
        if chunk.pack is not None and chunk.pack.digest in held and chunk.pack == packs[chunk.pack.digest]
    }
