"""The mark of garbage collection: which objects of a gallery the manifests in a replica name,
and which of the objects the replica holds they do not.

A replica holds a gallery's chunk data in two kinds of object: chunks stored alone, and packs
holding many chunks' frames (manifest format 3). What a manifest references is every object
it needs (:meth:`~blobrep.core.manifest.Manifest.objects`): its packs, whole, and its chunks
stored alone. A pack therefore stays while any manifest names it, even if that manifest uses
only some of its chunks: packs are never rewritten in part.

Both the sweep under the exclusive lease (:mod:`blobrep.engine.gc`) and the room made on a
full replica before that lease can be written (:mod:`blobrep.engine.gc_room`) decide what is
garbage this one way. The mark is strict: a manifest that does not parse stops the
collection before anything is deleted, since the objects it names cannot be known. Only keys
that are exactly where a chunk or a pack of the gallery would be are ever candidates; anything
else under those prefixes is not ours to judge.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import anyio
import anyio.to_thread

from blobrep.core.keys import MANIFEST_FILENAME, chunk_key, chunks_prefix, is_digest, pack_key, packs_prefix
from blobrep.core.manifest import parse_manifest
from blobrep.engine._concurrency import CPU_THREADS, IO_TASKS, task_group
from blobrep.errors import ManifestError, NotFoundError

if TYPE_CHECKING:
    from blobrep.storage.base import ObjectInfo, Store

#: Object keys looked up (``stat_many``) per round trip while sweeping or making room.
SWEEP_BATCH: Final = 1000


async def mark_manifests(store: Store, gallery: str) -> tuple[int, set[str]]:
    """(manifests read, keys of the objects they name) for every manifest of ``gallery`` in
    ``store``.

    Raises:
        ManifestError: a manifest does not parse.
    """
    prefix = f"galleries/{gallery}/images/"
    keys = [key async for key in store.list(prefix) if key.endswith(f"/{MANIFEST_FILENAME}")]
    referenced: set[str] = set()
    read = 0
    io = anyio.CapacityLimiter(IO_TASKS)
    cpu = anyio.CapacityLimiter(CPU_THREADS)

    async def mark(key: str) -> None:
        nonlocal read
        async with io:
            try:
                document = await store.get(key)
            except NotFoundError:
                return  # deleted since the listing: its objects are garbage now
        try:
            manifest = await anyio.to_thread.run_sync(parse_manifest, document, limiter=cpu)
        except ManifestError as exc:
            raise ManifestError(
                f"garbage collection of gallery {gallery!r} in {store.name} stopped before deleting"
                f" anything: manifest {key} does not parse ({exc}), so the chunks and packs it"
                " names are unknown; repair or delete that manifest, then collect again"
            ) from exc
        referenced.update(manifest.objects(gallery))
        read += 1

    async with task_group() as group:
        for key in keys:
            group.start_soon(mark, key)
    return read, referenced


def _is_chunk(gallery: str, key: str) -> bool:
    """True if ``key`` is exactly where a chunk of ``gallery`` stored alone would be."""
    digest = key.rpartition("/")[2]
    return is_digest(digest) and chunk_key(gallery, digest) == key


def is_pack(gallery: str, key: str) -> bool:
    """True if ``key`` is exactly where a pack of ``gallery`` would be."""
    digest = key.rpartition("/")[2]
    return is_digest(digest) and pack_key(gallery, digest) == key


async def object_keys(store: Store, gallery: str) -> list[str]:
    """Every key of ``gallery`` in ``store`` that holds chunk data: chunks stored alone, then
    packs (nothing else under either prefix)."""
    chunks = [key async for key in store.list(chunks_prefix(gallery)) if _is_chunk(gallery, key)]
    packs = [key async for key in store.list(packs_prefix(gallery)) if is_pack(gallery, key)]
    return chunks + packs


async def stat_unreferenced(store: Store, batch: list[str], referenced: set[str]) -> list[ObjectInfo | None]:
    """``stat`` of the keys of ``batch`` that no manifest names (None: deleted meanwhile)."""
    unreferenced = [key for key in batch if key not in referenced]
    return await store.stat_many(unreferenced) if unreferenced else []
