"""Helpers for the read and deploy tests: a region of published replicas, and damage to one."""

from __future__ import annotations

import random
from pathlib import Path

from blobrep.core.codec import new_blob_hasher
from blobrep.core.names import BlobName
from blobrep.engine.publish import publish
from blobrep.storage import LocalStore
from tests.engine.helpers import GALLERY, MIB, NAME, SMALL_CHUNKS, chunk_files, flip_byte, read_manifest_json

BLOB = BlobName.parse(NAME)


def region(root: Path, count: int = 3) -> list[LocalStore]:
    """``count`` empty replica directories of one region, named as the embedded layout names them."""
    return [
        LocalStore(root / f"replica-{n}", name=f"westus/replica-{n}", create=True)
        for n in range(1, count + 1)
    ]


async def publish_region(image: Path, root: Path, count: int = 3) -> list[LocalStore]:
    """A region of ``count`` replicas, each holding ``image`` as the test blob (small chunks,
    each stored on its own: :func:`damage` damages chunks one by one; reads of damaged packs
    are in test_packed_reads.py)."""
    stores = region(root, count)
    await publish(image, stores, GALLERY, BLOB, chunking=SMALL_CHUNKS, pack_size=None)
    return stores


def stored_digests(store: LocalStore) -> list[str]:
    """The blob's distinct stored chunks, in manifest order."""
    digests: list[str] = []
    for entry in read_manifest_json(store)["chunks"]:
        if not entry.get("zero") and entry["digest"] not in digests:
            digests.append(entry["digest"])
    return digests


def damage(store: LocalStore, fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Corrupt ``fraction`` of the blob's chunks in ``store`` and delete as many others.

    At least one of each. Returns the (corrupted, deleted) digests.
    """
    digests = stored_digests(store)
    count = max(1, round(len(digests) * fraction))
    chosen = random.Random(seed).sample(digests, 2 * count)
    files = chunk_files(store)
    corrupted, deleted = chosen[:count], chosen[count:]
    for digest in corrupted:
        flip_byte(files[digest])
    for digest in deleted:
        files[digest].unlink()
    return corrupted, deleted


def file_digest(path: Path) -> str:
    """The whole-blob digest of a file, computed independently of the engine."""
    hasher = new_blob_hasher()
    with open(path, "rb") as data:
        while block := data.read(4 * MIB):
            hasher.update(block)
    return hasher.hexdigest()
