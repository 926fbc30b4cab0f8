"""Storage keys: the layout inside one replica, and the rules every key must pass.

Layout (identical for every kind of store)::

    galleries/{g}/chunks/{d[0:2]}/{d[2:4]}/{d}            zstd frame of one chunk
    galleries/{g}/packs/{p[0:2]}/{p}                       zstd frames of many chunks
    galleries/{g}/images/{i}/versions/{v}/manifest.json    written last (the OS disk)
    galleries/{g}/images/{i}/versions/{v}/lun{N}/manifest.json   a data disk at LUN N

A version's data disks are blobs like its OS disk, content-addressed into the same chunks
and packs of the gallery, so a data disk shares what it can with every disk of the gallery.
Their manifests sit below the version's own prefix, so listing a version's prefix finds
every disk it has, and the OS disk's key is the one it always was.

Chunks are deduplicated within a gallery and never across galleries: xxh3 is fast but not
collision-resistant, and a gallery is a trust boundary.

A key is a relative POSIX path of non-empty segments made of a safe alphabet. Refusing
``..``, absolute paths, NUL and backslashes here means no store can be tricked into touching
anything outside its root, whatever it maps keys to.
"""

from __future__ import annotations

import re

from blobrep.core.names import BlobName, validate_gallery_name
from blobrep.errors import InvalidInputError, InvalidKeyError

MAX_KEY_LENGTH = 1024
_SEGMENT_RE = re.compile(r"[A-Za-z0-9._-]{1,255}")
_DIGEST_RE = re.compile(r"[0-9a-f]{32}")

MANIFEST_FILENAME = "manifest.json"


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key, else raise :class:`InvalidKeyError`."""
    if not key:
        raise InvalidKeyError("storage key is empty")
    if len(key) > MAX_KEY_LENGTH:
        raise InvalidKeyError(f"storage key is {len(key)} characters; the limit is {MAX_KEY_LENGTH}")
    if key.startswith("/"):
        raise InvalidKeyError(f"storage key {key!r} is absolute; keys are relative to the store")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidKeyError(
                f"storage key {key!r} has an empty, '.' or '..' segment; keys may not escape"
                " or alias within the store"
            )
        if _SEGMENT_RE.fullmatch(segment) is None:
            raise InvalidKeyError(
                f"storage key {key!r} has segment {segment!r}: use letters, digits, '.', '_', '-'"
            )
    return key


def validate_prefix(prefix: str) -> str:
    """Return a listing prefix: empty (everything) or a valid key, optionally ending in ``/``."""
    if prefix == "":
        return prefix
    validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def is_digest(text: str) -> bool:
    """True if ``text`` is a chunk digest: 32 lower-case hex characters (xxh3-128)."""
    return _DIGEST_RE.fullmatch(text) is not None


def chunk_key(gallery: str, digest: str) -> str:
    """The key of the chunk named ``digest`` in ``gallery``."""
    validate_gallery_name(gallery)
    if not is_digest(digest):
        raise InvalidKeyError(f"chunk digest {digest!r} is not 32 lower-case hex characters")
    return f"galleries/{gallery}/chunks/{digest[0:2]}/{digest[2:4]}/{digest}"


def pack_key(gallery: str, digest: str) -> str:
    """The key of the pack named ``digest`` (the xxh3-128 of its bytes) in ``gallery``.

    Packs are few (one per several MiB of new data), so one level of fan-out keeps each
    directory of a local replica small.
    """
    validate_gallery_name(gallery)
    if not is_digest(digest):
        raise InvalidKeyError(f"pack digest {digest!r} is not 32 lower-case hex characters")
    return f"galleries/{gallery}/packs/{digest[0:2]}/{digest}"


def packs_prefix(gallery: str) -> str:
    """The prefix under which every pack of ``gallery`` lives."""
    return f"galleries/{validate_gallery_name(gallery)}/packs/"


def chunks_prefix(gallery: str) -> str:
    """The prefix under which every chunk of ``gallery`` lives."""
    return f"galleries/{validate_gallery_name(gallery)}/chunks/"


def manifest_key(gallery: str, blob: BlobName) -> str:
    """The key of the manifest of ``blob`` in ``gallery``."""
    validate_gallery_name(gallery)
    disk = "" if blob.lun is None else f"lun{blob.lun}/"
    return f"galleries/{gallery}/images/{blob.image}/versions/{blob.version}/{disk}{MANIFEST_FILENAME}"


def manifests_prefix(gallery: str, image: str | None = None, blob: BlobName | None = None) -> str:
    """The listing prefix of the manifests of ``gallery``; of one definition's (``image``);
    or of one blob's directory (``blob``). Each ends in ``/``, so ``images/a/`` never lists
    ``images/ab/``."""
    validate_gallery_name(gallery)
    if blob is not None:
        return f"galleries/{gallery}/images/{blob.image}/versions/{blob.version}/"
    if image is not None:
        return validate_prefix(f"galleries/{gallery}/images/{image}/")
    return f"galleries/{gallery}/images/"


def blob_of_manifest_key(gallery: str, key: str) -> BlobName | None:
    """The blob whose manifest lives at ``key`` in ``gallery``; None for any other key."""
    parts = key.split("/")
    if len(parts) not in (7, 8) or parts[:3] != ["galleries", gallery, "images"] or parts[4] != "versions":
        return None
    if parts[-1] != MANIFEST_FILENAME:
        return None
    try:
        blob = BlobName.parse("/".join([parts[3], "versions", *parts[5:-1]]))
    except InvalidInputError:
        return None
    return blob if manifest_key(gallery, blob) == key else None


def lease_key(gallery: str, lease_id: str, *, exclusive: bool) -> str:
    """The key of one lease on ``gallery`` in a replica: ``galleries/{g}/leases/{id}.{kind}``.

    The kind sits in the name so that an acquirer can tell which leases could conflict with
    its own from a listing alone, before reading any of them.
    """
    validate_gallery_name(gallery)
    kind = "exclusive" if exclusive else "shared"
    return validate_key(f"galleries/{gallery}/leases/{lease_id}.{kind}")
