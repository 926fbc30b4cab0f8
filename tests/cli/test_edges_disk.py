"""A full disk, a read-only directory, a read-only catalog: one line that names the file and the
cause, exit 1, and nothing left behind. Real file systems: a small tmpfs, read-only mounts."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, closing
from pathlib import Path

import pytest

from tests.cli.helpers import assert_one_line_error, blobrep
from tests.storage.mounts import MIB, entries, fill, read_only_tmpfs, read_only_view, tmpfs

FAILED = 1
GALLERY = "gal"
DEFINITION = ("-r", GALLERY, "-i", "disk")
VERSION = "/galleries/gal/images/disk/versions/1.0.0"
BLOB = "disk/versions/1.0.0"


@pytest.fixture(scope="module")
def setting(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6 MiB image of random bytes (no holes: every byte costs space) published twice: as
    version 1.0.0 of ``gal/disk`` in ``home`` (westcentralus, 2 replicas), and into the
    store directory ``store`` (shared: do not change it)."""
    root = tmp_path_factory.mktemp("setting")
    image = root / "image.raw"
    image.write_bytes(os.urandom(6 * MIB))
    home = ("--home", root / "home")
    for args in (
        ("sig", "create", "-r", GALLERY, "-l", "westcentralus"),
        ("sig", "image-definition", "create", *DEFINITION, "--publisher", "p", "--offer", "o", "--sku", "s",
         "--os-type", "Linux"),
        ("sig", "image-version", "create", *DEFINITION, "-e", "1.0.0", "--source", image,
         "--target-regions", "westcentralus=2"),
    ):  # fmt: skip
        result = blobrep(*home, *args, cwd=root)
        assert result.returncode == 0, result.stderr
    published = blobrep(
        "blob", "publish", image, "--store", root / "store", "--gallery", GALLERY, "--name", BLOB, cwd=root
    )
    assert published.returncode == 0, published.stderr
    return root


