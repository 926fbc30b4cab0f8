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

:class:`PackBuilder` is the pure part of writing packs: where each frame goes, and when a
pack is full.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from blobrep.core.codec import digest_of

MIB: Final = 1024 * 1024
#: A pack is closed once it holds at least this many bytes.
DEFAULT_PACK_SIZE: Final = 8 * MIB
#: The largest pack a manifest may name (the target plus one frame of the largest chunk fit
#: with room to spare); it bounds what a reader or a repair holds in memory for one pack.
MAX_PACK_SIZE: Final = 64 * MIB


@dataclass(frozen=True, slots=True)
class PackRef:
    """A pack as a manifest names it: the digest of its bytes and their number."""

    digest: str
    size: int


@dataclass(slots=True)
class ClosedPack:
    """A full pack: its bytes, its name, and where each of its chunks' frames starts."""

    ref: PackRef
    data: bytearray
    offsets: dict[str, int]


@dataclass(slots=True)
class PackBuilder:
    """Gathers frames into packs of about ``target`` bytes, in the order they are added.

    ``add`` returns the pack it closed, if the frame filled one; ``close`` the last, partial
    pack. A frame is never split; the pack it fills ends after it.
    """

    target: int = DEFAULT_PACK_SIZE
    _data: bytearray = field(default_factory=bytearray)
    _offsets: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 1 <= self.target <= MAX_PACK_SIZE // 2:
            raise ValueError(f"pack target {self.target} is outside 1..{MAX_PACK_SIZE // 2}")

    def add(self, digest: str, frame: bytes | bytearray | memoryview) -> ClosedPack | None:
        """Append ``frame``, the stored form of chunk ``digest``; a chunk already in this
        pack is not added twice."""
        if digest in self._offsets:
            return None
        self._offsets[digest] = len(self._data)
        self._data += frame
        return self.close() if len(self._data) >= self.target else None

    @property
    def pending(self) -> int:
        """Bytes in the pack being filled."""
        return len(self._data)

    def close(self) -> ClosedPack | None:
        """The pack being filled, or None if it is empty; the builder starts a new one."""
        if not self._data:
            return None
        data, offsets = self._data, self._offsets
        self._data, self._offsets = bytearray(), {}
        return ClosedPack(PackRef(digest_of(data), len(data)), data, offsets)
