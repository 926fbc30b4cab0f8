"""Reading and writing manifests in a replica: the commit point of every blob.

A replica's manifest is never believed on its own. Readers say what they expect of it:

* a :class:`~blobrep.core.gallery.BlobInfo` with a :class:`~blobrep.core.pins.ManifestPin`
  (what the catalog recorded at publish): the document must be byte for byte the pinned one,
  and no more than its pinned size is ever read;
* a ``BlobInfo`` without a pin (versions published before pins existed): the parsed manifest
  must describe the recorded blob (size, digest, stored bytes, chunk count), and the read is
  bounded by what a manifest of that many chunks can take;
* nothing (the ``blob`` plumbing commands, which have no catalog): the manifest is only
  checked to be well formed and consistent, and at most :data:`MAX_MANIFEST_BYTES` are read.

Whatever the replica holds instead (another version's manifest, a reordered or lying one, a
huge or sparse file, a FIFO, a link) is a :class:`ManifestError` that names the replica, so
the caller counts that replica as damaged and fails over to another.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from blobrep.core.keys import manifest_key
from blobrep.core.manifest import MAX_MANIFEST_BYTES, Manifest, encode_manifest, parse_manifest
from blobrep.errors import (
    AlreadyExistsError,
    DamagedObjectError,
    ManifestError,
    ManifestMismatchError,
    ManifestNotFoundError,
    NotFoundError,
)

if TYPE_CHECKING:
    from blobrep.core.gallery import BlobInfo
    from blobrep.core.names import BlobName
    from blobrep.storage.base import Store

#: Bytes a manifest may take per chunk entry, and for everything else, when no pin says more.
_BYTES_PER_CHUNK: Final = 160
_BYTES_OVERHEAD: Final = 4096
#: Above this limit a manifest's size is asked before it is read.
_STAT_FIRST: Final = 1024 * 1024


def manifest_limit(expect: BlobInfo | None) -> int:
    """The most bytes a manifest that meets ``expect`` can take."""
    if expect is None:
        return MAX_MANIFEST_BYTES
    if expect.manifest is not None:
        return expect.manifest.size
    return min(MAX_MANIFEST_BYTES, _BYTES_OVERHEAD + _BYTES_PER_CHUNK * expect.chunks)


def conflict_error(store: Store, gallery: str, blob: BlobName) -> AlreadyExistsError:
    """The error for a replica that holds another manifest under ``blob``'s name."""
    return AlreadyExistsError(
        f"blob {gallery}/{blob} already exists in {store.name} with other content;"
        " versions are immutable: publish under a new version"
    )


async def read_manifest_document(store: Store, gallery: str, blob: BlobName, limit: int) -> bytes:
    """The raw manifest of ``blob`` in ``store``, refused unread if it is over ``limit`` bytes.

    Raises:
        ManifestNotFoundError: the replica holds no manifest for the blob.
        ManifestError: it is too large, or not a regular file (a FIFO, a link, ...).
    """
    key = manifest_key(gallery, blob)
    try:
        if limit > _STAT_FIRST:
            await _refuse_oversized(store, key, limit)
        document = await store.get(key, 0, limit + 1)
    except NotFoundError:
        raise ManifestNotFoundError(
            f"no blob {gallery}/{blob} in {store.name} (no manifest at {key})"
        ) from None
    except DamagedObjectError as exc:
        raise ManifestError(f"damaged manifest: {exc}") from None
    if len(document) > limit:
        raise ManifestError(
            f"{key} in {store.name} is larger than the {limit} bytes a manifest of this blob can take;"
            " it was not read further"
        )
    return document


async def _refuse_oversized(store: Store, key: str, limit: int) -> None:
    """Refuse a manifest larger than ``limit`` by its size alone, before reading any of it.

    With a large limit (no pin to bound it), reading up to the limit of a huge or sparse file
    only to refuse it would cost that much memory. A key that is not a regular file stats as
    absent: the read that follows says what it is.
    """
    try:
        info = await store.stat(key)
    except NotFoundError:
        return
    if info.size > limit:
        raise ManifestError(
            f"{key} in {store.name} is {info.size} bytes, more than the {limit} bytes a manifest"
            " of this blob can take; it was not read"
        )