def restore(setting: Path, output_dir: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    output = output_dir / "restored.img"
    store = ("--store", setting / "store", "--gallery", GALLERY, "--name", BLOB)
    return blobrep("blob", "restore", *store, "--output", output, cwd=setting), output


def vm_create(setting: Path, output_dir: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    output = output_dir / "vm.img"
    home = ("--home", setting / "home")
    return blobrep(*home, "vm", "create", "--image", VERSION, "--output", output, cwd=setting), output


Command = Callable[[Path, Path], tuple[subprocess.CompletedProcess[str], Path]]


@pytest.mark.parametrize("command", [restore, vm_create], ids=["blob restore", "vm create"])
def test_a_full_output_disk_is_one_line_naming_the_file(
    setting: Path, tmp_path: Path, command: Command
) -> None:
    with tmpfs(tmp_path / "small", 2 * MIB) as small:
        result, output = command(setting, small)

        line = assert_one_line_error(result, FAILED)
        # The output's disk is full: no chunk or replica is to blame.
        assert line == f"blobrep: error: cannot write {output}: no space left on the device"
        assert entries(small) == []


@pytest.mark.parametrize("command", [restore, vm_create], ids=["blob restore", "vm create"])
def test_a_read_only_output_directory_is_one_line_naming_the_file(
    setting: Path, tmp_path: Path, command: Command
) -> None:
    with read_only_tmpfs(tmp_path / "ro") as read_only:
        result, output = command(setting, read_only)

        line = assert_one_line_error(result, FAILED)
        assert line == f"blobrep: error: cannot write {output}: the file system is read-only"
        assert entries(read_only) == []


def _vmss(setting: Path, output_dir: Path) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    result = blobrep(
        *("--home", setting / "home", "vmss", "create", "--image", VERSION),
        *("--instance-count", "2", "--output-dir", output_dir),
        cwd=setting,
    )
    assert result.returncode == FAILED, result.stderr
    assert "Traceback" not in result.stderr
    errors = result.stderr.splitlines()
    # One line, the error; what did succeed is in the document on stdout.
    assert len(errors) == 1 and errors[0].startswith("blobrep: error: "), result.stderr
    summary = json.loads(result.stdout)
    assert (summary["succeeded"], summary["errors"]) == (0, 2)
    # Both replicas served their chunks well: a full output disk is not their failure.
    assert [served["failures"] for served in summary["statistics"]["replicas"].values()] == [0, 0]
    assert summary["statistics"]["failovers"] == 0
    return result, errors


@pytest.mark.parametrize(
    ("directory", "cause"),
    [
        (lambda path: tmpfs(path, 2 * MIB), "no space left on the device"),
        (read_only_tmpfs, "the file system is read-only"),
    ],
    ids=["full", "read-only"],
)
def test_a_scale_set_writing_where_it_cannot_says_why_once(
    setting: Path, tmp_path: Path, directory: Callable[[Path], AbstractContextManager[Path]], cause: str
) -> None:
    with directory(tmp_path / "out") as out:
        _, errors = _vmss(setting, out)

        disk = out / "vm_0" / "osdisk.img"  # instance 0 of the scale set, named vm by default
        assert errors == [f"blobrep: error: 2 of 2 deployment(s) failed: cannot write {disk}: {cause}"]
        assert entries(out) == []


def test_a_scale_set_output_directory_that_cannot_be_made_is_a_failure_not_a_usage_error(
    setting: Path, tmp_path: Path
) -> None:
    """The path is fine; the file system is not: exit 1 naming the directory and the cause."""
    with read_only_tmpfs(tmp_path / "ro") as read_only:
        result = blobrep(
            *("--home", setting / "home", "vmss", "create", "--image", VERSION),
            *("--instance-count", "2", "--output-dir", read_only / "disks"),
            cwd=setting,
        )
        line = assert_one_line_error(result, FAILED)
        assert line == (
            f"blobrep: error: cannot create the output directory {read_only / 'disks'}:"
            " the file system is read-only"
        )
        assert entries(read_only) == []


@pytest.fixture
def home(setting: Path, tmp_path: Path) -> Iterator[Path]:
    """A copy of the setting's home on a 4 MiB tmpfs of its own."""
    with tmpfs(tmp_path / "home", 4 * MIB) as mounted:
        shutil.copytree(
            setting / "home", mounted, dirs_exist_ok=True, ignore=shutil.ignore_patterns("regions")
        )
        yield mounted


@pytest.fixture
def live_connection(home: Path) -> Iterator[sqlite3.Connection]:
    """Another process's open connection to the home's catalog: its ``-wal`` and ``-shm`` files
    stay while it lives (as beside a running daemon)."""
    with closing(sqlite3.connect(home / "catalog.db")) as connection:
        connection.execute("SELECT count(*) FROM galleries").fetchone()
        yield connection


def test_region_add_on_a_full_home_changes_nothing(home: Path, live_connection: sqlite3.Connection) -> None:
    config = (home / "blobrep.toml").read_bytes()
    filler = fill(home)
    before = entries(home)

    result = blobrep("--home", home, "region", "add", "--name", "northeurope", cwd=home.parent)

    line = assert_one_line_error(result, FAILED)
    assert line == f"blobrep: error: cannot write {home / 'blobrep.toml'}: no space left on the device"
    assert entries(home) == before and filler.name in before
    assert (home / "blobrep.toml").read_bytes() == config


def test_region_add_on_a_read_only_home_changes_nothing(
    home: Path, live_connection: sqlite3.Connection, tmp_path: Path
) -> None:
    config = (home / "blobrep.toml").read_bytes()
    before = entries(home)
    with read_only_view(home, tmp_path / "view") as view:
        result = blobrep("--home", view, "region", "add", "--name", "northeurope", cwd=tmp_path)

    line = assert_one_line_error(result, FAILED)
    assert line == f"blobrep: error: cannot write {view / 'blobrep.toml'}: the file system is read-only"
    assert entries(home) == before
    assert (home / "blobrep.toml").read_bytes() == config


def test_replicate_with_a_read_only_wal_file_names_it(setting: Path, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(setting / "home", home)
    # A version that still has a region to fill, so that replicate must write the catalog.
    created = blobrep(
        *("--home", home, "sig", "image-version", "create", *DEFINITION, "-e", "1.0.1"),
        *("--source", setting / "image.raw", "--target-regions", "westcentralus", "eastus2", "--no-wait"),
        cwd=tmp_path,
    )
    assert created.returncode == 0, created.stderr
    catalog = home / "catalog.db"
    wal = Path(f"{catalog}-wal")
    with closing(sqlite3.connect(catalog)) as connection:
        connection.execute("SELECT count(*) FROM galleries").fetchone()
        with read_only_view(wal, wal):
            result = blobrep("--home", home, "replicate", "-r", GALLERY, cwd=tmp_path)

    line = assert_one_line_error(result, FAILED)
    assert line.startswith(
        f"blobrep: error: the catalog {catalog} is read-only: {wal} is on a read-only file system"
    )
    assert line.endswith("; nothing was written")
