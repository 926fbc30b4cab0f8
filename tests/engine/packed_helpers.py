"""Helpers for the tests of reading packed blobs: a region whose replicas hold one blob in packs.

The blob is published into one replica, then laid out afresh by :func:`lay_out`: every stored
chunk of its manifest is put into packs of a small target size (or, for the digests asked
for, into an object of its own), whatever layout the publish chose, so the tests control how
many packs there are and what they hold. The other replicas are byte-for-byte copies of the
first, as a replication would leave them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import anyio

from blobrep.core.keys import chunk_key, manifest_key, pack_key
from blobrep.core.manifest import ChunkRef, Manifest, build_manifest, encode_manifest, parse_manifest
from blobrep.core.packs import PackBuilder, PackRef
from blobrep.engine.publish import publish
from blobrep.engine.version_read import VersionReader
from blobrep.storage import FaultyStore, LocalStore, Store
from blobrep.storage.base import Payload
from tests.engine.helpers import GALLERY, SMALL_CHUNKS
from tests.engine.read_helpers import BLOB

#: Packs of about this many bytes: an 8 MiB test image gives a dozen or so, of several chunks each.
PACK_TARGET: Final = 256 * 1024


async def lay_out(store: Store, *, target: int = PACK_TARGET, alone_every: int | None = None) -> Manifest:
    """Store the test blob's chunks in packs of about ``target`` bytes in ``store``, except
    every ``alone_every``-th distinct chunk (the first included), each kept in an object of
    its own; rewrite its manifest; drop what it no longer names. The new manifest is returned."""
    key = manifest_key(GALLERY, BLOB)
    manifest = parse_manifest(await store.get(key))
    old = set(manifest.objects(GALLERY))
    chunks = manifest.stored_digests()
    frames: dict[str, bytes] = {}
    for digest, chunk in chunks.items():
        where, offset = chunk.location(GALLERY)
        frames[digest] = await store.get(where, offset, chunk.stored_length)
    builder = PackBuilder(target=target)
    places: dict[str, tuple[PackRef, int]] = {}
    packs: list[PackRef] = []

    async def close() -> None:
        closed = builder.close()
        if closed is not None:
            await store.put(pack_key(GALLERY, closed.ref.digest), closed.parts)
            packs.append(closed.ref)
            places.update((digest, (closed.ref, offset)) for digest, offset in closed.offsets.items())

    alone = set(list(frames)[::alone_every]) if alone_every else set()
    for digest, frame in frames.items():
        if digest in alone:
            await store.put(chunk_key(GALLERY, digest), frame)
        elif builder.add(digest, chunks[digest].length, frame):
            await close()
    await close()
    laid = build_manifest(
        size=manifest.size,
        digest=manifest.digest,
        chunking=manifest.chunking,
        level=manifest.level,
        chunks=[_placed(chunk, places) for chunk in manifest.chunks],
        packs=packs,
    )
    await store.put(key, encode_manifest(laid))
    for stale in old - set(laid.objects(GALLERY)):
        await store.delete(stale)
    await store.sync()
    return laid


def _placed(chunk: ChunkRef, places: dict[str, tuple[PackRef, int]]) -> ChunkRef:
    if chunk.digest is None:
        return chunk
    if chunk.digest not in places:
        return ChunkRef(chunk.digest, chunk.length, chunk.stored_length)
    pack, offset = places[chunk.digest]
    return ChunkRef(chunk.digest, chunk.length, chunk.stored_length, pack, offset)


@dataclass(frozen=True)
class PackedRegion:
    """Replicas holding the test blob laid out by :func:`lay_out`, identical in each."""

    stores: list[LocalStore]
    manifest: Manifest
    image: Path
    packs: dict[str, bytes]
    """Each pack's bytes as laid out, by digest, kept before any test damages a replica."""

    def pack_path(self, replica: int, pack: PackRef) -> Path:
        return self.stores[replica].root / pack_key(GALLERY, pack.digest)

    def chunk_path(self, replica: int, digest: str) -> Path:
        return self.stores[replica].root / chunk_key(GALLERY, digest)

    def members(self, pack: PackRef) -> list[ChunkRef]:
        """The distinct chunks stored in ``pack``, in manifest order."""
        return [chunk for chunk in self.manifest.stored_digests().values() if chunk.pack == pack]

    def frame(self, chunk: ChunkRef) -> bytes:
        """The stored frame of a packed ``chunk``, as laid out."""
        assert chunk.pack is not None
        return self.packs[chunk.pack.digest][chunk.offset : chunk.offset + chunk.stored_length]


