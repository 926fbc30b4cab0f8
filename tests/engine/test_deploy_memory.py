"""Memory of scale sets that write disk files: bounded by one shared pool of buffers, not by N.

A scale set of N deployments writing ``vm-{i}.img`` files must hold no more chunks in memory
than a fixed number, however large N is, just as N deployments that read and discard do.
"""

from __future__ import annotations

import random
import tracemalloc
from pathlib import Path
from typing import Final

import anyio
import pytest

from blobrep.core.chunking import ChunkingSpec
from blobrep.engine.buffers import BufferPool
from blobrep.engine.deploy import deploy, deploy_many
from blobrep.engine.publish import publish
from blobrep.engine.version_read import VersionReader
from blobrep.errors import InvalidParameterError
from blobrep.storage import LocalStore
from tests.engine.helpers import GALLERY, MIB, same_file, write_bytes
from tests.engine.read_helpers import BLOB, region

#: Fixed chunks of random bytes: every chunk is stored, read, decoded and written at full size.
CHUNK: Final = 1 * MIB
IMAGE_SIZE: Final = 8 * MIB


@pytest.fixture
async def incompressible(tmp_path: Path) -> tuple[Path, list[LocalStore]]:
    """An 8 MiB image of random bytes in 1 MiB chunks, published to a region of two replicas."""
    image = write_bytes(tmp_path / "image.raw", random.Random(11).randbytes(IMAGE_SIZE))
    stores = region(tmp_path / "region", 2)
    await publish(image, stores, GALLERY, BLOB, chunking=ChunkingSpec.fixed(CHUNK))
    return image, stores


async def _peak_bytes(stores: list[LocalStore], count: int, out_dir: Path) -> int:
    """The most memory Python held at once while ``count`` deployments wrote their disks."""
    out_dir.mkdir()
    tracing = tracemalloc.is_tracing()
    async with VersionReader(stores, GALLERY, BLOB) as reader:
        if not tracing:
            tracemalloc.start()
        tracemalloc.reset_peak()
        try:
            summary = await deploy_many(reader, count, output_dir=out_dir)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            if not tracing:
                tracemalloc.stop()
    assert (summary.succeeded, summary.errors) == (count, 0)
    return peak


async def test_more_deployments_writing_files_hold_no_more_chunks(
    tmp_path: Path, incompressible: tuple[Path, list[LocalStore]]
) -> None:
    image, stores = incompressible
    few = await _peak_bytes(stores, 8, tmp_path / "few")
    many = await _peak_bytes(stores, 32, tmp_path / "many")

    for index in (0, 31):
        assert same_file(image, tmp_path / "many" / f"vm-{index}.img")
    # Deployments holding chunks of their own (about eight each) would add some 190 MiB here,
    # and even one chunk each 24 MiB. What 24 more may add is their bookkeeping, and the
    # frames being decoded at the peak vary by a few chunks from run to run.
    assert many - few < 8 * CHUNK, f"8 deployments: {few / MIB:.1f} MiB, 32: {many / MIB:.1f} MiB"


@pytest.mark.parametrize("count", [1, 2])
async def test_deployments_sharing_fewer_buffers_than_they_are_all_finish(
    tmp_path: Path, incompressible: tuple[Path, list[LocalStore]], count: int
) -> None:
    image, stores = incompressible
    shared = BufferPool(CHUNK, count)
    async with VersionReader(stores, GALLERY, BLOB) as reader:

        async def one(index: int) -> None:
            await deploy(reader, tmp_path / f"vm-{index}.img", chunks_at_once=3, buffers=shared)

        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                for index in range(5):
                    group.start_soon(one, index)

    for index in range(5):
        assert same_file(image, tmp_path / f"vm-{index}.img")


async def test_buffers_smaller_than_the_largest_chunk_are_refused(
    tmp_path: Path, incompressible: tuple[Path, list[LocalStore]]
) -> None:
    _, stores = incompressible
    async with VersionReader(stores, GALLERY, BLOB) as reader:
        with pytest.raises(InvalidParameterError, match=f"need {CHUNK}"):
            await deploy(reader, tmp_path / "vm.img", buffers=BufferPool(CHUNK // 2, 4))
    assert not (tmp_path / "vm.img").exists()
