"""Bad input is refused before anything is written."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from blobrep.errors import (
    InvalidInputError,
    InvalidNameError,
    InvalidParameterError,
    InvalidVersionError,
    SourceError,
    StorageError,
)
from blobrep.service import BlobService, ChunkingSpec, LocalStore
from tests.engine.helpers import GALLERY, NAME, SMALL_CHUNKS, write_bytes


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        pytest.param("missing.raw", "does not exist", id="missing"),
        pytest.param(".", "directory", id="directory"),
        pytest.param("/dev/null", "not a regular file", id="device"),
    ],
)
async def test_a_source_that_is_not_an_image_file_is_refused(
    service: BlobService, store: LocalStore, tmp_path: Path, source: str, fragment: str
) -> None:
    path = tmp_path / source

    with pytest.raises(SourceError) as caught:
        await service.publish(path, [store], GALLERY, NAME)

    assert fragment in str(caught.value)
    assert not store.root.exists()


@pytest.mark.parametrize(
    ("gallery", "name", "error"),
    [
        pytest.param("../escape", NAME, InvalidNameError, id="gallery-with-dots"),
        pytest.param("bad/gallery", NAME, InvalidNameError, id="gallery-with-slash"),
        pytest.param(GALLERY, "img/versions/1.0", InvalidVersionError, id="short-version"),
        pytest.param(GALLERY, "img/versions/01.0.0", InvalidVersionError, id="leading-zero"),
        pytest.param(GALLERY, "../versions/1.0.0", InvalidNameError, id="image-is-dotdot"),
        pytest.param(GALLERY, "img/versions/1.0.0/..", InvalidNameError, id="trailing-dotdot"),
        pytest.param(GALLERY, "img/1.0.0", InvalidNameError, id="no-versions-segment"),
    ],
)
async def test_bad_names_are_refused_before_anything_is_written(
    service: BlobService,
    store: LocalStore,
    tmp_path: Path,
    out_dir: Path,
    gallery: str,
    name: str,
    error: type[InvalidInputError],
) -> None:
    source = write_bytes(tmp_path / "small.raw", os.urandom(4096))

    with pytest.raises(error):
        await service.publish(source, [store], gallery, name)
    with pytest.raises(error):
        await service.restore(store, gallery, name, out_dir / "restored.raw")
    with pytest.raises(error):
        await service.verify(store, gallery, name)

    assert not store.root.exists()
    assert os.listdir(out_dir) == []


@pytest.mark.parametrize("level", [0, 20, -1])
async def test_a_bad_level_is_refused(
    service: BlobService, store: LocalStore, tmp_path: Path, level: int
) -> None:
    source = write_bytes(tmp_path / "small.raw", os.urandom(4096))

    with pytest.raises(InvalidParameterError, match="level"):
        await service.publish(source, [store], GALLERY, NAME, level=level)

    assert not store.root.exists()


@pytest.mark.parametrize("size", [0, 10, 64 * 1024 * 1024])
def test_bad_chunk_sizes_are_refused(size: int) -> None:
    with pytest.raises(InvalidParameterError):
        ChunkingSpec.fastcdc(size)
    with pytest.raises(InvalidParameterError):
        ChunkingSpec.fixed(size)


async def test_restore_into_a_missing_directory_or_onto_a_directory_is_refused(
    service: BlobService, store: LocalStore, tmp_path: Path, out_dir: Path
) -> None:
    source = write_bytes(tmp_path / "small.raw", os.urandom(4096))
    await service.publish(source, [store], GALLERY, NAME, chunking=SMALL_CHUNKS)

    with pytest.raises(InvalidInputError, match="does not exist"):
        await service.restore(store, GALLERY, NAME, tmp_path / "no-such-dir" / "restored.raw")
    with pytest.raises(InvalidInputError, match="directory"):
        await service.restore(store, GALLERY, NAME, out_dir)

    assert not (tmp_path / "no-such-dir").exists()
    assert os.listdir(out_dir) == []


async def test_publish_needs_a_store(service: BlobService, tmp_path: Path) -> None:
    source = write_bytes(tmp_path / "small.raw", os.urandom(4096))

    with pytest.raises(InvalidParameterError):
        await service.publish(source, [], GALLERY, NAME)


async def test_a_source_that_fails_to_read_is_a_storage_error_naming_it(
    service: BlobService, store: LocalStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A disk error under the source (EIO) is said in words, not raised as an ``OSError``."""
    path = write_bytes(tmp_path / "image.raw", os.urandom(256 * 1024))

    def failing(fd: int, buffers: list[memoryview], offset: int) -> int:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "preadv", failing)
    with pytest.raises(StorageError) as caught:
        await service.publish(path, [store], GALLERY, NAME)

    assert str(caught.value) == f"cannot read {path}: an I/O error (the device failed)"
