"""``blobrep sig image-version create --image-version ID``: a version whose disk is another
version's, end to end through the command."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.cli.helpers import assert_one_line_error, blobrep, files_under

SOURCE = "/galleries/src/images/ubuntu/versions/1.0.0"
DEFINITION = ("-i", "ubuntu")
FIELDS = ("--publisher", "contoso", "--offer", "ubuntu", "--os-type", "Linux")


def ok(cwd: Path, *args: str | Path) -> str:
    result = blobrep(*args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout


def create(cwd: Path, gallery: str, version: str, *more: str) -> dict[str, object]:
    """``sig image-version create`` from ``SOURCE`` (unless ``more`` names another); its JSON."""
    given = more if "--image-version" in more or "--source" in more else ("--image-version", SOURCE, *more)
    document: dict[str, object] = json.loads(
        ok(cwd, "sig", "image-version", "create", "-r", gallery, *DEFINITION, "-e", version, *given)
    )
    return document


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, image: Path) -> Path:
    """A directory whose home holds gallery ``src`` with ``ubuntu`` 1.0.0 of ``image``, Completed
    in westcentralus and waiting for replication to eastus2; gallery ``dst`` with an empty
    ``ubuntu`` of the same kind; and ``builder``, Contributor on ``dst`` alone."""
    cwd = tmp_path_factory.mktemp("prepared")
    for gallery in ("src", "dst"):
        ok(cwd, "sig", "create", "-r", gallery, "-l", "westcentralus")
        ok(cwd, "sig", "image-definition", "create", "-r", gallery, *DEFINITION, *FIELDS, "--sku", gallery)
    ok(
        cwd,
        "sig",
        "image-version",
        "create",
        "-r",
        "src",
        *DEFINITION,
        "-e",
        "1.0.0",
        "--source",
        image,
        "--target-regions",
        "westcentralus",
        "eastus2",
        "--no-wait",
    )
    ok(cwd, "principal", "create", "--name", "builder", "--type", "user")
    ok(
        cwd,
        "role",
        "assignment",
        "create",
        "--assignee",
        "builder",
        "--role",
        "Contributor",
        "--scope",
        "/galleries/dst",
    )
    return cwd


@pytest.fixture
def cwd(prepared: Path, tmp_path: Path) -> Path:
    """A copy of the prepared directory, for one test to change."""
    copy = tmp_path / "work"
    shutil.copytree(prepared, copy)
    return copy


def replica(cwd: Path, region: str = "westcentralus", number: int = 1) -> Path:
    return cwd / ".blobrep" / "regions" / region / f"replica-{number}"


def deploy(cwd: Path, image_id: str, region: str) -> bytes:
    output = cwd / f"vm-{region}.img"
    ok(cwd, "vm", "create", "--image", image_id, "-l", region, "--output", output)
    return output.read_bytes()


def versions_of(cwd: Path, gallery: str) -> list[object]:
    listed: list[object] = json.loads(ok(cwd, "sig", "image-version", "list", "-r", gallery, *DEFINITION))
    return listed


def test_a_version_copied_in_its_gallery_shares_every_chunk_and_deploys_exact(cwd: Path, image: Path) -> None:
    packs = files_under(replica(cwd) / "galleries" / "src" / "packs")
    created = create(cwd, "src", "2.0.0")
    assert created["storageProfile"] == {
        **json.loads(ok(cwd, "sig", "image-version", "show", "-r", "src", *DEFINITION, "-e", "1.0.0"))[
            "storageProfile"
        ],
        "source": {"id": SOURCE},
    }
    assert created["provisioningState"] == "Succeeded"
    assert files_under(replica(cwd) / "galleries" / "src" / "packs") == packs, "no pack is written again"
    assert deploy(cwd, "/galleries/src/images/ubuntu/versions/2.0.0", "westcentralus") == image.read_bytes()


def test_a_version_copied_from_another_gallery_replicates_and_the_source_stays_as_it_was(
    cwd: Path, image: Path
) -> None:
    before = files_under(replica(cwd) / "galleries" / "src")
    created = create(cwd, "dst", "1.0.0", "--target-regions", "westcentralus", "eastus2=2")
    summary = created["replicationStatus"]
    assert isinstance(summary, dict)
    assert [(s["region"], s["state"], s["replicas"]["completed"]) for s in summary["summary"]] == [
        ("westcentralus", "Completed", 1),
        ("eastus2", "Completed", 2),
    ]
    assert files_under(replica(cwd) / "galleries" / "src") == before
    assert files_under(replica(cwd) / "galleries" / "dst" / "packs") == files_under(
        replica(cwd) / "galleries" / "src" / "packs"
    )
    copied = "/galleries/dst/images/ubuntu/versions/1.0.0"
    assert deploy(cwd, copied, "eastus2") == image.read_bytes()
    shown = json.loads(ok(cwd, "sig", "image-version", "show", "-r", "dst", *DEFINITION, "-e", "1.0.0"))
    assert shown["storageProfile"]["source"] == {"id": SOURCE}


@pytest.mark.parametrize(
    ("given", "said"),
    [
        (("--image-version", SOURCE, "--source", "disk.img"), "not allowed with argument"),
        ((), "give --source FILE"),
        (
            ("--image-version", "/galleries/src/images/ubuntu"),
            "names an image definition, not an image version",
        ),
        (("--image-version", "/galleries/src/images/ubuntu/versions/latest"), "'latest', which moves"),
        (("--image-version", "src/ubuntu/1.0.0"), "invalid resource id"),
    ],
)
def test_a_source_that_can_never_work_is_exit_2_in_one_line(
    cwd: Path, given: tuple[str, ...], said: str
) -> None:
    (cwd / "disk.img").write_bytes(b"\0" * 4096)
    result = blobrep(
        "sig", "image-version", "create", "-r", "dst", *DEFINITION, "-e", "1.0.0", *given, cwd=cwd
    )
    assert_one_line_error(result, 2, said)
    assert versions_of(cwd, "dst") == [], "nothing is recorded"


def test_a_source_not_completed_in_the_region_says_where_it_is(cwd: Path) -> None:
    result = blobrep(
        "sig", "image-version", "create", "-r", "dst", *DEFINITION, "-e", "1.0.0",
        "--image-version", SOURCE, "-l", "eastus2", cwd=cwd,
    )  # fmt: skip
    assert_one_line_error(
        result, 1, "Unknown in eastus2", "Completed in westcentralus", "--location westcentralus"
    )
    assert versions_of(cwd, "dst") == []


def test_a_caller_who_may_not_read_the_source_cannot_tell_whether_it_exists(cwd: Path) -> None:
    def refused(source: str) -> str:
        result = blobrep(
            "--as", "builder", "sig", "image-version", "create", "-r", "dst", *DEFINITION, "-e", "1.0.0",
            "--image-version", source, cwd=cwd,
        )  # fmt: skip
        return assert_one_line_error(result, 1, "builder")

    missing = SOURCE.replace("1.0.0", "7.7.7")
    assert refused(SOURCE).replace("1.0.0", "7.7.7") == refused(missing)
    assert versions_of(cwd, "dst") == []


def test_a_corrupt_source_fails_clearly_and_the_same_command_redoes_it(cwd: Path, image: Path) -> None:
    (pack,) = [path for path in (replica(cwd) / "galleries" / "src" / "packs").rglob("*") if path.is_file()]
    good = pack.read_bytes()
    pack.write_bytes(good[:100] + bytes([good[100] ^ 0xFF]) + good[101:])
    command = (
        "sig",
        "image-version",
        "create",
        "-r",
        "dst",
        *DEFINITION,
        "-e",
        "1.0.0",
        "--image-version",
        SOURCE,
    )
    assert_one_line_error(blobrep(*command, cwd=cwd), 1, f"pack {pack.name} has no good copy")
    shown = json.loads(ok(cwd, "sig", "image-version", "show", "-r", "dst", *DEFINITION, "-e", "1.0.0"))
    assert shown["provisioningState"] == "Failed" and "sizeInBytes" not in shown["storageProfile"]

    pack.write_bytes(good)
    redone = json.loads(ok(cwd, *command))
    assert redone["provisioningState"] == "Succeeded"
    assert deploy(cwd, "/galleries/dst/images/ubuntu/versions/1.0.0", "westcentralus") == image.read_bytes()
