"""Data disks through the daemon (``--endpoint``) as on a home: a version created with
``--data-disk`` prints the same document, and ``vm create -n NAME --output-dir D`` writes the
same disks, byte for byte, either way (:mod:`tests.cli.remote_twins`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from blobrep.service import SyntheticImage
from tests.cli.remote_twins import DEFINITION, GALLERY, Twins, both, comparable, prepare_twins, same


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twins]:
    yield from prepare_twins(tmp_path_factory)


def data_disk(twins: Twins, name: str, size: int, seed: int) -> Path:
    path = twins.image.parent / name
    with open(path, "wb") as out:  # each block is written before the next reuses its buffer
        for block in SyntheticImage(size, seed=seed).blocks():
            out.write(block)
    return path


def without_timings(document: dict[str, Any]) -> dict[str, Any]:
    """A deployment's document without what differs between two runs of it: its time and the
    absolute paths it wrote (each in its own working directory), its data disks' included."""
    document.pop("seconds")
    document.pop("output")
    if "dataDisks" in document:
        document["dataDisks"] = [without_timings(disk) for disk in document["dataDisks"]]
    return document


def test_a_version_with_data_disks_is_created_and_deployed_alike(twins: Twins) -> None:
    lun0 = data_disk(twins, "data0.raw", 3 * 1024 * 1024, seed=60)
    lun3 = data_disk(twins, "data3.raw", 1024 * 1024 + 5, seed=61)
    create = ("sig", "image-version", "create", *DEFINITION, "-e", "6.0.0", "--source", twins.image)
    disks = ("--data-disk", f"3={lun3}", "--data-disk", f"0={lun0}")
    targets = ("--target-regions", "westcentralus", "eastus2")
    there, here = both(twins, *create, *disks, *targets)
    assert (there.returncode, there.stderr) == (here.returncode, here.stderr) == (0, "")
    created, remote = json.loads(here.stdout), json.loads(comparable(there.stdout))
    publish, remote_publish = created.pop("publish"), remote.pop("publish")
    figures = ("newChunks", "writtenBytes")
    assert {key: remote_publish[key] for key in figures} == {key: publish[key] for key in figures}
    assert remote == json.loads(comparable(json.dumps(created)))
    luns = [disk["lun"] for disk in created["storageProfile"]["dataDiskImages"]]
    assert luns == [0, 3] and created["replicationStatus"]["aggregatedState"] == "Completed"
    same(twins, "sig", "image-version", "show", *DEFINITION, "-e", "6.0.0", "--expand", "ReplicationStatus")

    image = ("--image", f"/galleries/{GALLERY}/images/img/versions/6.0.0", "-l", "eastus2")
    there, here = both(twins, "vm", "create", *image, "-n", "web", "--output-dir", "vms")
    assert (there.returncode, there.stderr) == (here.returncode, here.stderr) == (0, "")
    documents = [without_timings(json.loads(result.stdout)) for result in (there, here)]
    assert documents[0] == documents[1]
    assert [disk["lun"] for disk in documents[0]["dataDisks"]] == [0, 3]
    for cwd in (twins.daemon.cwd, twins.local):
        web = cwd / "vms" / "web"
        assert sorted(path.name for path in web.iterdir()) == ["lun0.img", "lun3.img", "osdisk.img"]
        assert (web / "osdisk.img").read_bytes() == twins.image.read_bytes()
        assert (web / "lun0.img").read_bytes() == lun0.read_bytes()
        assert (web / "lun3.img").read_bytes() == lun3.read_bytes()


def test_a_data_disk_that_cannot_be_read_is_refused_alike_before_anything_is_recorded(
    twins: Twins,
) -> None:
    create = ("sig", "image-version", "create", *DEFINITION, "-e", "6.1.0", "--source", twins.image)
    there, here = both(twins, *create, "--data-disk", "1=missing.raw")
    assert (there.returncode, there.stderr) == (here.returncode, here.stderr)
    assert there.returncode == 2 and "missing.raw" in there.stderr
    gone = same(twins, "sig", "image-version", "show", *DEFINITION, "-e", "6.1.0")
    assert gone.returncode == 1, "nothing was recorded either way"
