"""A publish killed at any moment leaves a replica that is consistent and can be resumed,
whether it stores new chunks in packs (the default) or each on its own."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
import zstandard

from blobrep.core.codec import decode_chunk, digest_of, new_decompressor
from blobrep.core.keys import chunk_key, chunks_prefix, pack_key, packs_prefix
from blobrep.core.packs import read_table
from blobrep.service import BlobService, LocalStore
from tests.engine.helpers import GALLERY, MIB, NAME, manifest_path, same_file

SIZE = 512 * MIB


def _publish_command(image: Path, store: LocalStore, layout: str) -> list[str]:
    return [
        sys.executable,
        *("-m", "blobrep", "blob", "publish", str(image)),
        *("--store", str(store.root), "--gallery", GALLERY, "--name", NAME),
        *(("--pack-size", "off") if layout == "lone" else ()),
    ]


def _write_random_image(path: Path) -> Path:
    with open(path, "wb") as out:
        for _ in range(SIZE // (8 * MIB)):
            out.write(os.urandom(8 * MIB))
    return path


def _has_a_chunk(store: LocalStore) -> bool:
    """True once a chunk object or a pack is in place (not a temporary)."""
    base = store.root / "galleries" / GALLERY
    return any(
        path.is_file() and "~" not in path.name
        for kind in ("chunks", "packs")
        for path in (base / kind).rglob("*")
    )


def _kill_after(command: list[str], store: LocalStore, when: float | str) -> bool:
    """Start a publish, SIGKILL it after ``when`` seconds (or once a chunk file appears).

    Returns True if the process was killed, False if it had already finished.
    """
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if when == "first-chunk":
            deadline = time.monotonic() + 60
            while process.poll() is None and not _has_a_chunk(store) and time.monotonic() < deadline:
                time.sleep(0.005)
        else:
            assert isinstance(when, float)
            time.sleep(when)
        finished = process.poll() is not None
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=60)
    return not finished


async def _assert_consistent(service: BlobService, store: LocalStore) -> int:
    """Every chunk key holds a whole, valid chunk and every pack key a whole pack of valid
    frames; a manifest, if any, verifies. Returns the number of distinct chunks held."""
    held: set[str] = set()
    decompressor = new_decompressor()
    async for key in store.list(chunks_prefix(GALLERY)):
        digest = key.rsplit("/", 1)[1]
        assert key == chunk_key(GALLERY, digest)
        frame = await store.get(key)
        length = zstandard.frame_content_size(frame)
        decode_chunk(
            frame,
            digest=digest,
            length=length,
            stored_length=len(frame),
            decompressor=decompressor,
            replica=key,
        )
        held.add(digest)
    async for key in store.list(packs_prefix(GALLERY)):
        name = key.rsplit("/", 1)[1]
        assert key == pack_key(GALLERY, name)
        data = await store.get(key)
        assert digest_of(data) == name
        for entry in read_table(data, key):
            decode_chunk(
                data[entry.offset : entry.offset + entry.stored_length],
                digest=entry.digest,
                length=entry.length,
                stored_length=entry.stored_length,
                decompressor=decompressor,
                replica=key,
            )
            held.add(entry.digest)
    if manifest_path(store).exists():
        report = await service.verify(store, GALLERY, NAME)
        assert report.ok, report.problems
    return len(held)


@pytest.mark.slow
@pytest.mark.parametrize("layout", ["packs", "lone"])
def test_a_killed_publish_leaves_a_consistent_replica_that_can_be_resumed(
    tmp_path: Path, out_dir: Path, layout: str
) -> None:
    service = BlobService()
    image = _write_random_image(tmp_path / "image-512m.raw")
    store = LocalStore(tmp_path / "replica-1", name="replica-1")
    command = _publish_command(image, store, layout)

    # The first kill lands while chunks are being written: the blob is far from complete.
    assert _kill_after(command, store, "first-chunk")
    assert not manifest_path(store).exists()
    assert anyio.run(_assert_consistent, service, store) >= 1

    # More kills at different moments, each run resuming where the last one stopped.
    for delay in (0.2, 0.5, 1.0):
        if not _kill_after(command, store, delay):
            assert manifest_path(store).exists()  # it finished before the kill
        # A manifest, if one appeared, only names chunks that are all there and valid.
        anyio.run(_assert_consistent, service, store)

    present = anyio.run(_assert_consistent, service, store)
    resumed = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    # Only the chunks that no earlier run had written were written now.
    assert summary["new_chunks"] == summary["distinct_chunks"] - present
    assert summary["size"] == SIZE

    anyio.run(_assert_consistent, service, store)
    anyio.run(service.restore, store, GALLERY, NAME, out_dir / "restored.raw")
    assert same_file(image, out_dir / "restored.raw")
