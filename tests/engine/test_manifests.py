"""A manifest is input: one that is truncated, hostile or inconsistent is refused whole."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import xxhash

from blobrep.errors import BlobDigestMismatchError, ManifestError, ManifestNotFoundError
from blobrep.service import BlobService, LocalStore
from tests.engine.helpers import GALLERY, NAME, SMALL_CHUNKS, manifest_path, tree


def _truncate(document: bytes) -> bytes:
    return document[: len(document) // 2]


def _edit(change: Callable[[dict[str, Any]], None]) -> Callable[[bytes], bytes]:
    def rewrite(document: bytes) -> bytes:
        parsed: dict[str, Any] = json.loads(document)
        change(parsed)
        return json.dumps(parsed).encode()

    return rewrite


def _escaping_digest(manifest: dict[str, Any]) -> None:
    stored = next(entry for entry in manifest["chunks"] if "digest" in entry)
    stored["digest"] = "../../x"


def _size_too_big(manifest: dict[str, Any]) -> None:
    manifest["size"] += 1


def _first_length_off(manifest: dict[str, Any]) -> None:
    manifest["chunks"][0]["length"] -= 1


@pytest.fixture
async def store_with_blob(service: BlobService, store: LocalStore, image_8m: Path) -> LocalStore:
    await service.publish(image_8m, [store], GALLERY, NAME, chunking=SMALL_CHUNKS)
    return store


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(_truncate, id="truncated"),
        pytest.param(_edit(_escaping_digest), id="digest-escapes-the-store"),
        pytest.param(_edit(_size_too_big), id="size-does-not-add-up"),
        pytest.param(_edit(_first_length_off), id="chunk-length-does-not-add-up"),
        pytest.param(lambda document: b"", id="empty"),
        pytest.param(lambda document: b"[]", id="not-an-object"),
    ],
)
async def test_a_bad_manifest_is_refused_and_nothing_is_written(
    service: BlobService,
    store_with_blob: LocalStore,
    tmp_path: Path,
    out_dir: Path,
    damage: Callable[[bytes], bytes],
) -> None:
    path = manifest_path(store_with_blob)
    path.write_bytes(damage(path.read_bytes()))
    before = tree(tmp_path)

    with pytest.raises(ManifestError) as restoring:
        await service.restore(store_with_blob, GALLERY, NAME, out_dir / "restored.raw")
    with pytest.raises(ManifestError) as verifying:
        await service.verify(store_with_blob, GALLERY, NAME)

    for caught in (restoring, verifying):
        assert "manifest" in str(caught.value)
        assert "replica-1" in str(caught.value)
    assert tree(tmp_path) == before
    assert os.listdir(out_dir) == []


async def test_a_missing_manifest_is_reported_as_not_found(
    service: BlobService, store_with_blob: LocalStore, out_dir: Path
) -> None:
    other = "img/versions/2.0.0"

    with pytest.raises(ManifestNotFoundError) as restoring:
        await service.restore(store_with_blob, GALLERY, other, out_dir / "restored.raw")
    with pytest.raises(ManifestNotFoundError) as verifying:
        await service.verify(store_with_blob, GALLERY, other)

    for caught in (restoring, verifying):
        assert other in str(caught.value)
    assert os.listdir(out_dir) == []


async def test_a_wrong_blob_digest_fails_the_restore(
    service: BlobService, store_with_blob: LocalStore, out_dir: Path
) -> None:
    path = manifest_path(store_with_blob)
    document: dict[str, Any] = json.loads(path.read_bytes())
    forged = xxhash.xxh3_128_hexdigest(b"some other blob")
    assert forged != document["digest"]
    document["digest"] = forged
    path.write_bytes(json.dumps(document, separators=(",", ":")).encode() + b"\n")

    with pytest.raises(BlobDigestMismatchError) as caught:
        await service.restore(store_with_blob, GALLERY, NAME, out_dir / "restored.raw")

    assert forged in str(caught.value)
    assert os.listdir(out_dir) == []