async def packed_region(
    image: Path, root: Path, count: int = 3, *, alone_every: int | None = None
) -> PackedRegion:
    """``count`` replicas under ``root``, each holding ``image`` as the test blob in packs
    (every ``alone_every``-th chunk alone, see :func:`lay_out`)."""
    first = LocalStore(root / "replica-1", name="westus/replica-1", create=True)
    await publish(image, [first], GALLERY, BLOB, chunking=SMALL_CHUNKS)
    manifest = await lay_out(first, alone_every=alone_every)
    stores = [first]
    for n in range(2, count + 1):
        shutil.copytree(first.root, root / f"replica-{n}", symlinks=True)
        stores.append(LocalStore(root / f"replica-{n}", name=f"westus/replica-{n}"))
    packs = {
        pack.digest: (first.root / pack_key(GALLERY, pack.digest)).read_bytes() for pack in manifest.packs
    }
    return PackedRegion(stores, manifest, image, packs)


def flip_at(path: Path, offset: int) -> None:
    """Invert the byte at ``offset`` of ``path`` in place."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


def link_outside(path: Path, outside: Path, content: bytes) -> None:
    """Replace ``path`` by a symbolic link to a new file ``outside`` holding ``content``."""
    outside.parent.mkdir(parents=True, exist_ok=True)
    outside.write_bytes(content)
    path.unlink()
    path.symlink_to(outside)


def regular_bytes(path: Path) -> bytes:
    """The bytes of ``path``, which must be a regular file (not a link)."""
    assert not path.is_symlink() and path.is_file(), f"{path} is not a regular file"
    return path.read_bytes()


class PutGauge(FaultyStore):
    """Counts writes of packs in progress at once (each takes ``delay`` seconds) and in all."""

    def __init__(self, inner: Store, delay: float = 0.01) -> None:
        super().__init__(inner)
        self.delay = delay
        self.now = self.peak = self.packs = 0

    async def put(self, key: str, data: Payload, *, if_absent: bool = False) -> None:
        if "/packs/" not in key:
            return await super().put(key, data, if_absent=if_absent)
        self.now += 1
        self.packs += 1
        self.peak = max(self.peak, self.now)
        try:
            await anyio.sleep(self.delay)
            await super().put(key, data, if_absent=if_absent)
        finally:
            self.now -= 1


# --- what the tests pick and plant ---------------------------------------------------


def busiest(region: PackedRegion) -> PackRef:
    """The pack holding the most chunks (at least four)."""
    pack = max(region.manifest.packs, key=lambda pack: len(region.members(pack)))
    assert len(region.members(pack)) >= 4
    return pack


def middle(chunk: ChunkRef) -> int:
    """The offset of the middle byte of ``chunk``'s frame in its pack."""
    return chunk.offset + chunk.stored_length // 2


def stored(chunks: tuple[ChunkRef, ...]) -> int:
    """Stored bytes of reading each of ``chunks`` once (zero chunks read nothing)."""
    return sum(chunk.stored_length for chunk in chunks if not chunk.is_zero)


async def read_all(reader: VersionReader) -> bytes:
    """The whole blob, read chunk by chunk in order through ``reader``."""
    return b"".join([await reader.read_chunk(chunk) for chunk in reader.manifest.chunks])


def start_of(region: PackedRegion, chunk: ChunkRef) -> int:
    """Where ``chunk`` starts in the blob."""
    return next(offset for offset, entry in region.manifest.with_offsets() if entry == chunk)


@dataclass(frozen=True)
class Damage:
    """One way replica-1's copy of a pack can be bad; ``plant`` returns a file outside the
    replica that a planted link leads to, if any."""

    name: str
    plant: Callable[[Path, PackedRegion, PackRef, Path], Path | None]

    def __str__(self) -> str:
        return self.name


def _flip_one_frame(path: Path, region: PackedRegion, pack: PackRef, _: Path) -> None:
    flip_at(path, middle(region.members(pack)[0]))


def _truncate(path: Path, region: PackedRegion, pack: PackRef, _: Path) -> None:
    path.write_bytes(path.read_bytes()[: pack.size // 2])


def _fifo(path: Path, region: PackedRegion, pack: PackRef, _: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _directory(path: Path, region: PackedRegion, pack: PackRef, _: Path) -> None:
    path.unlink()
    path.mkdir()


def _link(same: bool) -> Callable[[Path, PackedRegion, PackRef, Path], Path]:
    def plant(path: Path, region: PackedRegion, pack: PackRef, outside: Path) -> Path:
        other = next(digest for digest in region.packs if digest != pack.digest)
        link_outside(path, outside / "pack", region.packs[pack.digest if same else other])
        return outside / "pack"

    return plant


DAMAGES = (
    Damage("bit-flip-in-one-frame", _flip_one_frame),
    Damage("truncated", _truncate),
    Damage("missing", lambda path, *_: path.unlink()),
    Damage("fifo", _fifo),
    Damage("directory", _directory),
    Damage("link-outside-right-bytes", _link(same=True)),
    Damage("link-outside-other-bytes", _link(same=False)),
)
