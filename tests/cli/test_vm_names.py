"""``vm create -n NAME`` and ``vmss create -n NAME``: a directory per VM in ``--output-dir``
holding its disk (``D/web1/osdisk.img``; a scale set's instances ``D/web_0``, ``D/web_1``,
...), names that can never leave that directory, and ``--output FILE`` as it was."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.argv_space import full_parser, run_main
from tests.cli.helpers import assert_one_line_error, blobrep, files_under
from tests.cli.remote_twins import GALLERY, Twins, both, prepare_twins, same_failure

IMAGE = "/galleries/gal/images/disk"


def ok(cwd: Path, *args: str | Path) -> dict[str, object]:
    result = blobrep(*args, cwd=cwd, timeout=120)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, image: Path) -> Path:
    """A home with version 1.0.0 of gal/disk in westcentralus."""
    root = tmp_path_factory.mktemp("vm-names")
    identity = ("--publisher", "p", "--offer", "o", "--sku", "s", "--os-type", "Linux")
    for args in (
        ("sig", "create", "-r", "gal", "-l", "westcentralus"),
        ("sig", "image-definition", "create", "-r", "gal", "-i", "disk", *identity),
        ("sig", "image-version", "create", "-r", "gal", "-i", "disk", "-e", "1.0.0", "--source", image),
    ):
        result = blobrep(*args, cwd=root)
        assert result.returncode == 0, result.stderr
    return root


@pytest.fixture
def work(prepared: Path, tmp_path: Path) -> Path:
    shutil.copytree(prepared / ".blobrep", tmp_path / ".blobrep")
    return tmp_path


def test_a_named_vm_gets_a_directory_holding_its_os_disk(work: Path, image: Path) -> None:
    out = work / "disks"
    document = ok(work, "vm", "create", "--image", IMAGE, "-n", "web1", "--output-dir", out)
    assert document["name"] == "web1"
    assert document["output"] == str(out / "web1" / "osdisk.img")
    assert files_under(out) == {"web1/osdisk.img": image.stat().st_size}
    assert (out / "web1" / "osdisk.img").read_bytes() == image.read_bytes()

    # Again, beside it: the output directory exists now, and the first VM is left as it was.
    document = ok(work, "vm", "create", "--image", IMAGE, "--name", "db.1", "--output-dir", out)
    assert sorted(files_under(out)) == ["db.1/osdisk.img", "web1/osdisk.img"]
    # The same name again rewrites its disk, leaving no temporary behind.
    ok(work, "vm", "create", "--image", IMAGE, "-n", "web1", "--output-dir", out)
    assert sorted(files_under(out)) == ["db.1/osdisk.img", "web1/osdisk.img"]


def test_without_a_name_the_vm_is_called_vm(work: Path, image: Path) -> None:
    document = ok(work, "vm", "create", "--image", IMAGE, "--output-dir", "out")
    assert document["name"] == "vm" and document["output"] == str(work / "out" / "vm" / "osdisk.img")
    assert files_under(work / "out") == {"vm/osdisk.img": image.stat().st_size}
    discarded = ok(work, "vm", "create", "--image", IMAGE)
    assert (discarded["name"], discarded["output"]) == ("vm", None)


def test_output_still_writes_exactly_that_file(work: Path, image: Path) -> None:
    disk = work / "exact.img"
    document = ok(work, "vm", "create", "--image", IMAGE, "-n", "web1", "--output", disk)
    assert (document["name"], document["output"]) == ("web1", str(disk))
    assert disk.read_bytes() == image.read_bytes()
    assert not (work / "web1").exists()


def test_output_and_output_dir_together_are_refused(work: Path) -> None:
    args = ("--image", IMAGE, "--output", work / "a.img", "--output-dir", work / "d")
    result = blobrep("vm", "create", *args, cwd=work)
    assert_one_line_error(result, 2, "--output-dir", "not allowed with argument --output")
    assert not (work / "a.img").exists() and not (work / "d").exists()


def test_a_scale_set_names_its_instances_name_n(work: Path, image: Path) -> None:
    out = work / "set"
    result = blobrep(
        *("vmss", "create", "--image", IMAGE, "-n", "web", "--instance-count", "3", "--output-dir", out),
        cwd=work,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["name"] == "web" and document["succeeded"] == 3
    assert document["instances"] == [
        {"name": f"web_{n}", "output": str(out / f"web_{n}" / "osdisk.img")} for n in range(3)
    ]
    assert files_under(out) == {f"web_{n}/osdisk.img": image.stat().st_size for n in range(3)}
    assert all((out / f"web_{n}" / "osdisk.img").read_bytes() == image.read_bytes() for n in range(3))

    discarded = ok(work, "vmss", "create", "--image", IMAGE, "--instance-count", "2")
    assert discarded["instances"] == [{"name": "vm_0", "output": None}, {"name": "vm_1", "output": None}]


def test_an_instance_that_cannot_be_written_fails_alone(work: Path, image: Path) -> None:
    """web_1 is a file already: that instance fails (and the file is kept), the others are written."""
    out = work / "set"
    out.mkdir()
    (out / "web_1").write_text("mine\n")
    result = blobrep(
        *("vmss", "create", "--image", IMAGE, "-n", "web", "--instance-count", "3", "--output-dir", out),
        cwd=work,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"blobrep: error: 1 of 3 deployment(s) failed: cannot write {out / 'web_1' / 'osdisk.img'}:"
        f" {out / 'web_1'} exists and is not a directory\n"
    )
    document = json.loads(result.stdout)
    assert [instance["output"] for instance in document["instances"]] == [
        str(out / "web_0" / "osdisk.img"),
        None,
        str(out / "web_2" / "osdisk.img"),
    ]
    assert (out / "web_1").read_text() == "mine\n"
    assert sorted(files_under(out)) == ["web_0/osdisk.img", "web_1", "web_2/osdisk.img"]


def test_a_vm_that_fails_leaves_no_directory_behind(work: Path) -> None:
    out = work / "disks"
    result = blobrep(
        "vm", "create", "--image", IMAGE, "-l", "westeurope", "-n", "web1", "--output-dir", out, cwd=work
    )
    assert_one_line_error(result, 1, "westeurope")
    assert os.listdir(out) == []


HOSTILE_NAMES = [
    "a/b",
    "/etc",
    "..",
    "../escape",
    "a..b",
    ".hidden",
    "-flag",
    "_under",
    "web.",
    "web-",
    "a b",
    "a\\b",
    "名前",
    "web\u202e",
    "a\x00b",
    "",
    " ",
    "x" * 65,
]


@pytest.mark.parametrize(
    "command", [("vm", "create"), ("vmss", "create", "--instance-count", "2")], ids=["vm", "vmss"]
)
@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=repr)
def test_a_name_that_could_leave_the_output_directory_is_refused(
    tmp_path: Path, command: tuple[str, ...], name: str
) -> None:
    out = tmp_path / "out"
    outcome = run_main(
        [
            "--home",
            str(tmp_path / "home"),
            *command,
            "--image",
            IMAGE,
            f"--name={name}",
            "--output-dir",
            str(out),
        ]
    )
    assert outcome.code == 2 and outcome.out == ""
    lines = outcome.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("blobrep: error: argument --name/-n: "), outcome.err
    assert "letters, digits, '-', '_' and '.'" in lines[0] and "for example web1" in lines[0]
    assert os.listdir(tmp_path) == []  # refused before the home or the output directory was made


@pytest.mark.parametrize("name", ["a", "7", "web-1", "db_2.prod", "A" * 64, "nan"])
@pytest.mark.parametrize("command", ["vm", "vmss"])
def test_a_name_az_would_take_is_taken(command: str, name: str) -> None:
    words = ["vmss", "create", "--instance-count", "2"] if command == "vmss" else ["vm", "create"]
    args = full_parser().parse_args([*words, "--image", "x", "-n", name])
    assert args.name == name


# --- through a daemon ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def twins(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Twins]:
    yield from prepare_twins(tmp_path_factory)


def test_a_named_vm_is_written_alike_through_the_daemon(twins: Twins) -> None:
    image = ("--image", f"/galleries/{GALLERY}/images/img/versions/1.0.0", "-l", "eastus2")
    there, here = both(twins, "vm", "create", *image, "-n", "web1", "--output-dir", "named")
    assert (there.returncode, there.stderr) == (here.returncode, here.stderr) == (0, "")
    documents = [json.loads(result.stdout) for result in (there, here)]
    for document, cwd in zip(documents, (twins.daemon.cwd, twins.local), strict=True):
        assert document.pop("seconds") > 0
        assert document.pop("output") == str(cwd / "named" / "web1" / "osdisk.img")
        assert files_under(cwd / "named") == {"web1/osdisk.img": twins.image.stat().st_size}
    assert documents[0] == documents[1] and documents[0]["name"] == "web1"
    assert (twins.daemon.cwd / "named" / "web1" / "osdisk.img").read_bytes() == twins.image.read_bytes()


@pytest.mark.parametrize(
    "args",
    [
        ("-n", "../up", "--output-dir", "refused"),
        ("-n", "web1", "--output", "a.img", "--output-dir", "refused"),
        ("-l", "westeurope", "-n", "web1", "--output-dir", "failed"),
    ],
    ids=["name", "output and output-dir", "not in the region"],
)
def test_a_named_vm_fails_alike_through_the_daemon(twins: Twins, args: tuple[str, ...]) -> None:
    code = 1 if "westeurope" in args else 2
    same_failure(twins, "vm", "create", "--image", f"/galleries/{GALLERY}/images/img", *args, code=code)
    for cwd in (twins.daemon.cwd, twins.local):
        assert not (cwd / "refused").exists()
        assert not (cwd / "failed" / "web1").exists()
