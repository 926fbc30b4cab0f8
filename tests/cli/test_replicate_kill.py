"""Replication killed with SIGKILL at any point resumes to verified replicas, copying only the rest.

The version is published through the service, so it is stored in packs of 4 MiB: its 48 MiB
of random data make twelve, sixty pack writes over the five target replicas.
"""

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

from blobrep.service import BlobService, LocalStore
from tests.cli.helpers import blobrep

MIB = 1024 * 1024
SIZE = 96 * MIB
TARGETS = ("westcentralus", "eastus2=2", "westeurope=2", "southeastasia")
REPLICAS = (("eastus2", 1), ("eastus2", 2), ("westeurope", 1), ("westeurope", 2), ("southeastasia", 1))
NAME = "disk/versions/1.0.0"


def _objects(root: Path) -> dict[Path, tuple[int, int]]:
    """Every finished file of chunk data under ``root`` (packs, and chunks stored alone):
    path -> (inode, mtime)."""
    found = {}
    for kind in ("packs", "chunks"):
        for directory, _, names in os.walk(root / "galleries" / "gal" / kind):
            for name in names:
                if "~" not in name:
                    stat = (Path(directory) / name).stat()
                    found[Path(directory) / name] = (stat.st_ino, stat.st_mtime_ns)
    return found


def _replica(home: Path, region: str, number: int) -> Path:
    return home / "regions" / region / f"replica-{number}"


def _manifest(root: Path) -> Path:
    return root / "galleries" / "gal" / "images" / "disk" / "versions" / "1.0.0" / "manifest.json"


async def _verified(root: Path) -> bool:
    report = await BlobService().verify(LocalStore(root), "gal", NAME)
    return report.ok


@pytest.mark.slow
@pytest.mark.parametrize("after_packs", [1, 15, 50])
def test_replication_killed_after_some_packs_resumes_to_verified_replicas(
    tmp_path: Path, after_packs: int
) -> None:
    home = tmp_path / "home"
    source = tmp_path / "disk.raw"
    with open(source, "wb") as out:
        for _ in range(SIZE // MIB):
            out.write(os.urandom(MIB // 2) + bytes(MIB // 2))
    for args in (
        ("sig", "create", "-r", "gal", "-l", "westcentralus"),
        ("sig", "image-definition", "create", "-r", "gal", "-i", "disk", "--publisher", "p", "--offer", "o",
         "--sku", "s", "--os-type", "Linux"),
        ("sig", "image-version", "create", "-r", "gal", "-i", "disk", "-e", "1.0.0", "--source", source,
         "--target-regions", *TARGETS, "--no-wait"),
    ):  # fmt: skip
        assert blobrep("--home", home, *args, cwd=tmp_path).returncode == 0
    origin = _replica(home, "westcentralus", 1)
    published = {path.relative_to(origin) for path in _objects(origin)}
    assert len(published) == 12 and all(path.parts[2] == "packs" for path in published)

    process = subprocess.Popen(
        [sys.executable, "-m", "blobrep", "--home", str(home), "replicate", "-r", "gal"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    copied = 0
    while process.poll() is None and time.monotonic() < deadline:
        copied = sum(len(_objects(_replica(home, region, number))) for region, number in REPLICAS)
        if copied >= after_packs:
            break
        time.sleep(0.002)
    killed = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert killed, f"replication finished before {after_packs} packs were copied; kill earlier"

    # No manifest is ever visible before its packs: every replica with one verifies now.
    before = {}
    for region, number in REPLICAS:
        root = _replica(home, region, number)
        before[root] = _objects(root)
        if _manifest(root).exists():
            assert anyio.run(_verified, root)

    resumed = blobrep("--home", home, "-o", "json", "replicate", "-r", "gal", cwd=tmp_path, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    (version,) = json.loads(resumed.stdout)
    assert version["replicationStatus"]["aggregatedState"] == "Completed"
    for root, packs in before.items():
        assert anyio.run(_verified, root)
        after = _objects(root)
        assert {path.relative_to(root) for path in after} == published
        # What was already there stayed (same file, not copied again).
        assert {path: after[path] for path in packs} == packs
