from __future__ import annotations

from pathlib import Path

import pytest

from blobrep.service import SyntheticImage


@pytest.fixture(scope="session")
def image(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4 MiB VM-like image with zero runs, text and random data (shared: do not change it)."""
    path = tmp_path_factory.mktemp("images") / "image.raw"
    with open(path, "wb") as out:
        for block in SyntheticImage(4 * 1024 * 1024, seed=4).blocks():
            out.write(block)
    data = path.read_bytes()
    zero_blocks = sum(1 for start in range(0, len(data), 65536) if not any(data[start : start + 65536]))
    assert 8 <= zero_blocks <= 56, "the image should mix zero runs and data"
    return path
