"""A version with data disks, published in the home, as the daemon shows it: ARM's
``osDiskImage`` and ``dataDiskImages``, a PATCH that sends the shown body back, and the parts
not served over HTTP yet refused in words rather than half done."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from blobrep.service import SyntheticImage
from tests.cli.helpers import assert_one_line_error, blobrep
from tests.daemon.conftest import DEFINITION, GALLERY, IMAGE, Daemon, ok

VERSIONS = f"/galleries/{GALLERY}/images/{IMAGE}/versions"


@pytest.fixture(scope="module")
def with_disks(daemon: Daemon) -> Path:
    """Version 2.0.0 of the daemon's home, with a data disk at LUN 2; its data disk's file."""
    data = daemon.cwd / "data2.raw"
    with open(data, "wb") as out:  # each block is written before the next reuses its buffer
        for block in SyntheticImage(2 * 1024 * 1024, seed=5).blocks():
            out.write(block)
    ok(daemon.cwd, "sig", "image-version", "create", *DEFINITION, "-e", "2.0.0",
       "--source", daemon.cwd / "disk.raw", "--data-disk", f"2={data}")  # fmt: skip
    return data


def test_the_disks_are_shown_in_arm_shape(daemon: Daemon, with_disks: Path) -> None:
    shown = daemon.get(f"{VERSIONS}/2.0.0").json()["properties"]["storageProfile"]
    size = (daemon.cwd / "disk.raw").stat().st_size
    assert shown["sizeInBytes"] == shown["osDiskImage"]["sizeInBytes"] == size
    (disk,) = shown["dataDiskImages"]
    assert (disk["lun"], disk["sizeInBytes"]) == (2, with_disks.stat().st_size)
    assert disk["digest"] and disk["storedBytes"] > 0 and disk["chunks"] > 0
    plain = daemon.get(f"{VERSIONS}/1.0.0").json()["properties"]["storageProfile"]
    assert "dataDiskImages" not in plain, "a version without data disks shows none"


def test_a_patch_may_send_the_shown_disks_back(daemon: Daemon, with_disks: Path) -> None:
    shown = daemon.get(f"{VERSIONS}/2.0.0").json()
    answer = httpx.patch(
        f"{daemon.url}{VERSIONS}/2.0.0",
        json={"properties": shown["properties"]},
        headers=daemon.headers(),
        timeout=30,
    )
    assert answer.status_code in (200, 202), answer.text
    again = daemon.get(f"{VERSIONS}/2.0.0").json()["properties"]["storageProfile"]
    assert again["dataDiskImages"] == shown["properties"]["storageProfile"]["dataDiskImages"]


def test_a_remote_deployment_refuses_rather_than_drop_data_disks(
    daemon: Daemon, with_disks: Path, tmp_path: Path
) -> None:
    remote = ("--endpoint", daemon.url, "--token", daemon.tokens["admin"])
    refused = blobrep(
        *remote, "vm", "create", "--image", f"{VERSIONS}/2.0.0", "--output-dir", tmp_path, cwd=tmp_path
    )
    assert_one_line_error(refused, 2, "has data disks", "deploy it in the home itself")
    assert list(tmp_path.iterdir()) == [], "no OS disk alone is written"


def test_a_new_version_naming_data_disks_is_refused_naming_the_field(daemon: Daemon) -> None:
    body = {"properties": {"storageProfile": {"dataDiskImages": [{"lun": 0}]}}}
    answer = httpx.put(f"{daemon.url}{VERSIONS}/9.0.0", json=body, headers=daemon.headers(), timeout=30)
    assert answer.status_code == 400 and "dataDiskImages" in answer.json()["error"]["message"]
    assert daemon.get(f"{VERSIONS}/9.0.0").status_code == 404
