"""Reading and writing manifests in a replica: the commit point of every blob."""

from __future__ import annotations

from blobrep.core.keys import manifest_key
from blobrep.core.manifest import Manifest, encode_manifest, parse_manifest
from blobrep.core.names import BlobName
from blobrep.errors import ConflictError, ManifestError, ManifestNotFoundError, NotFoundError
from blobrep.storage.base import Store


def conflict_error(store: Store, gallery: str, blob: BlobName) -> ConflictError:
    """The error for a replica that holds another manifest under ``blob``'s name."""
    return ConflictError(
        f"blob {gallery}/{blob} already exists in {store.name} with other content;"
        " versions are immutable: publish under a new version"
    )


async def read_manifest(store: Store, gallery: str, blob: BlobName) -> Manifest:
    """The parsed manifest of ``blob`` in ``store``.

    Raises:
        ManifestNotFoundError: if the replica holds no manifest for the blob.
        ManifestError: if it holds one that does not parse or add up.
    """
    key = manifest_key(gallery, blob)
    try:
        document = await store.get(key)
    except NotFoundError:
        raise ManifestNotFoundError(
            f"no blob {gallery}/{blob} in {store.name} (no manifest at {key})"
        ) from None
    try:
        return parse_manifest(document)
    except ManifestError as exc:
        raise ManifestError(f"{key} in {store.name}: {exc}") from exc


async def check_no_conflict(store: Store, gallery: str, blob: BlobName, manifest: Manifest) -> None:
    """Raise :class:`ConflictError` if ``store`` holds a manifest for ``blob`` other than ``manifest``.

    A publish checks every replica before committing to any, so that a conflict in one replica
    does not leave the new content committed in the others.
    """
    try:
        existing = await store.get(manifest_key(gallery, blob))
    except NotFoundError:
        return
    if existing != encode_manifest(manifest):
        raise conflict_error(store, gallery, blob)


async def commit_manifest(store: Store, gallery: str, blob: BlobName, manifest: Manifest) -> bool:
    """Write ``manifest`` as the commit point of ``blob`` in ``store``; True if newly written.

    Blobs are immutable: the same manifest again is a no-op, a different one a conflict.
    Every chunk must already be durable (the caller has run ``store.sync()``).

    Raises:
        ConflictError: if the replica holds a different manifest for this blob.
    """
    key = manifest_key(gallery, blob)
    document = encode_manifest(manifest)
    try:
        await store.put(key, document, if_absent=True)
    except ConflictError:
        existing = await store.get(key)
        if existing == document:
            return False
        raise conflict_error(store, gallery, blob) from None
    await store.sync()
    return True


async def delete_manifest(store: Store, gallery: str, blob: BlobName) -> bool:
    """Remove the commit point of ``blob`` from ``store`` durably; True if it was there.

    The blob stops being readable in that replica at once; its chunks stay until garbage
    collection, since other blobs of the gallery may share them.
    """
    removed = await store.delete(manifest_key(gallery, blob))
    if removed:
        await store.sync()
    return removed
