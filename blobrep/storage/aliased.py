"""A read-only view of one blob of a replica, under another gallery's and blob's keys.

Creating a version from another version copies the source's objects (packs and chunks stored
alone) into the new version's replicas, verified as they are read, and then commits the very
same manifest under the new name. That is what replication does for one blob inside one
gallery, so the copy reuses it (:mod:`blobrep.engine.version_copy`); replication reads and
writes one set of keys, though, and the source lives under other ones: another gallery (chunks
are never shared between galleries, :mod:`blobrep.core.keys`) and always another blob name.

An :class:`AliasedStore` presents the source replica as replication expects to find it: the
new blob's manifest key reads the source blob's manifest, and the new gallery's chunk and pack
keys read the source gallery's. A manifest names chunks and packs by digest only, never by
gallery or blob, so the document read through the view is byte for byte what the new version
must hold. Nothing else of the replica shows (other blobs' manifests, leases), and nothing can
be written through it: a view is read on behalf of a caller who may only read the source, so
the repairs a read would otherwise make fail (and are counted as such) rather than write into a
gallery the caller may not write to.
"""

from __future__ import annotations

import builtins
import dataclasses
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from blobrep.core.keys import chunks_prefix, manifest_key, packs_prefix
from blobrep.errors import NotFoundError, StorageError

if TYPE_CHECKING:
    from blobrep.core.names import BlobName
    from blobrep.storage.base import ObjectInfo, Payload, Store


class AliasedStore:
    """``inner``'s blob ``source_blob`` of ``source_gallery``, shown as ``blob`` of ``gallery``.

    Its name is the inner store's, so that every message names the replica the bytes are in.
    """

    def __init__(
        self, inner: Store, source_gallery: str, source_blob: BlobName, gallery: str, blob: BlobName
    ) -> None:
        self.inner = inner
        self._manifest = (manifest_key(gallery, blob), manifest_key(source_gallery, source_blob))
        self._prefixes = (
            (chunks_prefix(gallery), chunks_prefix(source_gallery)),
            (packs_prefix(gallery), packs_prefix(source_gallery)),
        )

    @property
    def name(self) -> str:
        return self.inner.name

    def _source_key(self, key: str) -> str | None:
        """The inner key that ``key`` shows, or None if the view shows nothing there."""
        shown, source = self._manifest
        if key == shown:
            return source
        for prefix, inner_prefix in self._prefixes:
            if key.startswith(prefix):
                return inner_prefix + key[len(prefix) :]
        return None

    def _refuse(self, key: str) -> StorageError:
        return StorageError(
            f"{key} cannot be written through the read-only view of a source version in"
            f" {self.inner.name}; a version's copy only reads its source"
        )

    async def get(self, key: str, offset: int = 0, length: int | None = None) -> bytes:
        inner = self._source_key(key)
        if inner is None:
            raise NotFoundError(f"{key} is not part of the source version shown from {self.inner.name}")
        return await self.inner.get(inner, offset, length)

    async def put(self, key: str, data: Payload, *, if_absent: bool = False) -> None:
        raise self._refuse(key)

    async def exists(self, key: str) -> bool:
        inner = self._source_key(key)
        return inner is not None and await self.inner.exists(inner)

    async def delete(self, key: str) -> bool:
        raise self._refuse(key)

    async def list(self, prefix: str = "") -> AsyncIterator[str]:
        """The chunk and pack keys under ``prefix``, as the view shows them (never a manifest:
        nothing lists the view's one manifest, it is asked for by name)."""
        for shown, source in self._prefixes:
            if shown.startswith(prefix):
                inner_prefix = source
            elif prefix.startswith(shown):
                inner_prefix = source + prefix[len(shown) :]
            else:
                continue
            async for key in self.inner.list(inner_prefix):
                yield shown + key[len(source) :]

    async def stat(self, key: str) -> ObjectInfo:
        inner = self._source_key(key)
        if inner is None:
            raise NotFoundError(f"{key} is not part of the source version shown from {self.inner.name}")
        return dataclasses.replace(await self.inner.stat(inner), key=key)

    async def stat_many(self, keys: Sequence[str]) -> builtins.list[ObjectInfo | None]:
        mapped = [self._source_key(key) for key in keys]
        asked = [inner for inner in mapped if inner is not None]
        found = iter(await self.inner.stat_many(asked) if asked else [])
        infos: builtins.list[ObjectInfo | None] = []
        for key, inner in zip(keys, mapped, strict=True):
            info = None if inner is None else next(found)
            infos.append(None if info is None else dataclasses.replace(info, key=key))
        return infos

    async def sync(self) -> None:
        """Nothing is written through a view, so there is nothing to make durable."""

    async def sweep_temporaries(
        self, prefix: str = "", *, older_than: float, dry_run: bool = False
    ) -> builtins.list[ObjectInfo]:
        return []
