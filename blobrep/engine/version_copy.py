"""Copying a version's disk from another version, in one region, through replication.

A version created from another version holds the same disk, so its manifest is the source's,
byte for byte: a manifest names chunks and packs by digest only, never by gallery or version.
What the new version needs in each replica of its source region is therefore exactly what
replication gives a version in a new region: the blob's objects (packs, chunks stored alone),
then the manifest, written last. :func:`copy_version` hands that to the replication engine
(:func:`~blobrep.engine.replicate.replicate`) with the source replicas seen through
:class:`~blobrep.storage.aliased.AliasedStore` views, so there is one copier, not two:

* **same gallery** (the source region's replicas hold the source version): every object is
  already in the replicas it must be in, the survey finds them, and nothing but the manifest
  is written. A replica of the new version beyond those that hold the source (a higher replica
  count) is filled from them like any replica.
* **another gallery** (galleries never share chunks): each object the target gallery's
  replicas lack is read once from the source replicas, checked (a chunk decoded and hashed, a
  pack against its size and digest, both as the source's pinned manifest records them),
  failing over to another source replica when one is missing, corrupt or failing, and only
  then written into every target replica that lacks it. Nothing unverified is ever written,
  and a piece with no good copy fails the copy, naming each replica and what was wrong there.

Crash safety is replication's: each replica's objects are made durable (``sync``) before its
manifest is written, so a kill leaves each replica complete or not yet readable, and running
the copy again moves only what is still missing. Garbage collection of the target gallery
waits for the copy (shared leases on every target replica from survey to commit).

The source's manifest is read first, from the source replicas directly, so that a source that
cannot be read fails with the source's own names, before anything is written.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from blobrep.core.manifest import encode_manifest
from blobrep.core.pins import ManifestPin
from blobrep.engine.manifests import read_manifest
from blobrep.engine.replicate import RegionTarget, replicate
from blobrep.errors import (
    BlobrepError,
    BusyError,
    CopyError,
    ManifestError,
    ManifestNotFoundError,
    StorageError,
)
from blobrep.storage.aliased import AliasedStore

if TYPE_CHECKING:
    from blobrep.core.gallery import BlobInfo
    from blobrep.core.manifest import Manifest
    from blobrep.core.names import BlobName
    from blobrep.engine.replicate import RegionProgressCallback
    from blobrep.storage.base import Store


@dataclass(frozen=True, slots=True)
class CopyResult:
    """What a copy gave the new version, and what it had to move for it."""

    blob: BlobInfo
    """The new version's blob: the source's, with the pin of the manifest now in its replicas."""
    copied_chunks: int
    """Chunks written into the new version's replicas (0 in the same gallery)."""
    copied_bytes: int
    """Stored bytes written into them, summed over the replicas (0 in the same gallery)."""


async def copy_version(
    sources: Sequence[Store],
    source_gallery: str,
    source_blob: BlobName,
    targets: Sequence[Store],
    gallery: str,
    blob: BlobName,
    *,
    region: str,
    expect: BlobInfo,
    progress: RegionProgressCallback | None = None,
) -> CopyResult:
    """Give ``blob`` of ``gallery`` the disk of ``source_blob`` of ``source_gallery`` in every
    replica ``targets`` of ``region``, reading from the source version's replicas ``sources``.

    Args:
        sources: the source version's replicas in ``region`` (any of them may be damaged).
        targets: every replica the new version must have in ``region``, replica 1 first.
        expect: what the catalog recorded of the source's blob (its manifest pin).
        progress: receives replication's reports for ``region`` as objects land.

    Raises:
        ManifestNotFoundError, ManifestError, StorageError: no source replica holds the
            source's manifest as the catalog recorded it (nothing was written).
        CopyError: a piece of the disk has no good copy in any source replica, or a target
            replica failed; replicas already complete stay so, the others get no manifest.
        BusyError: a target replica is leased by garbage collection; nothing was written there.
    """
    manifest = await _source_manifest(sources, source_gallery, source_blob, expect)
    views = [AliasedStore(store, source_gallery, source_blob, gallery, blob) for store in sources]
    pinned = expect if expect.manifest is not None else dataclasses.replace(expect, manifest=_pin(manifest))
    (outcome,) = await replicate(
        views, [RegionTarget(region, targets)], gallery, blob, expect=pinned, progress=progress
    )
    if outcome.deferred is not None:
        raise BusyError(f"the copy into {region} must wait: {outcome.deferred}; run it again later")
    if outcome.error is not None:
        raise CopyError(
            f"{outcome.completed_replicas} of {outcome.target_replicas} replicas of {region} got the"
            f" disk: {outcome.error}"
        )
    return CopyResult(pinned, outcome.copied_chunks, outcome.copied_bytes)


def _pin(manifest: Manifest) -> ManifestPin:
    """The pin of the manifest a copy writes: the document replication commits."""
    return ManifestPin.of(encode_manifest(manifest))


async def _source_manifest(
    sources: Sequence[Store], gallery: str, blob: BlobName, expect: BlobInfo
) -> Manifest:
    """The source's manifest from the first source replica that holds it as ``expect`` says.

    Raises:
        ManifestError, StorageError: the first such failure, if some replica holds something
            that is not the manifest or cannot be read.
        ManifestNotFoundError: no replica holds one (also if there is no replica at all).
    """
    failures: list[BlobrepError] = []
    for store in sources:
        try:
            return await read_manifest(store, gallery, blob, expect=expect)
        except (ManifestNotFoundError, ManifestError, StorageError) as exc:
            failures.append(exc)
    damaged = [exc for exc in failures if not isinstance(exc, ManifestNotFoundError)]
    if damaged:
        raise damaged[0]
    names = ", ".join(store.name for store in sources) or "none"
    raise ManifestNotFoundError(f"no replica holds {gallery}/{blob} (replicas: {names})")
