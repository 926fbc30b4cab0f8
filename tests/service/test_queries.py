"""Reads without an event loop: the same answers as the service, and only where they are safe.

``read_without_loop`` must give what ``GalleryService`` gives for the same read, errors
included, and must step aside (None) wherever opening the service would change something
first: no catalog yet, an older schema, no bootstrap admin, an operation to recover.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from blobrep.catalog import Catalog
from blobrep.catalog.reads import CatalogReads
from blobrep.core.gallery import GalleryImageVersion, ReplicationState
from blobrep.core.version import ImageVersion
from blobrep.errors import AccessDeniedError, BlobrepError
from blobrep.service import GalleryService, VersionOptions
from blobrep.service.home import Home
from blobrep.service.queries import read_without_loop, show_version
from tests.service.conftest import ADMIN, GALLERY, IMAGE


def shown(home: Path, caller: str | None, version: str, location: str | None = None) -> object:
    """What the loop-free path answers (the version, or the error it raises), or None."""

    def query(reads: CatalogReads, at: Home, acting: str) -> GalleryImageVersion:
        return show_version(reads, at, acting, GALLERY, IMAGE, version, location)

    try:
        done = read_without_loop(home, caller, query)
    except BlobrepError as exc:
        return (type(exc), str(exc))
    return None if done is None else done[0]


async def through_service(
    service: GalleryService, caller: str, version: str, location: str | None = None
) -> object:
    try:
        return await service.show_version(caller, GALLERY, IMAGE, version, location=location)
    except BlobrepError as exc:
        return (type(exc), str(exc))


@pytest.mark.parametrize(
    ("caller", "version", "location"),
    [
        (ADMIN, "1.0.0", None),
        (ADMIN, "latest", None),
        (ADMIN, "latest", "West Central US"),
        (ADMIN, "latest", "westeurope"),
        (ADMIN, "9.9.9", None),
        (ADMIN, "1.0.0", "nowhere"),
        (ADMIN, "1.x", None),
        ("mallory", "1.0.0", None),
        ("reader", "1.0.0", None),
        ("reader", "latest", None),
        ("", "1.0.0", None),
    ],
)
async def test_a_settled_home_answers_as_the_service_does(
    service: GalleryService, definition: str, source: Path, caller: str, version: str, location: str | None
) -> None:
    await service.create_version(ADMIN, GALLERY, IMAGE, "1.0.0", source=source)
    await service.create_version(ADMIN, GALLERY, IMAGE, "1.0.1", source=source)
    await service.create_principal(ADMIN, "reader", "user")
    await service.create_assignment(
        ADMIN, "reader", "Reader", f"/galleries/{GALLERY}/images/{IMAGE}/versions/1.0.0"
    )

    expected = await through_service(service, caller, version, location)
    assert expected is not None
    assert shown(service.home, caller, version, location) == expected


async def test_the_bootstrap_admin_acts_when_no_caller_is_named(
    service: GalleryService, definition: str, source: Path
) -> None:
    created = await service.create_version(ADMIN, GALLERY, IMAGE, "1.0.0", source=source)
    assert shown(service.home, None, "1.0.0") == created


def test_a_home_without_a_catalog_is_left_to_the_service(tmp_path: Path) -> None:
    assert shown(tmp_path / "nothing-here", None, "1.0.0") is None
    assert not (tmp_path / "nothing-here").exists(), "a read must not create the home"


async def test_a_catalog_without_its_bootstrap_admin_is_left_to_the_service(tmp_path: Path) -> None:
    home = Home(tmp_path / "home")
    async with await Catalog.open(home.catalog_path):
        pass
    assert shown(home.root, None, "1.0.0") is None
    assert shown(home.root, ADMIN, "1.0.0") == (
        AccessDeniedError,
        "unknown principal 'admin': an admin can add it with"
        " 'blobrep principal create --name admin --type user'",
    )


async def test_an_older_catalog_is_left_to_the_service_to_migrate(
    service: GalleryService, definition: str
) -> None:
    path = Home(service.home).catalog_path
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA user_version = 1")
    assert shown(service.home, ADMIN, "1.0.0") is None


async def test_a_version_in_the_middle_of_an_operation_is_left_to_the_service(
    service: GalleryService, definition: str, source: Path
) -> None:
    """Recovery runs when the service opens; a read that skipped it could show a dead operation
    as running."""
    await service.create_version(ADMIN, GALLERY, IMAGE, "1.0.0", source=source)
    version = await service._catalog.get_version(GALLERY, IMAGE, ImageVersion(1, 0, 0))
    status = version.status("westcentralus")
    assert status is not None
    await service._catalog.set_region_status(
        GALLERY, IMAGE, ImageVersion(1, 0, 0), dataclasses.replace(status, state=ReplicationState.REPLICATING)
    )
    assert shown(service.home, ADMIN, "1.0.0") is None


async def test_a_region_waiting_for_its_first_replicate_is_read_from_the_snapshot(
    service: GalleryService, definition: str, source: Path
) -> None:
    """Recovery leaves a region that no process has started alone, so the snapshot may show it."""
    options = VersionOptions(target_regions=["westcentralus", "eastus2"])
    await service.create_version(ADMIN, GALLERY, IMAGE, "1.0.0", source=source, options=options)
    assert shown(service.home, ADMIN, "1.0.0") == await through_service(service, ADMIN, "1.0.0")


def test_the_cli_says_what_the_service_says(tmp_path: Path, source: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "blobrep", "--home", str(tmp_path / "h"), *args],
            capture_output=True,
            text=True,
            check=False,
        )

    ids = ("-r", GALLERY, "-i", IMAGE)
    assert run("sig", "create", "-r", GALLERY).returncode == 0
    definition = ("--publisher", "p", "--offer", "o", "--sku", "s", "--os-type", "Linux")
    assert run("sig", "image-definition", "create", *ids, *definition).returncode == 0
    missing = run("sig", "image-version", "show", *ids, "-e", "2.0.0")
    assert missing.returncode == 1
    assert missing.stdout == ""
    assert missing.stderr == (
        f"blobrep: error: image version '2.0.0' not found in image definition '{IMAGE}'"
        f" of gallery '{GALLERY}'\n"
    )
