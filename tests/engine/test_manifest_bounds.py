"""A manifest is refused by its size before it is read, even without a catalog to pin it."""

from __future__ import annotations

import os
import tracemalloc
from pathlib import Path

import pytest

from blobrep.core.keys import manifest_key
from blobrep.core.manifest import MAX_MANIFEST_BYTES
from blobrep.core.names import BlobName
from blobrep.engine.manifests import read_manifest
from blobrep.errors import ManifestError
from blobrep.storage.local import LocalStore

BLOB = BlobName.parse("img/versions/1.0.0")


async def test_a_huge_sparse_manifest_is_refused_without_reading_it(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    path = tmp_path / manifest_key("gal", BLOB)
    path.parent.mkdir(parents=True)
    path.touch()
    os.truncate(path, 4 << 30)

    tracemalloc.start()
    try:
        with pytest.raises(ManifestError, match="it was not read"):
            await read_manifest(store, "gal", BLOB)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < MAX_MANIFEST_BYTES // 64
