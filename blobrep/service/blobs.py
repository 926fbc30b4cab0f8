"""The blob plumbing: publish, restore and verify one blob over explicit stores.

For scripts and debugging: no catalog and no access checks, just the pipeline, over the
same key layout the gallery writes, so these calls read exactly what a gallery publishes.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from blobrep.core.codec import DEFAULT_LEVEL
from blobrep.core.names import BlobName
from blobrep.core.packs import DEFAULT_PACK_SIZE
from blobrep.engine.publish import ProgressCallback, PublishProgressCallback, PublishResult, publish
from blobrep.engine.restore import RestoreResult, restore
from blobrep.engine.verify import VerifyReport, verify

if TYPE_CHECKING:
    from pathlib import Path

    from blobrep.core.chunking import ChunkingSpec
    from blobrep.engine.source import PublishSource
    from blobrep.storage.base import Store
    from blobrep.storage.object_url import ObjectUrl


def store_at(place: Path | ObjectUrl, *, create: bool = False) -> Store:
    """The store at ``place``: a replica directory, or an S3 or Azure prefix reached with the
    standard environment variables (``AWS_*``, ``AZURE_STORAGE_*``).

    Raises:
        InvalidParameterError: the environment gives settings the object store refuses.
    """
    from blobrep.storage.object_url import ObjectUrl  # local directories never load obstore

    if isinstance(place, ObjectUrl):
        from blobrep.storage.shared_objects import shared_object_store

        return shared_object_store(place, {}, name=str(place))
    from blobrep.storage.local import LocalStore

    return LocalStore(place, create=create)


class BlobService:
    """Publish, restore and verify blobs named ``{image}/versions/{version}`` in a gallery.

    Every method is async and validates its input before touching a store; errors come from
    :mod:`blobrep.errors`.
    """

    async def publish(
        self,
        source: str | os.PathLike[str] | PublishSource,
        stores: Sequence[Store],
        gallery: str,
        name: str,
        *,
        chunking: ChunkingSpec | None = None,
        level: int = DEFAULT_LEVEL,
        pack_size: int | None = DEFAULT_PACK_SIZE,
        progress: PublishProgressCallback | None = None,
    ) -> PublishResult:
        """Chunk, compress and write ``source`` into every store, manifest last.

        ``source`` is a file's path or an open source (standard input, a request body: see
        :mod:`blobrep.engine.source`), read once to its end. New chunks go into packs of about
        ``pack_size`` bytes, or each into an object of its own with None.
        """
        return await publish(
            source,
            stores,
            gallery,
            BlobName.parse(name),
            chunking=chunking,
            level=level,
            progress=progress,
            pack_size=pack_size,
        )

    async def restore(
        self,
        store: Store,
        gallery: str,
        name: str,
        output: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
    ) -> RestoreResult:
        """Write the blob to ``output`` (sparse), checking every chunk and the whole digest."""
        return await restore(store, gallery, BlobName.parse(name), output, progress=progress)

    async def verify(
        self, store: Store, gallery: str, name: str, *, progress: ProgressCallback | None = None
    ) -> VerifyReport:
        """Check every chunk of the blob in ``store``; report missing and corrupt ones."""
        return await verify(store, gallery, BlobName.parse(name), progress=progress)
