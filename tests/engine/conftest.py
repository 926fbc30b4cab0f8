from __future__ import annotations

from pathlib import Path

import pytest

from blobrep.service import BlobService, LocalStore
from tests.engine.helpers import MIB, write_synthetic


@pytest.fixture
def service() -> BlobService:
    return BlobService()


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    """A fresh, not yet created replica directory."""
    return LocalStore(tmp_path / "replica-1", name="replica-1", create=True)


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    """An empty directory to restore into."""
    path = tmp_path / "out"
    path.mkdir()
    return path


def _mixed_image(directory: Path, size: int, seed: int) -> Path:
    """A VM-like image that holds both zero runs and data, as real images do."""
    image = write_synthetic(directory / f"image-{size // MIB}m.raw", size, seed)
    data = image.read_bytes()
    zero_mib = sum(1 for start in range(0, size, MIB) if not any(data[start : start + MIB]))
    assert 0 < zero_mib < size // MIB, f"seed {seed} should give an image mixing zero runs and data"
    return image


@pytest.fixture(scope="session")
def image_8m(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An 8 MiB VM-like image (shared: copy it before changing it)."""
    return _mixed_image(tmp_path_factory.mktemp("images"), 8 * MIB, seed=9)


@pytest.fixture(scope="session")
def image_16m(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 16 MiB VM-like image (shared: copy it before changing it)."""
    return _mixed_image(tmp_path_factory.mktemp("images"), 16 * MIB, seed=16)
