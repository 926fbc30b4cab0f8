"""``blobrep fsck`` over packs: a short pack is named by key and replica, counted among the pack
copies checked, and put back by --repair."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from blobrep.core.keys import pack_key
from blobrep.core.manifest import Manifest, encode_manifest
from blobrep.core.pins import ManifestPin
from blobrep.core.version import ImageVersion
from blobrep.service import GalleryService, LocalStore
from tests.cli.helpers import blobrep
from tests.packing import pack_blob

REGIONS = ("westcentralus", "eastus2")


def _home_with_a_version(tmp_path: Path, image: Path) -> Path:
    home = tmp_path / "home"
    for args in (
        ("sig", "create", "-r", "gal", "-l", "westcentralus"),
        ("sig", "image-definition", "create", "-r", "gal", "-i", "disk", "--publisher", "p", "--offer", "o",
         "--sku", "s", "--os-type", "Linux"),
        ("sig", "image-version", "create", "-r", "gal", "-i", "disk", "-e", "1.0.0", "--source", image,
         "--target-regions", *REGIONS),
    ):  # fmt: skip
        result = blobrep("--home", home, *args, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
    result = blobrep("--home", home, "replicate", "-r", "gal", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return home


async def _store_in_packs(home: Path) -> Manifest:
    """Store 1.0.0 in packs in every replica and pin that manifest, as a publish writing packs would."""
    manifests = []
    for region in REGIONS:
        store = LocalStore(home / "regions" / region / "replica-1", name=f"{region}/replica-1")
        manifests.append(await pack_blob(store, "gal", "disk/versions/1.0.0"))
    assert manifests[0] == manifests[1]
    async with await GalleryService.open(home) as service:
        version = await service._catalog.get_version("gal", "disk", ImageVersion.parse("1.0.0"))
        assert version.blob is not None
        pin = ManifestPin.of(encode_manifest(manifests[0]))
        blob = dataclasses.replace(version.blob, manifest=pin)
        await service._catalog.update_version(dataclasses.replace(version, blob=blob))
    return manifests[0]


async def test_fsck_names_a_short_pack_by_key_and_replica_until_repair_puts_it_back(
    tmp_path: Path, image: Path
) -> None:
    home = _home_with_a_version(tmp_path, image)
    manifest = await _store_in_packs(home)
    copies = len(REGIONS) * len(manifest.packs)
    clean = blobrep("--home", home, "-o", "table", "fsck", cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr
    assert f"({copies} pack copies read whole): no problem" in clean.stdout
    key = pack_key("gal", manifest.packs[0].digest)
    damaged = home / "regions/westcentralus/replica-1" / key
    whole = damaged.read_bytes()
    damaged.write_bytes(whole[: len(whole) // 2])

    found = blobrep("--home", home, "-o", "json", "fsck", "-r", "gal", cwd=tmp_path)

    assert found.returncode == 1
    assert found.stderr.splitlines() == [found.stderr.strip()]
    assert found.stderr.startswith("blobrep: error: 1 problem(s) left")
    assert f"({copies} pack copies read whole)" in found.stderr
    document = json.loads(found.stdout)
    assert document["packs_checked"] == copies
    assert [(p["kind"], p["replica"], p["what"]) for p in document["problems"]] == [
        ("pack-size", "westcentralus/replica-1", key)
    ]
    assert "truncated" in document["problems"][0]["detail"]

    repaired = blobrep("--home", home, "fsck", "-r", "gal", "--repair", cwd=tmp_path)

    assert repaired.returncode == 0, repaired.stderr
    assert repaired.stderr.startswith("1 problem(s) repaired")
    assert damaged.read_bytes() == whole
    assert blobrep("--home", home, "fsck", cwd=tmp_path).returncode == 0
