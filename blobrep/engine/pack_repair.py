"""Mending a pack in one replica: a verified whole copy from elsewhere, or the damaged copy
patched with verified frames.

A pack is never rewritten in part (an object store cannot, and its name is the digest of its
bytes), so a bad chunk in a pack is repaired by replacing the whole pack. The replacement must
be the pack the manifest names, byte for byte: its size and xxh3-128 digest are checked before
it is written. It is found, in order:

1. in another replica (or a donor of another region) holding the pack whole;
2. in the damaged copy itself, with every frame known bad replaced by a verified frame of the
   same chunk (read from elsewhere, the same length as the manifest records): bit rot in one
   frame of a pack no other replica holds whole is still mended, as long as the patched bytes
   give the pack's digest back.

A pack is read with at most one byte more than its recorded size, and its size is bounded by
:data:`~blobrep.core.packs.MAX_PACK_SIZE`, so mending holds at most one pack in memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import anyio.to_thread

from blobrep.core.codec import digest_of
from blobrep.core.keys import pack_key
from blobrep.errors import BlobrepError

if TYPE_CHECKING:
    from blobrep.core.packs import PackRef
    from blobrep.storage.base import Store


def _matches(pack: PackRef, data: bytes | bytearray) -> bool:
    """True if ``data`` is exactly ``pack`` (CPU work: run on a thread)."""
    return len(data) == pack.size and digest_of(data) == pack.digest


def _patched(pack: PackRef, data: bytes, frames: Mapping[int, bytes]) -> bytearray | None:
    """``data`` with each of ``frames`` (by offset) written over it, if that gives ``pack``."""
    if len(data) != pack.size:
        return None
    patched = bytearray(data)
    for offset, frame in frames.items():
        if offset + len(frame) > pack.size:
            return None
        patched[offset : offset + len(frame)] = frame
    return patched if _matches(pack, patched) else None


async def read_pack(store: Store, gallery: str, pack: PackRef) -> bytes | None:
    """``pack`` as ``store`` holds it, if it holds it whole and intact; else None (missing,
    damaged, not a regular file, or the store failed)."""
    try:
        data = await store.get(pack_key(gallery, pack.digest), 0, pack.size + 1)
    except BlobrepError:
        return None
    return data if await anyio.to_thread.run_sync(_matches, pack, data) else None


async def mend_pack(
    target: Store,
    gallery: str,
    pack: PackRef,
    *,
    sources: Sequence[Store],
    frames: Mapping[int, bytes] | None = None,
) -> str | None:
    """Replace ``pack`` in ``target`` with a verified copy; where it came from, or None.

    ``sources`` are asked in order for the whole pack; failing that, ``target``'s own copy
    is patched with ``frames`` (verified frames of chunks in the pack, by offset). The copy
    written is always the pack byte for byte (size and digest checked).

    Raises:
        StorageError: writing to ``target`` failed.
    """
    key = pack_key(gallery, pack.digest)
    for source in sources:
        if source is target:
            continue
        whole = await read_pack(source, gallery, pack)
        if whole is not None:
            await target.put(key, whole)
            return source.name
    if not frames:  # nothing verified to patch with
        return None
    try:
        damaged = await target.get(key, 0, pack.size + 1)
    except BlobrepError:
        return None
    patched = await anyio.to_thread.run_sync(_patched, pack, damaged, frames)
    if patched is None:
        return None
    await target.put(key, patched)
    return f"{target.name} (patched)"
