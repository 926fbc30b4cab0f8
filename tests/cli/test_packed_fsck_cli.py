"""``blobrep fsck`` over packs: a short pack is named by key and replica, counted among the pack
copies checked, and put back by --repair."""

from __future__ import annotations

import json
from pathlib import Path

from blobrep.core.keys import pack_key
from blobrep.core.manifest import Manifest, parse_manifest
from tests.cli.helpers import blobrep, home_with_a_version

REGIONS = ("westcentralus", "eastus2")


def _home_with_a_version(tmp_path: Path, image: Path) -> Path:
    home = home_with_a_version(tmp_path, image)
    result = blobrep("--home", home, "replicate", "-r", "gal", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return home


def _manifest(home: Path) -> Manifest:
    """1.0.0's manifest, as the publish wrote it: its chunks in packs."""
    path = home / "regions/westcentralus/replica-1/galleries/gal/images/disk/versions/1.0.0/manifest.json"
    manifest = parse_manifest(path.read_bytes())
    assert manifest.packs
    return manifest


def test_fsck_names_a_short_pack_by_key_and_replica_until_repair_puts_it_back(
    tmp_path: Path, image: Path
) -> None:
    home = _home_with_a_version(tmp_path, image)
    manifest = _manifest(home)
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