def check_manifest(document: bytes, expect: BlobInfo | None, where: str) -> Manifest:
    """Parse ``document`` and check it against ``expect``; see the module docstring.

    Raises:
        ManifestError: naming ``where``, if it does not parse or is not the expected manifest.
    """
    if expect is not None and expect.manifest is not None:
        expect.manifest.check(document, where)
    try:
        manifest = parse_manifest(document)
    except ManifestError as exc:
        raise ManifestError(f"{where}: {exc}") from exc
    if expect is not None and expect.manifest is None:
        found = (manifest.size, manifest.digest, manifest.stored_bytes, len(manifest.chunks))
        wanted = (expect.size, expect.digest, expect.stored_bytes, expect.chunks)
        if found != wanted:
            raise ManifestMismatchError(
                f"{where} describes a blob of {found[0]} bytes, digest {found[1]}, {found[3]} chunks;"
                f" the catalog recorded {wanted[0]} bytes, digest {wanted[1]}, {wanted[3]} chunks:"
                " it is not this version's manifest"
            )
    return manifest


async def read_manifest(
    store: Store, gallery: str, blob: BlobName, *, expect: BlobInfo | None = None
) -> Manifest:
    """The parsed manifest of ``blob`` in ``store``, checked against ``expect``.

    Raises:
        ManifestNotFoundError: if the replica holds no manifest for the blob.
        ManifestError: if it holds one that is damaged, does not parse, or is not the one
            ``expect`` describes.
        StorageError: the store failed.
    """
    document = await read_manifest_document(store, gallery, blob, manifest_limit(expect))
    return check_manifest(document, expect, f"{manifest_key(gallery, blob)} in {store.name}")


async def check_no_conflict(store: Store, gallery: str, blob: BlobName, manifest: Manifest) -> None:
    """Raise :class:`AlreadyExistsError` if ``store`` holds a manifest for ``blob`` other than ``manifest``.

    A publish checks every replica before committing to any, so that a conflict in one replica
    does not leave the new content committed in the others. A damaged entry (not a regular
    file) is no conflict: committing replaces it.
    """
    document = encode_manifest(manifest)
    try:
        existing = await read_manifest_document(store, gallery, blob, len(document))
    except (ManifestNotFoundError, ManifestError):
        if await store.exists(manifest_key(gallery, blob)):
            raise conflict_error(store, gallery, blob) from None
        return
    if existing != document:
        raise conflict_error(store, gallery, blob)


async def commit_manifest(
    store: Store, gallery: str, blob: BlobName, manifest: Manifest, *, replace: bool = False
) -> bool:
    """Write ``manifest`` as the commit point of ``blob`` in ``store``; True if newly written.

    Blobs are immutable: the same manifest again is a no-op, a different one a conflict,
    unless ``replace``: then whatever the replica holds under the name is overwritten. Only
    callers that know the replica's copy is wrong (it differs from the catalog's pin) replace.
    Every chunk must already be durable (the caller has run ``store.sync()``).

    Raises:
        AlreadyExistsError: if the replica holds a different manifest for this blob (not ``replace``).
    """
    key = manifest_key(gallery, blob)
    document = encode_manifest(manifest)
    if replace:
        try:
            existing: bytes | None = await read_manifest_document(store, gallery, blob, len(document))
        except (ManifestNotFoundError, ManifestError):
            existing = None
        if existing == document:
            return False
        await store.put(key, document)
        await store.sync()
        return True
    try:
        await store.put(key, document, if_absent=True)
    except AlreadyExistsError:
        try:
            existing = await read_manifest_document(store, gallery, blob, len(document))
        except (ManifestNotFoundError, ManifestError):
            existing = None
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
