"""Packs: objects holding the zstd frames of many chunks back to back (manifest format 3).

A replica that stores every chunk as its own object pays for each: a local replica creates a
file, and often a directory or two, per chunk; an object store takes a request per chunk.
Publishing the first version of a disk image makes a few hundred chunks, and creating those
files cost more than compressing them. A pack gathers the new chunks of one publish until it
holds :data:`DEFAULT_PACK_SIZE` bytes, so the same publish writes a handful of objects.

A pack is named by the xxh3-128 digest of its bytes, which the manifest records with its
size: a copy read back can be checked whole before it is trusted, copied or used to repair
another replica. Each chunk in it is still checked against its own digest when it is read.
A pack is never rewritten; it lives while any manifest names it.

A pack ends with its own table of contents, so a pack no manifest names yet (a publish was
killed before its commit, or the versions naming it were deleted) can still be reused by the
next publish rather than written again::

    frame 1 | frame 2 | ... | entry 1 | entry 2 | ... | footer
    entry:  chunk digest (16 bytes) | plain length (u32) | stored length (u32)   little-endian
    footer: b"BRPK" | table version (u16, 1) | 0 (u16) | entries (u32) | where entries start (u32)

Frames lie back to back from offset 0 in the order of the entries; the table's own bytes
are covered by the pack's digest. :func:`read_table` refuses any table that does not add up
to the pack's size.

:class:`PackBuilder` is the pure part of writing packs: where each frame goes, and when a
pack is full.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Final

from blobrep.core.codec import max_stored_length, new_blob_hasher
from blobrep.errors import ManifestError

MIB: Final = 1024 * 1024
#: A pack is closed once it holds at least this many bytes.
DEFAULT_PACK_SIZE: Final = 4 * MIB
#: The largest pack a manifest may name (the target plus one frame of the largest chunk fit
#: with room to spare); it bounds what a reader or a repair holds in memory for one pack.
MAX_PACK_SIZE: Final = 64 * MIB
#: The largest plain chunk a table entry may describe (the chunker's largest chunk).
MAX_ENTRY_LENGTH: Final = 16 * MIB

_MAGIC: Final = b"BRPK"
_TABLE_VERSION: Final = 1
_FOOTER: Final = struct.Struct("<4sHHII")
_ENTRY: Final = struct.Struct("<16sII")
#: Bytes of the footer at the end of every pack.
FOOTER_SIZE: Final = _FOOTER.size


@dataclass(frozen=True, slots=True)
class PackRef:
    """A pack as a manifest names it: the digest of its bytes and their number."""

    digest: str
    size: int


@dataclass(frozen=True, slots=True)
class PackEntry:
    """One chunk a pack's table lists: its digest, plain length, and where its frame is."""

    digest: str
    length: int
    offset: int
    stored_length: int


@dataclass(slots=True)
class ClosedPack:
    """A full pack: its bytes as pieces (the frames as given, then the table), its name, and
    where each of its chunks' frames starts.

    The pieces are never joined here: a writer stores them back to back, so closing a pack
    neither copies its megabytes nor makes the large short-lived block that, freed, raises
    the allocator's mmap threshold and leaves every later frame on a fragmenting heap
    (a 4 GiB publish peaked 30 MiB higher with the frames joined).
    """

    ref: PackRef
    parts: tuple[bytes | bytearray | memoryview, ...]
    offsets: dict[str, int]

    def joined(self) -> bytes:
        """The pack's bytes in one buffer (for a reader that wants them whole)."""
        return b"".join(self.parts)


def _table(entries: list[PackEntry], start: int) -> bytes:
    rows = [_ENTRY.pack(bytes.fromhex(entry.digest), entry.length, entry.stored_length) for entry in entries]
    return b"".join(rows) + _FOOTER.pack(_MAGIC, _TABLE_VERSION, 0, len(entries), start)


def read_table(data: bytes | bytearray | memoryview, where: str) -> list[PackEntry]:
    """The chunks the pack ``data`` lists, checked to lie back to back up to the table.

    Raises:
        ManifestError: naming ``where``, if the footer or the table does not add up.
    """
    view = memoryview(data)
    size = len(view)
    if size < FOOTER_SIZE:
        raise ManifestError(f"{where}: {size} bytes is too short for a pack")
    magic, version, _, count, start = _FOOTER.unpack(view[size - FOOTER_SIZE :])
    if magic != _MAGIC or version != _TABLE_VERSION:
        raise ManifestError(f"{where}: no pack table version {_TABLE_VERSION} at its end")
    if count < 1 or start + count * _ENTRY.size + FOOTER_SIZE != size:
        raise ManifestError(f"{where}: its table of {count} entries from byte {start} does not end the pack")
    entries: list[PackEntry] = []
    offset = 0
    for position in range(count):
        raw, length, stored = _ENTRY.unpack_from(view, start + position * _ENTRY.size)
        if not 1 <= length <= MAX_ENTRY_LENGTH or not 1 <= stored <= max_stored_length(length):
            raise ManifestError(f"{where}: entry {position} has lengths {length} and {stored}, out of range")
        entries.append(PackEntry(raw.hex(), length, offset, stored))
        offset += stored
    if offset != start:
        raise ManifestError(f"{where}: its frames end at {offset}, but its table starts at {start}")
    return entries


@dataclass(slots=True)
class PackBuilder:
    """Gathers frames into packs of about ``target`` bytes, in the order they are added.

    ``add`` says when the pack being filled is full; ``close`` then hands it over (and, at
    the end, the last partial pack). A frame is never split; the pack it fills ends after
    it. ``close`` hashes the pack, so a caller on an event loop runs it on a worker thread.
    """

    target: int = DEFAULT_PACK_SIZE
    # The frames are kept as given, never copied into one buffer (see ClosedPack).
    _frames: list[bytes | bytearray | memoryview] = field(default_factory=list)
    _size: int = 0
    _offsets: dict[str, int] = field(default_factory=dict)
    _entries: list[PackEntry] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 1 <= self.target <= MAX_PACK_SIZE // 2:
            raise ValueError(f"pack target {self.target} is outside 1..{MAX_PACK_SIZE // 2}")

    def add(self, digest: str, length: int, frame: bytes | bytearray | memoryview) -> bool:
        """Append ``frame``, the stored form of chunk ``digest`` of ``length`` plain bytes (a
        chunk already in this pack is not added twice); True if the pack is now full and
        should be closed."""
        if digest not in self._offsets:
            self._offsets[digest] = self._size
            self._entries.append(PackEntry(digest, length, self._size, len(frame)))
            self._frames.append(frame)
            self._size += len(frame)
        return self._size >= self.target

    @property
    def pending(self) -> int:
        """Bytes in the pack being filled."""
        return self._size

    def close(self) -> ClosedPack | None:
        """The pack being filled, its table appended, or None if it is empty; the builder
        starts a new one."""
        if not self._frames:
            return None
        frames, size, offsets, entries = self._frames, self._size, self._offsets, self._entries
        self._frames, self._size, self._offsets, self._entries = [], 0, {}, []
        parts = (*frames, _table(entries, size))
        hasher = new_blob_hasher()
        for part in parts:
            hasher.update(part)
        return ClosedPack(PackRef(hasher.hexdigest(), size + len(parts[-1])), parts, offsets)
