"""Turning a published blob into one stored in packs (manifest format 3), for the tests of
the components that read, copy, check and collect replicas.

``pack_blob`` moves the chunks a blob stores as their own objects into packs of about
``target`` bytes, rewrites its manifest in format 3 and deletes the chunk objects: the layout
a publish that writes packs leaves, built from any blob the tests already publish.
"""

from __future__ import annotations

from blobrep.core.keys import manifest_key, pack_key
from blobrep.core.manifest import ChunkRef, Manifest, build_manifest, encode_manifest, parse_manifest
from blobrep.core.names import BlobName
from blobrep.core.packs import ClosedPack, PackBuilder, PackRef
from blobrep.storage.base import Store


async def pack_blob(store: Store, gallery: str, name: str, *, target: int = 64 * 1024) -> Manifest:
    """Store ``name``'s chunks in packs in ``store``; its new manifest (also returned)."""
    blob = BlobName.parse(name)
    key = manifest_key(gallery, blob)
    manifest = parse_manifest(await store.get(key))
    builder = PackBuilder(target=target)
    closed: list[ClosedPack] = []
    moved: list[str] = []
    for digest, chunk in manifest.stored_digests().items():
        if chunk.pack is not None:
            continue
        object_key, _ = chunk.location(gallery)
        frame = await store.get(object_key)
        moved.append(object_key)
        if builder.add(digest, chunk.length, frame):
            full = builder.close()
            assert full is not None
            closed.append(full)
    last = builder.close()
    if last is not None:
        closed.append(last)
    places = {digest: (pack.ref, offset) for pack in closed for digest, offset in pack.offsets.items()}
    for pack in closed:
        await store.put(pack_key(gallery, pack.ref.digest), bytes(pack.data))
    chunks = [_placed(chunk, places) for chunk in manifest.chunks]
    packs: list[PackRef] = list(manifest.packs) + [pack.ref for pack in closed]
    packed = build_manifest(
        size=manifest.size,
        digest=manifest.digest,
        chunking=manifest.chunking,
        level=manifest.level,
        chunks=chunks,
        packs=packs,
    )
    await store.sync()
    await store.put(key, encode_manifest(packed))
    await store.sync()
    for object_key in moved:
        await store.delete(object_key)
    await store.sync()
    return packed


def _placed(chunk: ChunkRef, places: dict[str, tuple[PackRef, int]]) -> ChunkRef:
    if chunk.digest is None or chunk.digest not in places:
        return chunk
    pack, offset = places[chunk.digest]
    return ChunkRef(chunk.digest, chunk.length, chunk.stored_length, pack, offset)
