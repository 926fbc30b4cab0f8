"""Helpers for the tests of replication and garbage collection of blobs stored in packs.

``write_packed`` stores a blob in packs of a chosen size, every source replica alike, however
the blob was first published: its frames are read from a scratch replica. A later version can
keep the places an older one gave its chunks (``like``), so the two share packs the way a
publish into a replica holding the older version leaves them, and some of its new chunks can
stay objects of their own (``alone``), as chunks reused from before packs would.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from blobrep.core.codec import digest_of
from blobrep.core.keys import chunk_key, chunks_prefix, manifest_key, pack_key, packs_prefix
from blobrep.core.manifest import ChunkRef, Manifest, build_manifest, encode_manifest
from blobrep.core.names import BlobName
from blobrep.core.packs import PackRef
from blobrep.engine.manifests import read_manifest
from blobrep.storage import LocalStore, Store
from tests.engine.helpers import GALLERY

#: Packs of about this many bytes: an 8 MiB test image makes a handful of them.
PACK_TARGET: Final = 256 * 1024


async def write_packed(
    stores: list[LocalStore],
    name: str,
    plain: Store,
    *,
    like: Manifest | None = None,
    alone: int = 0,
    target: int = PACK_TARGET,
) -> Manifest:
    """Store blob ``name``, published in ``plain`` (any layout), in each of ``stores``: chunks
    that ``like`` stores keep their place (in its packs, or alone) and are not written again;
    the first ``alone`` other chunks are objects of their own; the rest fill new packs of
    about ``target`` bytes. Returns the
    manifest written (committed last, after a sync, as a publish does)."""
    blob = BlobName.parse(name)
    manifest = await read_manifest(plain, GALLERY, blob)
    kept = {} if like is None else like.stored_digests()
    packs: list[tuple[PackRef, bytes]] = []
    places: dict[str, ChunkRef] = {}
    lone: dict[str, bytes] = {}
    filling = bytearray()
    offsets: dict[str, int] = {}

    def close() -> None:
        if filling:
            ref = PackRef(digest_of(filling), len(filling))
            packs.append((ref, bytes(filling)))
            for digest, offset in offsets.items():
                chunk = stored[digest]
                places[digest] = ChunkRef(digest, chunk.length, chunk.stored_length, ref, offset)
            filling.clear()
            offsets.clear()

    stored = manifest.stored_digests()
    for digest, chunk in stored.items():
        if digest in kept:
            places[digest] = kept[digest]
            continue
        key, offset = chunk.location(GALLERY)
        frame = await plain.get(key, offset, chunk.stored_length)
        if len(lone) < alone:
            lone[digest] = frame
            places[digest] = ChunkRef(digest, chunk.length, chunk.stored_length)
            continue
        offsets[digest] = len(filling)
        filling.extend(frame)
        if len(filling) >= target:
            close()
    close()
    chunks = [chunk if chunk.digest is None else places[chunk.digest] for chunk in manifest.chunks]
    used = {chunk.pack.digest: chunk.pack for chunk in chunks if chunk.pack is not None}
    written = build_manifest(
        size=manifest.size,
        digest=manifest.digest,
        chunking=manifest.chunking,
        level=manifest.level,
        chunks=chunks,
        packs=list(used.values()),
    )
    for store in stores:
        for ref, data in packs:
            await store.put(pack_key(GALLERY, ref.digest), data)
        for digest, frame in lone.items():
            await store.put(chunk_key(GALLERY, digest), frame)
        await store.sync()
        await store.put(manifest_key(GALLERY, blob), encode_manifest(written))
        await store.sync()
    return written


def objects(store: LocalStore) -> dict[str, tuple[int, str]]:
    """Every pack and chunk file of the gallery in ``store``: key -> (size, xxh3-128 of its
    bytes), so that two replicas compare byte for byte."""
    found: dict[str, tuple[int, str]] = {}
    for prefix in (packs_prefix(GALLERY), chunks_prefix(GALLERY)):
        for directory, _, names in os.walk(store.root / prefix):
            for name in names:
                path = Path(directory) / name
                data = path.read_bytes()
                found[str(path.relative_to(store.root))] = (len(data), digest_of(data))
    return found


def object_bytes(store: LocalStore) -> int:
    """Bytes of every pack and chunk file of the gallery in ``store``."""
    return sum(size for size, _ in objects(store).values())


def pack_path(store: LocalStore, pack: PackRef) -> Path:
    return store.root / pack_key(GALLERY, pack.digest)


def pack_sizes(packs: list[PackRef] | tuple[PackRef, ...]) -> int:
    return sum(pack.size for pack in packs)


def lone_chunks(manifest: Manifest) -> dict[str, ChunkRef]:
    """The chunks ``manifest`` stores as objects of their own, by digest."""
    return {d: c for d, c in manifest.stored_digests().items() if c.pack is None}
