"""Helpers shared by the engine tests: test images, replica inspection, file comparison."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Final

from blobrep.core.keys import chunks_prefix, manifest_key, packs_prefix
from blobrep.core.names import BlobName
from blobrep.core.packs import read_table
from blobrep.service import ChunkingSpec, LocalStore, SyntheticImage

GALLERY: Final = "gallery1"
NAME: Final = "img/versions/1.0.0"
#: Small chunks (16 KiB .. 256 KiB) so that a few MiB give hundreds of chunks.
SMALL_CHUNKS: Final = ChunkingSpec.fastcdc(avg_size=64 * 1024)
MIB: Final = 1024 * 1024


def write_synthetic(path: Path, size: int, seed: int) -> Path:
    """Write a deterministic VM-like image of ``size`` bytes to ``path``."""
    with open(path, "wb") as out:
        for block in SyntheticImage(size, seed).blocks():
            out.write(block)
    return path


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def same_file(a: Path, b: Path) -> bool:
    """True if both files hold exactly the same bytes."""
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as left, open(b, "rb") as right:
        while True:
            x = left.read(4 * MIB)
            y = right.read(4 * MIB)
            if x != y:
                return False
            if not x:
                return True


def manifest_path(store: LocalStore, name: str = NAME, gallery: str = GALLERY) -> Path:
    return store.root / manifest_key(gallery, BlobName.parse(name))


def read_manifest_json(store: LocalStore, name: str = NAME, gallery: str = GALLERY) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(manifest_path(store, name, gallery).read_bytes())
    return document


def _files_named(base: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for directory, _, names in os.walk(base):
        for name in names:
            found[name] = Path(directory) / name
    return found


def chunk_files(store: LocalStore, gallery: str = GALLERY) -> dict[str, Path]:
    """Every file under the gallery's chunks directory, by file name."""
    return _files_named(store.root / chunks_prefix(gallery))


def pack_files(store: LocalStore, gallery: str = GALLERY) -> dict[str, Path]:
    """Every file under the gallery's packs directory, by file name."""
    return _files_named(store.root / packs_prefix(gallery))


def object_files(store: LocalStore, gallery: str = GALLERY) -> dict[str, Path]:
    """Every chunk file and every pack of the gallery, by file name."""
    return chunk_files(store, gallery) | pack_files(store, gallery)


def stored_chunks(store: LocalStore, gallery: str = GALLERY) -> list[str]:
    """The digest of every chunk the replica stores, once per copy: each chunk file, and each
    entry of each pack's table (a chunk stored twice is listed twice)."""
    held = list(chunk_files(store, gallery))
    for path in pack_files(store, gallery).values():
        held.extend(entry.digest for entry in read_table(path.read_bytes(), str(path)))
    return held


def tree(root: Path) -> dict[str, tuple[int, int, int]]:
    """Every file under ``root``: relative path -> (size, mtime_ns, inode)."""
    result: dict[str, tuple[int, int, int]] = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory) / name
            info = path.stat()
            result[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns, info.st_ino)
    return result


def flip_byte(path: Path) -> None:
    """Corrupt a file in place: invert one byte in its middle."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def write_zeros(path: Path, size: int) -> Path:
    """Write ``size`` zero bytes (really written, not a sparse file)."""
    with open(path, "wb") as out:
        for start in range(0, size, MIB):
            out.write(bytes(min(MIB, size - start)))
    return path


def apply_edits(path: Path, edits: list[tuple[int, bytes]]) -> None:
    """Overwrite ``path`` in place at each (offset, bytes)."""
    with open(path, "r+b") as image:
        for offset, data in edits:
            image.seek(offset)
            image.write(data)
