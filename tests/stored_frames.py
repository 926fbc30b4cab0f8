"""Where a replica directory keeps each chunk of a version, and damage aimed at one chunk, for
the tests of the service, the command and the daemon (whose publishes store chunks in packs).

A chunk's frame lies in a pack (at its offset) or in an object of its own (the whole file);
:func:`frames` says which for every stored chunk a manifest names, so a test damages exactly
the bytes of the chunks it picks, whatever the layout.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from blobrep.core.manifest import parse_manifest


@dataclass(frozen=True, slots=True)
class Frame:
    """Where a stored chunk's frame is: ``length`` bytes at ``offset`` in the object ``key``
    (file ``path`` of the replica)."""

    digest: str
    key: str
    path: Path
    offset: int
    length: int

    @property
    def packed(self) -> bool:
        return "/packs/" in self.key

    def flip(self, at: int | None = None) -> None:
        """Invert one byte of the frame in place: its ``at``-th (negative from its end), or
        its middle one."""
        position = self.length // 2 if at is None else at % self.length
        data = bytearray(self.path.read_bytes())
        data[self.offset + position] ^= 0xFF
        self.path.write_bytes(bytes(data))


def frames(root: Path, gallery: str, manifest: Path) -> dict[str, Frame]:
    """Every distinct stored chunk the manifest file ``manifest`` names, by digest, in order of
    first use, with where replica ``root`` keeps its frame."""
    parsed = parse_manifest(manifest.read_bytes())
    found: dict[str, Frame] = {}
    for digest, chunk in parsed.stored_digests().items():
        key, offset = chunk.location(gallery)
        found[digest] = Frame(digest, key, root / key, offset, chunk.stored_length)
    return found


def stored_objects(root: Path, gallery: str) -> list[Path]:
    """The gallery's packs and chunk objects in replica ``root`` (no temporaries), sorted."""
    found: list[Path] = []
    for kind in ("chunks", "packs"):
        for directory, _, names in os.walk(root / "galleries" / gallery / kind):
            found.extend(Path(directory) / name for name in names if "~" not in name)
    return sorted(found)


def key_of(root: Path, path: Path) -> str:
    """The storage key of file ``path`` of replica ``root``."""
    return path.relative_to(root).as_posix()
