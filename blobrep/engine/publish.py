"""Publish: stream a source into content-addressed chunks plus a manifest.

The pipeline (:mod:`blobrep.engine.publish_pipeline`), for one source and every replica of one region::

    reader thread --(bounded queue)--> N chunk tasks --> each replica store
    read window -> cut -> hash           compress on a CPU thread; put where missing

* The source is a file named by path, an open stream (standard input) or an async byte stream
  (a request body): :mod:`blobrep.engine.source`. Each is read the same way and with the same
  memory: no staging file, no whole read.
* The reader reads the source window by window (never the whole of it), finds chunk boundaries,
  hashes each chunk (xxh3-128) and the whole blob in order, and recognises zero chunks.
* Chunk tasks skip zero chunks and chunks every replica already holds, in a pack or on their
  own (that is why publishing the same image again writes nothing), compress the rest on a
  thread bounded by a capacity limiter sized to the cores, and write them: gathered into
  packs of about ``pack_size`` bytes (manifest format 3), or each as its own object.
* The queue between the stages is bounded, so memory does not grow with the blob: at most
  a few windows are alive at once.
* Only when every chunk is written does each replica ``sync()``; then the manifest is
  committed. A publish killed at any point leaves no manifest that names a missing chunk,
  and since chunk writes are atomic, no torn chunk either. A source that fails (a stream
  that breaks off, or ends short of the length it announced) fails the publish before that
  point: its chunks already written are garbage for collection, and nothing names them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import anyio
import anyio.to_thread

from blobrep.core.chunking import ChunkingSpec
from blobrep.core.codec import (
    DEFAULT_LEVEL,
    validate_level,
)
from blobrep.core.keys import manifest_key
from blobrep.core.manifest import ChunkRef, build_manifest, encode_manifest
from blobrep.core.names import BlobName, validate_gallery_name
from blobrep.core.packs import DEFAULT_PACK_SIZE, MAX_PACK_SIZE, PackRef
from blobrep.core.pins import ManifestPin
from blobrep.engine._concurrency import task_group
from blobrep.engine.leases import hold_lease
from blobrep.engine.manifests import check_no_conflict, commit_manifest
from blobrep.engine.pack_index import packed_chunks
from blobrep.engine.publish_pipeline import Pipeline
from blobrep.engine.source import AsyncBlobSource, BlobSource, FileSource, PublishSource, open_source
from blobrep.errors import InvalidParameterError

if TYPE_CHECKING:
    from blobrep.storage.base import Store

ProgressCallback = Callable[[int, int], None]
"""Called on the event loop with (bytes done, bytes total) as the work advances."""
PublishProgressCallback = Callable[[int, int | None], None]
"""A publish's :data:`ProgressCallback`: the total is None while the source's length is not
known (a stream whose length nobody announced)."""


class PublishFigures(Protocol):
    """What a user is told of a publish: what :class:`PublishResult` has, and what a daemon
    says of an upload it published."""

    @property
    def size(self) -> int: ...

    @property
    def new_chunks(self) -> int: ...

    @property
    def written_bytes(self) -> int: ...


@dataclass(frozen=True, slots=True)
class PublishResult:
    """What a publish did, for the user and for tests."""

    gallery: str
    blob: str
    manifest_key: str
    size: int
    digest: str
    chunks: int
    zero_chunks: int
    distinct_chunks: int
    stored_bytes: int
    """Bytes the blob's distinct chunks take in one replica."""
    new_chunks: int
    """Distinct chunks that at least one replica lacked and that were written."""
    written_bytes: int
    """Chunk and pack bytes written, summed over every replica."""
    replicas: int
    committed: bool
    """False if every replica already held this exact manifest."""
    manifest_pin: ManifestPin
    """Size and SHA-256 of the manifest written: what the catalog pins for the version."""
    new_packs: int = 0
    """Packs written (each to every replica) to hold the new chunks."""


