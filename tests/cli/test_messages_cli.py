"""Messages that say what is wrong, end to end: unknown regions and galleries, a busy replica,
a wait that times out, paths of the wrong kind, and principals that see part of a gallery."""

from __future__ import annotations

import json
import os
from pathlib import Path

import anyio.to_thread
import pytest

from blobrep.engine.leases import hold_lease
from blobrep.service import DefinitionFields, GalleryService, LocalStore
from tests.cli.helpers import assert_one_line_error, blobrep

USAGE, FAILED = 2, 1
GALLERY = "gal"
DEFINITION = ("--gallery-name", GALLERY, "--gallery-image-definition", "ubuntu")
KNOWN = "eastus2, southcentralus, southeastasia, westcentralus, westeurope"
UNKNOWN = f"unknown region 'nowhere': known regions are {KNOWN}"


def ok(cwd: Path, *args: str | Path) -> str:
    result = blobrep(*args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, image: Path) -> Path:
    """A working directory whose home holds ``gal/ubuntu`` 1.0.0, Completed in westcentralus
    and waiting in eastus2, and the user ``bob`` with Reader on that definition only (shared:
    the tests here only read it)."""
    cwd = tmp_path_factory.mktemp("messages")
    ok(cwd, "sig", "create", "--gallery-name", GALLERY, "--location", "westcentralus")
    ok(
        cwd,
        "sig",
        "image-definition",
        "create",
        *DEFINITION,
        "--publisher",
        "contoso",
        "--offer",
        "ubuntu",
        "--sku",
        "22_04",
        "--os-type",
        "Linux",
    )
    ok(
        cwd,
        "sig",
        "image-version",
        "create",
        *DEFINITION,
        "--gallery-image-version",
        "1.0.0",
        "--source",
        image,
        "--target-regions",
        "westcentralus",
        "eastus2",
        "--no-wait",
    )
    for name in ("bob", "nobody"):
        ok(cwd, "principal", "create", "--name", name, "--type", "user")
    ok(
        cwd,
        "role",
        "assignment",
        "create",
        "--assignee",
        "bob",
        "--role",
        "Reader",
        "--scope",
        f"/galleries/{GALLERY}/images/ubuntu",
    )
    return cwd


@pytest.mark.parametrize(
    "args",
    [
        ("replicate", "-r", GALLERY, "-l", "nowhere"),
        ("replicate", "-r", GALLERY, "-i", "ubuntu", "-e", "1.0.0", "-l", "westcentralus", "nowhere"),
        ("gc", "-r", GALLERY, "-l", "nowhere"),
        ("scrub", "-l", "nowhere"),
        ("fsck", "-l", "nowhere"),
        ("vm", "create", "--image", f"/galleries/{GALLERY}/images/ubuntu", "-l", "nowhere"),
        ("sig", "image-version", "show", *DEFINITION, "-e", "latest", "-l", "nowhere"),
        ("sig", "image-version", "wait", *DEFINITION, "-e", "1.0.0", "-l", "nowhere", "--timeout", "0"),
    ],
    ids=["replicate", "replicate a version", "gc", "scrub", "fsck", "vm create", "latest", "wait"],
)
def test_a_command_given_an_unknown_region_refuses_it_naming_the_known_ones(
    home: Path, args: tuple[str, ...]
) -> None:
    before = (home / ".blobrep" / "catalog.db").stat().st_mtime_ns
    assert_one_line_error(blobrep(*args, cwd=home), FAILED, UNKNOWN)
    assert (home / ".blobrep" / "catalog.db").stat().st_mtime_ns == before


@pytest.mark.parametrize(
    "options",
    [
        ("--target-regions", "nowhere"),
        ("--target-regions", "westcentralus", "nowhere"),
        ("--regional-exclude-from-latest", "nowhere=true"),
    ],
    ids=["target alone", "target beside the source", "regional flag"],
)
@pytest.mark.parametrize("action", ["create", "update"])
def test_an_unknown_target_region_is_named_as_such(
    home: Path, image: Path, action: str, options: tuple[str, ...]
) -> None:
    version = ("-e", "2.0.0", "--source", str(image)) if action == "create" else ("-e", "1.0.0")
    result = blobrep("sig", "image-version", action, *DEFINITION, *version, *options, "--no-wait", cwd=home)
    line = assert_one_line_error(result, USAGE, UNKNOWN)
    assert "source region" not in line


def test_scrub_of_a_gallery_that_does_not_exist_says_so(tmp_path: Path) -> None:
    ok(tmp_path, "sig", "create", "--gallery-name", GALLERY, "--location", "westcentralus")
    result = blobrep("scrub", "-l", "westcentralus", "-r", "nog", cwd=tmp_path)  # the region is empty yet
    assert_one_line_error(result, FAILED, "gallery 'nog' not found")


