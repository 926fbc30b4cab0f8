"""The mark of garbage collection: which chunks of a gallery the manifests in a replica name,
and which of the chunks the replica holds they do not.

Both the sweep under the exclusive lease (:mod:`blobrep.engine.gc`) and the room made on a
full replica before that lease can be written (:mod:`blobrep.engine.gc_room`) decide what is
garbage this one way. The mark is strict: a manifest that does not parse stops the
collection before anything is deleted, since the chunks it names cannot be known.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import anyio
import anyio.to_thread

from blobrep.core.keys import MANIFEST_FILENAME, chunk_key, chunks_prefix, is_digest
from blobrep.core.manifest import parse_manifest
from blobrep.engine._concurrency import CPU_THREADS, IO_TASKS, task_group
from blobrep.errors import ManifestError, NotFoundError

if TYPE_CHECKING:
    from blobrep.storage.base import ObjectInfo, Store

#: Chunk keys looked up (``stat_many``) per round trip while sweeping or making room.
SWEEP_BATCH: Final = 1000


async def mark_manifests(store: Store, gallery: str) -> tuple[int, set[str]]:
    """(manifests read, digests they name) for every manifest of ``gallery`` in ``store``.

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
                return  # deleted since the listing: its chunks are garbage now
        try:
            manifest = await anyio.to_thread.run_sync(parse_manifest, document, limiter=cpu)
        except ManifestError as exc:
            raise ManifestError(
                f"garbage collection of gallery {gallery!r} in {store.name} stopped before deleting"
                f" anything: manifest {key} does not parse ({exc}), so the chunks it names are"
                " unknown; repair or delete that manifest, then collect again"
            ) from exc
        referenced.update(manifest.stored_digests())
        read += 1

    async with task_group() as group:
        for key in keys:
            group.start_soon(mark, key)
    return read, referenced


def digest_of(gallery: str, key: str) -> str | None:
    """The digest a chunk key names; None for anything else under the chunks prefix."""
    digest = key.rpartition("/")[2]
    return digest if is_digest(digest) and chunk_key(gallery, digest) == key else None


async def chunk_keys(store: Store, gallery: str) -> list[str]:
    """Every chunk key of ``gallery`` in ``store`` (nothing else under the chunks prefix)."""
    return [key async for key in store.list(chunks_prefix(gallery)) if digest_of(gallery, key) is not None]


async def stat_unreferenced(
    store: Store, gallery: str, batch: list[str], referenced: set[str]
) -> list[ObjectInfo | None]:
    """``stat`` of the chunks of ``batch`` that no manifest names (None: deleted meanwhile)."""
    unreferenced = [key for key in batch if digest_of(gallery, key) not in referenced]
    return await store.stat_many(unreferenced) if unreferenced else []
