"""A reader's consumer that fails (its output disk is full) is the consumer's failure, not the
replica's: the error arrives as itself, at once, and no replica is blamed or tried again."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from blobrep.engine.version_read import VersionReader
from blobrep.errors import StorageFullError
from blobrep.storage import LocalStore
from blobrep.storage.files import file_error
from tests.engine.helpers import GALLERY
from tests.engine.read_helpers import BLOB, publish_region


@pytest.fixture
async def replicas(tmp_path: Path, image_8m: Path) -> list[LocalStore]:
    return await publish_region(image_8m, tmp_path / "region")


async def test_an_error_of_the_consumer_is_raised_as_itself_and_blames_no_replica(
    replicas: list[LocalStore],
) -> None:
    cause = OSError(errno.ENOSPC, "No space left on device")
    full = file_error(cause, Path("/data/vm.img"))
    full.__cause__ = cause  # as ``raise ... from`` leaves it
    assert isinstance(full, StorageFullError)

    def write(plain: memoryview) -> None:
        raise full

    async with VersionReader(replicas, GALLERY, BLOB, seed=1) as reader:
        chunk = next(chunk for chunk in reader.manifest.chunks if not chunk.is_zero)
        with pytest.raises(StorageFullError) as raised:
            await reader.read_chunk(chunk, then=write)

    assert raised.value is full
    assert str(raised.value) == "cannot write /data/vm.img: no space left on the device"
    assert raised.value.__cause__ is cause  # kept for a debug traceback
    stats = reader.statistics()
    assert sum(served.requests for served in stats.replicas.values()) == 1
    assert [served.failures for served in stats.replicas.values()] == [0, 0, 0]
    assert (stats.failovers, stats.repairs) == (0, 0)
