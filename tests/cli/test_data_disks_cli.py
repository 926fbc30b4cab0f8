"""``--data-disk LUN=PATH`` end to end: a version with data disks is created, shown, replicated
and deployed whole by ``vm create`` and ``vmss create``; wrong input is one line, exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from blobrep.service import SyntheticImage
from tests.cli.helpers import assert_one_line_error, blobrep

DEFINITION = ("-r", "gal", "-i", "disk")
VERSION_ID = "/galleries/gal/images/disk/versions/1.0.0"


def ok(cwd: Path, *args: str | Path) -> str:
    result = blobrep(*args, cwd=cwd, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("data") / "data.raw"
    with open(path, "wb") as out:  # each block is written before the next reuses its buffer
        for block in SyntheticImage(1024 * 1024, seed=5).blocks():
            out.write(block)
    return path


def setup(cwd: Path) -> None:
    ok(cwd, "sig", "create", "-r", "gal", "-l", "westcentralus")
    identity = ("--publisher", "p", "--offer", "o", "--sku", "s", "--os-type", "Linux")
    ok(cwd, "sig", "image-definition", "create", *DEFINITION, *identity)


def create(cwd: Path, image: Path, *disks: str | Path) -> object:
    return blobrep(
        *("sig", "image-version", "create", *DEFINITION, "-e", "1.0.0", "--source", image),
        *("--target-regions", "westcentralus", "eastus2=2", *disks),
        cwd=cwd,
        timeout=120,
    )


def test_a_version_with_data_disks_is_created_and_deployed_whole(
    tmp_path: Path, image: Path, data: Path
) -> None:
    setup(tmp_path)
    created = create(tmp_path, image, "--data-disk", f"1={image}", "--data-disk", f"0={data}")
    assert created.returncode == 0, created.stderr  # type: ignore[attr-defined]
    document = json.loads(created.stdout)  # type: ignore[attr-defined]
    profile = document["storageProfile"]
    assert profile["osDiskImage"]["sizeInBytes"] == profile["sizeInBytes"] == image.stat().st_size
    assert [(disk["lun"], disk["sizeInBytes"]) for disk in profile["dataDiskImages"]] == [
        (0, data.stat().st_size),
        (1, image.stat().st_size),
    ]
    assert {s["region"]: s["state"] for s in document["replicationStatus"]["summary"]} == {
        "westcentralus": "Completed",
        "eastus2": "Completed",
    }

    out = tmp_path / "vms"
    result = json.loads(
        ok(
            tmp_path,
            "vm",
            "create",
            "--image",
            VERSION_ID,
            "-l",
            "eastus2",
            "-n",
            "web1",
            "--output-dir",
            out,
        )
    )
    assert sorted(path.name for path in (out / "web1").iterdir()) == ["lun0.img", "lun1.img", "osdisk.img"]
    assert (out / "web1" / "osdisk.img").read_bytes() == image.read_bytes()
    assert (out / "web1" / "lun0.img").read_bytes() == data.read_bytes()
    assert (out / "web1" / "lun1.img").read_bytes() == image.read_bytes()
    assert [(disk["lun"], Path(disk["output"]).name) for disk in result["dataDisks"]] == [
        (0, "lun0.img"),
        (1, "lun1.img"),
    ]

    scale = json.loads(
        ok(
            tmp_path,
            "vmss",
            "create",
            "--image",
            VERSION_ID,
            "-l",
            "eastus2",
            "--instance-count",
            "3",
            "-n",
            "web",
            "--output-dir",
            tmp_path / "set",
        )
    )
    assert (scale["succeeded"], scale["errors"]) == (3, 0)
    assert [[Path(p).name for p in i["dataDisks"]] for i in scale["instances"]] == [
        ["lun0.img", "lun1.img"]
    ] * 3
    for index in range(3):
        assert (tmp_path / "set" / f"web_{index}" / "lun0.img").read_bytes() == data.read_bytes()

    refused = blobrep("vm", "create", "--image", VERSION_ID, "--output", tmp_path / "one.img", cwd=tmp_path)
    assert_one_line_error(refused, 2, "has data disks (LUN 0, 1)", "use --output-dir")
    assert not (tmp_path / "one.img").exists()


def test_a_vm_deployed_again_from_another_version_keeps_no_data_disk_of_the_older_one(
    tmp_path: Path, image: Path, data: Path
) -> None:
    setup(tmp_path)
    assert create(tmp_path, image, "--data-disk", f"0={data}", "--data-disk", f"5={image}").returncode == 0  # type: ignore[attr-defined]
    ok(tmp_path, "sig", "image-version", "create", *DEFINITION, "-e", "2.0.0", "--source", data)
    ok(
        tmp_path,
        "sig",
        "image-version",
        "create",
        *DEFINITION,
        "-e",
        "3.0.0",
        "--source",
        data,
        "--data-disk",
        f"5={data}",
    )
    out = tmp_path / "vms"
    out.mkdir()
    beside = out / "lun5.img"  # a user's own file beside a VM directory: never touched
    beside.write_bytes(b"mine")
    image_of = "/galleries/gal/images/disk/versions/{}".format

    first = ok(
        tmp_path,
        "--query",
        "dataDisks[].lun",
        "-o",
        "tsv",
        "vm",
        "create",
        "--image",
        image_of("1.0.0"),
        "-n",
        "web",
        "--output-dir",
        out,
    )
    assert first.split() == ["0", "5"]
    assert sorted(path.name for path in (out / "web").iterdir()) == ["lun0.img", "lun5.img", "osdisk.img"]
    (out / "web" / "lun7.img").write_bytes(b"a data disk of some older deployment")
    (out / "web" / "notes.txt").write_bytes(b"not a disk")

    ok(tmp_path, "vm", "create", "--image", image_of("3.0.0"), "-n", "web", "--output-dir", out)
    assert sorted(path.name for path in (out / "web").iterdir()) == ["lun5.img", "notes.txt", "osdisk.img"]
    assert (out / "web" / "lun5.img").read_bytes() == data.read_bytes(), "3.0.0's data disk"
    ok(tmp_path, "vm", "create", "--image", image_of("2.0.0"), "-n", "web", "--output-dir", out)
    assert sorted(path.name for path in (out / "web").iterdir()) == ["notes.txt", "osdisk.img"]
    assert (out / "web" / "osdisk.img").read_bytes() == data.read_bytes()

    scale_set = ("vmss", "create", "--instance-count", "2", "-n", "set", "--output-dir", out, "--image")
    ok(tmp_path, *scale_set, image_of("1.0.0"))
    ok(tmp_path, *scale_set, image_of("2.0.0"))
    for index in range(2):
        assert sorted(path.name for path in (out / f"set_{index}").iterdir()) == ["osdisk.img"]
    ok(tmp_path, "vm", "create", "--image", image_of("2.0.0"), "--output", out / "disk.img")
    assert beside.read_bytes() == b"mine"


def test_data_disks_without_an_os_disk_or_with_an_empty_end_of_life_are_refused(
    tmp_path: Path, image: Path, data: Path
) -> None:
    setup(tmp_path)
    version = ("sig", "image-version", "create", *DEFINITION, "-e", "1.0.0")
    alone = blobrep(*version, "--data-disk", f"0={data}", cwd=tmp_path)
    assert_one_line_error(alone, 2, "--data-disk goes with --source", "give the OS disk with --source FILE")
    empty = blobrep(*version, "--source", image, "--end-of-life-date", "", cwd=tmp_path)
    assert_one_line_error(empty, 2, "invalid end-of-life date ''")
    assert json.loads(ok(tmp_path, "sig", "image-version", "list", *DEFINITION)) == []


@pytest.mark.parametrize(
    ("given", "fragment"),
    [
        (("--data-disk", "64=DATA"), "with a LUN from 0 to 63"),
        (("--data-disk=-1=DATA",), "with a LUN from 0 to 63"),
        (("--data-disk", "DATA"), "is not LUN=PATH"),
        (("--data-disk", "0=DATA", "--data-disk", "0=DATA"), "data disk LUN 0 is given twice"),
        (("--data-disk", "0=missing.img"), "data disk 'missing.img' is missing"),
    ],
)
def test_wrong_data_disks_are_one_line_exit_2_and_record_nothing(
    tmp_path: Path, image: Path, data: Path, given: tuple[str, ...], fragment: str
) -> None:
    setup(tmp_path)
    args = [arg.replace("DATA", str(data)) for arg in given]
    assert_one_line_error(create(tmp_path, image, *args), 2, fragment)  # type: ignore[arg-type]
    assert json.loads(ok(tmp_path, "sig", "image-version", "list", *DEFINITION)) == []