def test_scrub_without_a_gallery_covers_the_definition_a_principal_may_read(home: Path) -> None:
    result = blobrep("--as", "bob", "scrub", "-l", "westcentralus", cwd=home)
    assert result.returncode == 0, result.stderr
    (report,) = json.loads(result.stdout)
    assert report["gallery"] == GALLERY and report["ok"]
    assert [replica["manifests"] for replica in report["replicas"]] == [1]
    fsck = blobrep("--as", "bob", "fsck", cwd=home)
    assert fsck.returncode == 0, fsck.stderr
    assert json.loads(fsck.stdout)["galleries"] == [GALLERY]


def test_a_principal_without_a_role_learns_nothing_from_assigning_roles(home: Path) -> None:
    lines = []
    for gallery in (GALLERY, "ghost"):
        result = blobrep(
            "--as",
            "nobody",
            "role",
            "assignment",
            "create",
            "--assignee",
            "nobody",
            "--role",
            "Owner",
            "--scope",
            f"/galleries/{gallery}",
            cwd=home,
        )
        lines.append(
            assert_one_line_error(result, FAILED, "'nobody' may not manage access").replace(
                f"/galleries/{gallery}", "/galleries/G"
            )
        )
    assert lines[0] == lines[1]


def test_wait_with_no_time_left_succeeds_at_once_if_the_region_is_complete(home: Path) -> None:
    for timeout in ("0", "0s"):
        result = blobrep(
            "sig",
            "image-version",
            "wait",
            *DEFINITION,
            "-e",
            "1.0.0",
            "-l",
            "westcentralus",
            "--timeout",
            timeout,
            cwd=home,
        )
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["name"] == "1.0.0"


def test_wait_that_times_out_says_what_each_region_is_doing(home: Path) -> None:
    result = blobrep("sig", "image-version", "wait", *DEFINITION, "-e", "1.0.0", "--timeout", "0", cwd=home)
    line = assert_one_line_error(result, FAILED, "version 1.0.0 is not Completed after 0 s")
    assert "westcentralus Completed (100%)" in line
    assert "eastus2 Unknown (0%, waiting for replication from westcentralus)" in line
    assert "still replicating" not in line


async def test_gc_of_a_busy_replica_says_which_who_holds_it_and_to_retry(tmp_path: Path, image: Path) -> None:
    async with await GalleryService.open(tmp_path / ".blobrep") as service:
        admin = service.bootstrap_admin
        await service.create_gallery(admin, GALLERY, location="westcentralus")
        fields = DefinitionFields(publisher="contoso", offer="ubuntu", sku="22_04", os_type="Linux")
        await service.create_definition(admin, GALLERY, "ubuntu", fields)
        await service.create_version(admin, GALLERY, "ubuntu", "1.0.0", source=image)
    replica = LocalStore(tmp_path / ".blobrep" / "regions" / "westcentralus" / "replica-1")
    async with hold_lease(replica, GALLERY, exclusive=False, holder="publish of ubuntu/versions/2.0.0"):
        result = await anyio.to_thread.run_sync(
            lambda: blobrep("gc", "-r", GALLERY, "--grace", "0", cwd=tmp_path)
        )
    assert result.returncode == FAILED
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("blobrep: error: "), result.stderr
    assert "skipped 1 of 1 replica(s)" in lines[0]
    assert "westcentralus/replica-1 is busy" in lines[0]
    assert "publish of ubuntu/versions/2.0.0" in lines[0]
    assert "retry later" in lines[0]
    assert json.loads(result.stdout)[0]["error"]  # the report still says it too


def test_publish_into_a_store_that_is_a_file_is_refused_naming_it(tmp_path: Path, image: Path) -> None:
    store = tmp_path / "store"
    store.write_bytes(b"a file, not a directory")
    result = blobrep(
        "blob",
        "publish",
        image,
        "--store",
        store,
        "--gallery",
        "g",
        "--name",
        "i/versions/1.0.0",
        cwd=tmp_path,
    )
    line = assert_one_line_error(result, USAGE, str(store), "not a directory")
    assert "File exists" not in line
    assert store.read_bytes() == b"a file, not a directory"


@pytest.mark.parametrize("path", ["file", os.devnull, ""], ids=["a file", "/dev/null", "empty"])
def test_region_add_refuses_a_path_that_can_never_hold_replicas(tmp_path: Path, path: str) -> None:
    work = tmp_path / "work"  # the current directory, apart from the home: "" is not "."
    work.mkdir()
    (work / "file").write_bytes(b"x")
    home = ("--home", str(tmp_path / "home"))
    ok(work, *home, "region", "list")
    config = (tmp_path / "home" / "blobrep.toml").read_text()
    result = blobrep(*home, "region", "add", "--name", "japaneast", "--path", path, cwd=work)
    assert_one_line_error(result, USAGE)
    assert (tmp_path / "home" / "blobrep.toml").read_text() == config
    assert os.listdir(work) == ["file"]