async def publish(
    source: str | os.PathLike[str] | PublishSource,
    stores: Sequence[Store],
    gallery: str,
    blob: BlobName,
    *,
    chunking: ChunkingSpec | None = None,
    level: int = DEFAULT_LEVEL,
    progress: PublishProgressCallback | None = None,
    replace: bool = False,
    pack_size: int | None = DEFAULT_PACK_SIZE,
) -> PublishResult:
    """Publish ``source`` as ``blob`` of ``gallery`` into every store of ``stores``.

    ``source`` is the path of a regular file (opened and closed here), or a source object
    (:class:`~blobrep.engine.source.BlobSource`, :class:`~blobrep.engine.source.AsyncBlobSource`)
    that the caller owns; it is read once, to its end. The blob's size and digest are those of
    the bytes read.

    With ``replace``, a manifest a replica holds under the blob's name is overwritten rather
    than a conflict: for callers whose catalog says the blob has no manifest yet (one left by
    an interrupted publish of other content is garbage).

    New chunks go into packs of about ``pack_size`` bytes; with None each is an object of its
    own (manifest format 1 or 2, what versions before packs wrote and read).

    Raises:
        SourceError: the source is missing, unreadable or not a regular file; or a stream
            broke off, or ended short of or ran past the length it announced (nothing is
            committed).
        AlreadyExistsError: a replica holds a different blob under this name.
        BusyError: garbage collection kept a replica busy for longer than the lease wait.
        StorageError: a replica failed; no manifest was written to it.
    """
    validate_gallery_name(gallery)
    validate_level(level)
    validate_pack_size(pack_size)
    spec = (chunking or ChunkingSpec.default()).validated()
    if not stores:
        raise InvalidParameterError("publish needs at least one store to write to")
    opened: FileSource | None = None
    if isinstance(source, (str, os.PathLike)):
        opened = await anyio.to_thread.run_sync(open_source, Path(source))
        source = opened
    elif not isinstance(source, (BlobSource, AsyncBlobSource)):
        raise InvalidParameterError(
            f"publish reads a file path or a source object, not {type(source).__name__}"
        )
    try:
        async with AsyncExitStack() as leases:
            # Shared leases from before the first chunk lookup until after the manifest
            # commit: garbage collection must not delete a chunk found present meanwhile.
            for store in stores:
                await leases.enter_async_context(
                    hold_lease(store, gallery, exclusive=False, holder=f"publish of {blob}")
                )
            return await _publish_leased(
                source, stores, gallery, blob, spec, level, progress, replace, pack_size
            )
    finally:
        if opened is not None:
            opened.close()


async def _publish_leased(
    source: PublishSource,
    stores: Sequence[Store],
    gallery: str,
    blob: BlobName,
    spec: ChunkingSpec,
    level: int,
    progress: PublishProgressCallback | None,
    replace: bool,
    pack_size: int | None,
) -> PublishResult:
    """The publish itself, run while every replica's shared lease is held."""
    known = await packed_chunks(stores, gallery)
    pipeline = Pipeline(source, stores, gallery, spec, level, progress, pack_size=pack_size, known=known)
    refs, stats = await pipeline.run()
    reader_digest, size = stats.digest, stats.size
    chunks, packs = _chunk_refs(refs, stats.stored_sizes, stats.placed)
    manifest = build_manifest(
        size=size, digest=reader_digest, chunking=spec, level=level, chunks=chunks, packs=packs
    )
    async with task_group() as group:
        for store in stores:
            group.start_soon(store.sync)
    if not replace:
        for store in stores:  # before committing anywhere: a conflict must not half-commit
            await check_no_conflict(store, gallery, blob, manifest)
    committed = [False] * len(stores)

    async def commit(position: int, store: Store) -> None:
        committed[position] = await commit_manifest(store, gallery, blob, manifest, replace=replace)

    async with task_group() as group:
        for position, store in enumerate(stores):
            group.start_soon(commit, position, store)
    return PublishResult(
        gallery=gallery,
        blob=str(blob),
        manifest_key=manifest_key(gallery, blob),
        size=size,
        digest=reader_digest,
        chunks=len(chunks),
        zero_chunks=sum(1 for chunk in chunks if chunk.is_zero),
        distinct_chunks=len(stats.stored_sizes),
        stored_bytes=manifest.stored_bytes,
        new_chunks=stats.new_chunks,
        written_bytes=stats.written_bytes,
        replicas=len(stores),
        committed=any(committed),
        manifest_pin=ManifestPin.of(encode_manifest(manifest)),
        new_packs=stats.new_packs,
    )


def validate_pack_size(pack_size: int | None) -> None:
    """Refuse a pack size no pack could be filled to within :data:`MAX_PACK_SIZE`."""
    limit = MAX_PACK_SIZE // 2
    if pack_size is not None and (
        isinstance(pack_size, bool) or not isinstance(pack_size, int) or not 1 <= pack_size <= limit
    ):
        raise InvalidParameterError(
            f"pack size {pack_size!r} is out of range: choose 1 to {limit} bytes"
            f" ({DEFAULT_PACK_SIZE} is the default), or none to store each chunk on its own"
        )


def _chunk_refs(
    refs: Sequence[tuple[str | None, int]], stored_sizes: dict[str, int], placed: dict[str, ChunkRef]
) -> tuple[list[ChunkRef], list[PackRef]]:
    """The manifest's chunk entries in order, and the packs they name in order of first use."""
    chunks: list[ChunkRef] = []
    packs: dict[str, PackRef] = {}
    for digest, length in refs:
        if digest is None:
            chunks.append(ChunkRef(None, length, 0))
            continue
        where = placed.get(digest)
        if where is None or where.pack is None:
            chunks.append(ChunkRef(digest, length, stored_sizes[digest]))
            continue
        packs.setdefault(where.pack.digest, where.pack)
        chunks.append(ChunkRef(digest, length, where.stored_length, where.pack, where.offset))
    return chunks, list(packs.values())
