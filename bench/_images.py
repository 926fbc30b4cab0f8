"""The deterministic VM-like images the benchmarks run on, generated once and cached.

Images live under ``bench/.work/images/`` (on the repository's filesystem, so copies and
publishes of them stay on one disk) and are reused by every later run with the same size and
seed. A "next version" of an image rewrites 1 % of its bytes in 16 runs at random offsets
(:func:`blobrep.service.rewrite_runs`), optionally with 1 MiB of random bytes inserted mid-way.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from pathlib import Path
from typing import Any, Final

from _harness import MIB, format_size, log

from blobrep.service import SyntheticImage, rewrite_runs

BENCH_DIR: Final = Path(__file__).resolve().parent
WORK_DIR: Final = BENCH_DIR / ".work"
IMAGES_DIR: Final = WORK_DIR / "images"

SEED: Final = 12345
"""The default seed: both benchmarks run on the same image."""

REWRITE_FRACTION: Final = 0.01
REWRITE_RUNS: Final = 16
INSERT_BYTES: Final = 1 * MIB

_COPY_BLOCK: Final = 8 * MIB


def ensure_image(size: int, seed: int) -> Path:
    """The synthetic image of ``size`` and ``seed``, generated once and cached."""
    path = IMAGES_DIR / f"synthetic-{size}-s{seed}.img"
    if path.is_file() and path.stat().st_size == size:
        return path
    IMAGES_DIR.mkdir(parents=True, exist_ok=True)
    log(f"generating {format_size(size)} image (seed {seed}) -> {path}")
    started = time.perf_counter()
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        for block in SyntheticImage(size, seed).blocks():
            handle.write(block)
    os.replace(partial, path)
    log(f"  generated in {time.perf_counter() - started:.1f} s")
    return path


def _rewrites(size: int, seed: int) -> tuple[list[tuple[int, bytes]], dict[str, Any]]:
    """The in-place edits of a next version, and their description for the results."""
    edits = rewrite_runs(size, REWRITE_FRACTION, REWRITE_RUNS, seed + 1)
    description = {
        "rewrite_fraction": REWRITE_FRACTION,
        "rewrite_runs": REWRITE_RUNS,
        "rewritten_bytes": sum(len(data) for _, data in edits),
        "rewrite_seed": seed + 1,
    }
    return edits, description


def _shifted_edits(edits: list[tuple[int, bytes]], insert_at: int) -> list[tuple[int, bytes]]:
    """Edits in version-1 offsets -> offsets in version 2, where ``INSERT_BYTES`` sit at ``insert_at``."""
    shifted: list[tuple[int, bytes]] = []
    for offset, data in edits:
        end = offset + len(data)
        if end <= insert_at:
            shifted.append((offset, data))
        elif offset >= insert_at:
            shifted.append((offset + INSERT_BYTES, data))
        else:  # straddles the insertion point: the part after it moves with the rest
            split = insert_at - offset
            shifted.append((offset, data[:split]))
            shifted.append((insert_at + INSERT_BYTES, data[split:]))
    return shifted


def ensure_version2(v1: Path, size: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """Version 2 of the image: 1 % rewritten in 16 runs, 1 MiB of random bytes inserted mid-way."""
    edits, description = _rewrites(size, seed)
    insert_at = size // 2
    description |= {"inserted_bytes": INSERT_BYTES, "inserted_at": insert_at, "size": size + INSERT_BYTES}
    path = IMAGES_DIR / f"synthetic-{size}-s{seed}-v2.img"
    if path.is_file() and path.stat().st_size == size + INSERT_BYTES:
        return path, description
    log(f"writing version 2 -> {path}")
    partial = path.with_name(path.name + ".partial")
    with open(v1, "rb") as source, open(partial, "wb") as target:
        remaining = insert_at
        while remaining:
            block = source.read(min(remaining, _COPY_BLOCK))
            target.write(block)
            remaining -= len(block)
        target.write(random.Random(seed + 2).randbytes(INSERT_BYTES))
        shutil.copyfileobj(source, target, _COPY_BLOCK)
        for offset, data in _shifted_edits(edits, insert_at):
            target.seek(offset)
            target.write(data)
    os.replace(partial, path)
    return path, description


def ensure_rewritten(v1: Path, size: int, seed: int) -> tuple[Path, dict[str, Any]]:
    """Version 2 without the insertion: the same 1 % rewritten in place, the size unchanged."""
    edits, description = _rewrites(size, seed)
    description |= {"inserted_bytes": 0, "size": size}
    path = IMAGES_DIR / f"synthetic-{size}-s{seed}-v2-inplace.img"
    if path.is_file() and path.stat().st_size == size:
        return path, description
    log(f"writing version 2 (rewritten in place) -> {path}")
    partial = path.with_name(path.name + ".partial")
    with open(v1, "rb") as source, open(partial, "wb") as target:
        shutil.copyfileobj(source, target, _COPY_BLOCK)
        for offset, data in edits:
            target.seek(offset)
            target.write(data)
    os.replace(partial, path)
    return path, description
