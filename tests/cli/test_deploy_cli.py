"""``vm create``, ``vmss create`` and ``scrub`` end to end."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.helpers import assert_one_line_error, blobrep, pack_files

DEFINITION = ("-r", "gal", "-i", "disk")
LATEST = "/galleries/gal/images/disk/versions/latest"


def ok(cwd: Path, *args: str | Path) -> str:
    result = blobrep(*args, cwd=cwd, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def setup_version(cwd: Path, image: Path, *targets: str) -> None:
    ok(cwd, "sig", "create", "-r", "gal", "-l", "westcentralus")
    identity = ("--publisher", "p", "--offer", "o", "--sku", "s", "--os-type", "Linux")
    ok(cwd, "sig", "image-definition", "create", *DEFINITION, *identity)
    ok(cwd, "sig", "image-version", "create", *DEFINITION, "-e", "1.0.0", "--source", image,
       "--target-regions", *targets)  # fmt: skip


def test_vm_and_scale_set_deployments(tmp_path: Path, image: Path) -> None:
    setup_version(tmp_path, image, "westcentralus", "eastus2=3")
    disk = tmp_path / "vm.img"
    result = json.loads(ok(tmp_path, "vm", "create", "--image", LATEST, "-l", "East US 2", "--output", disk))
    assert result["ok"] is True and disk.read_bytes() == image.read_bytes()

    out = tmp_path / "vms"
    summary = blobrep(
        *("vmss", "create", "--image", "/galleries/gal/images/disk", "-l", "eastus2"),
        *("--instance-count", "12", "--output-dir", out, "--policy", "round-robin"),
        cwd=tmp_path,
        timeout=120,
    )
    assert summary.returncode == 0, summary.stderr
    document = json.loads(summary.stdout)
    assert (document["count"], document["succeeded"], document["errors"]) == (12, 12, 0)
    assert len(document["statistics"]["replicas"]) == 3
    assert "12 of 12 deployments done: p50" in summary.stderr
    # Instance n of the scale set (named vm by default) is vm_n, its disk vm_n/osdisk.img.
    assert sorted(path.name for path in out.iterdir()) == sorted(f"vm_{n}" for n in range(12))
    assert all([disk.name for disk in path.iterdir()] == ["osdisk.img"] for path in out.iterdir())
    assert all((path / "osdisk.img").read_bytes() == image.read_bytes() for path in out.iterdir())


def test_reading_where_it_is_not_completed_or_without_access_fails_clearly(
    tmp_path: Path, image: Path
) -> None:
    setup_version(tmp_path, image, "westcentralus")
    wrong_region = blobrep("vm", "create", "--image", LATEST, "-l", "westeurope", cwd=tmp_path)
    assert_one_line_error(wrong_region, 1, "no version usable in westeurope")
    pinned = blobrep(
        "vm",
        "create",
        "--image",
        "/galleries/gal/images/disk/versions/1.0.0",
        "-l",
        "westeurope",
        cwd=tmp_path,
    )
    assert_one_line_error(pinned, 1, "cannot be read in westeurope", "not one of its target regions")
    ok(tmp_path, "principal", "create", "--name", "eve", "--type", "user")
    denied = blobrep("--as", "eve", "vm", "create", "--image", LATEST, cwd=tmp_path)
    assert_one_line_error(denied, 1, "'eve' may not")
    bad_policy = blobrep("vm", "create", "--image", LATEST, "--policy", "fastest", cwd=tmp_path)
    assert bad_policy.returncode == 2 and "least-loaded" in bad_policy.stderr


def test_scrub_reports_then_repairs(tmp_path: Path, image: Path) -> None:
    setup_version(tmp_path, image, "westcentralus=2")
    replica = tmp_path / ".blobrep" / "regions" / "westcentralus" / "replica-2"
    # The service stores the 4 MiB image in one pack: lose it.
    (victim,) = pack_files(replica, "gal").values()
    victim.unlink()
    found = blobrep("-o", "table", "scrub", "-l", "westcentralus", cwd=tmp_path)
    assert found.returncode == 1 and "1 problem(s) left in westcentralus" in found.stderr
    assert "pack-missing" in found.stdout and victim.name in found.stdout
    repaired = json.loads(ok(tmp_path, "scrub", "-l", "westcentralus", "--repair"))
    assert repaired[0]["repaired"] == 1 and repaired[0]["ok"] is True
    assert victim.is_file()
    assert "no problem" in ok(tmp_path, "-o", "table", "scrub", "-l", "westcentralus")
